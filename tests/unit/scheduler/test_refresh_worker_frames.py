"""The refresh worker's frames, without a child process."""

import math
import os
import time

import numpy as np

from multimodal_virt.metrics import codec
from multimodal_virt.scheduler import refresh_worker
from multimodal_virt.scheduler import snapshot
from tests import base
from tests.functional import samples


def _arrays():
    batch = {key: samples.host_sample(host, io_us=io, gpu_exec_us=gpu,
                                      nodename=node)
             for key, host, node, io, gpu in (
                 ('a', 'a', None, 60, None), ('b', 'b', None, 600, 900),
                 ('c+n1', 'c', 'n1', 90, None))}
    arrays = snapshot.compute(codec.SampleBatch.from_samples(batch),
                              snapshot.ScoringPolicy(stale_after=1e12),
                              time.time())
    arrays.rejected = {'evil': 'bad signature'}
    return arrays


class FrameTest(base.TestCase):

    def _round_trip(self, header, arrays):
        read_fd, write_fd = os.pipe()
        self.addCleanup(os.close, read_fd)
        self.addCleanup(os.close, write_fd)
        refresh_worker._send(write_fd, header, arrays)
        return refresh_worker._receive(read_fd, deadline=None)

    def test_arrays_cross_unchanged(self):
        sent = _arrays()
        header, body = self._round_trip(*refresh_worker._encode_arrays(sent))
        got = refresh_worker._decode_arrays(header, body)
        self.assertEqual(sent.keys, got.keys)
        self.assertEqual(sent.rejected, got.rejected)
        self.assertEqual(sent.neutral_score, got.neutral_score)
        np.testing.assert_array_equal(sent.scores, got.scores)
        np.testing.assert_array_equal(sent.stale, got.stale)
        self.assertEqual(sorted(sent.values), sorted(got.values))
        for key, column in sent.values.items():
            np.testing.assert_array_equal(column, got.values[key])
        self.assertTrue(math.isnan(got.values[('gpu_exec', 'p99')][0]))
        self.assertEqual(sorted(sent.observable), sorted(got.observable))

    def test_unknown_metrics_are_dropped(self):
        header, blobs = refresh_worker._encode_arrays(_arrays())
        header['arrays'].append(['values/bogus/p99', '<f8'])
        blobs.append(np.zeros(3))
        got = refresh_worker._decode_arrays(*self._round_trip(header, blobs))
        self.assertNotIn(('bogus', 'p99'), got.values)

    def test_short_answer_is_refused(self):
        header, blobs = refresh_worker._encode_arrays(_arrays())
        header, body = self._round_trip(header, blobs[:-1])
        self.assertRaises(refresh_worker.WorkerFailed,
                          refresh_worker._decode_arrays, header, body)

    def test_unexpected_array_type_is_refused(self):
        header, blobs = refresh_worker._encode_arrays(_arrays())
        header['arrays'][0] = ('timestamps', '|O')
        self.assertRaises(refresh_worker.WorkerFailed,
                          refresh_worker._decode_arrays,
                          *self._round_trip(header, blobs))

    def test_missing_column_is_refused(self):
        header, blobs = refresh_worker._encode_arrays(_arrays())
        del header['arrays'][0], blobs[0]
        self.assertRaises(refresh_worker.WorkerFailed,
                          refresh_worker._decode_arrays,
                          *self._round_trip(header, blobs))

    def test_read_times_out(self):
        read_fd, write_fd = os.pipe()
        self.addCleanup(os.close, read_fd)
        self.addCleanup(os.close, write_fd)
        os.write(write_fd, b'\x01')  # one byte of a frame, then nothing
        self.assertRaises(refresh_worker.WorkerFailed,
                          refresh_worker._receive, read_fd,
                          time.monotonic())

    def test_closed_pipe_is_eof(self):
        read_fd, write_fd = os.pipe()
        self.addCleanup(os.close, read_fd)
        os.close(write_fd)
        self.assertRaises(EOFError, refresh_worker._receive, read_fd)
