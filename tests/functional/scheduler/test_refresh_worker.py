"""The refresh worker: a real child process over a real file store.

Each test starts the child the way nova-scheduler does
(:class:`~multimodal_virt.scheduler.provider.SnapshotProvider` with the
store configured, ``refresh_worker`` on) and compares what it answers with
the same refresh run inside the test process.
"""

import math
import os
import signal
import time

import fixtures

from multimodal_virt.scheduler import provider as provider_mod
from multimodal_virt.stores import file as file_store
from tests import base
from tests.functional import samples


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open('/proc/%d/stat' % pid) as stat:  # a zombie is not alive
        return stat.read().split(') ')[-1][:1] != 'Z'


def _wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class RefreshWorkerTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.path = self.useFixture(fixtures.TempDir()).path
        os.chmod(self.path, 0o755)
        self.flags('multimodal_virt_store', driver='file',
                   file_path=self.path)
        self.flags('multimodal_virt_scheduler', stale_after=60.0,
                   refresh_worker=True, refresh_timeout=30.0)
        self.store = file_store.FileStore(self.conf)
        for index, host in enumerate(('fast', 'mid', 'slow', 'gpu')):
            self.store.put(samples.host_sample(
                host, io_us=60 * (index + 1),
                gpu_exec_us=500 if host == 'gpu' else None))
        self.store.put(samples.host_sample('old', io_us=40, age=600))
        self.store.put(samples.host_sample('n1', io_us=90, nodename='n1.a'))
        with open(os.path.join(self.path, 'forged.sample'), 'wb') as out:
            out.write(b'MMVS' + b'\0' * 200)
        self.logger = self.useFixture(fixtures.FakeLogger())
        self.provider = provider_mod.SnapshotProvider(self.conf)
        self.addCleanup(self.provider.close)

    def _in_process(self):
        self.flags('multimodal_virt_scheduler', refresh_worker=False)
        try:
            return provider_mod.SnapshotProvider(self.conf).refresh()
        finally:
            self.flags('multimodal_virt_scheduler', refresh_worker=True)

    def assertSameSnapshot(self, expected, actual):
        self.assertEqual(expected.index, actual.index)
        self.assertEqual(expected.stale, actual.stale)
        self.assertEqual(expected.scores, actual.scores)
        self.assertEqual(expected.timestamps, actual.timestamps)
        self.assertEqual(expected.observable_rows, actual.observable_rows)
        self.assertEqual(sorted(expected.values), sorted(actual.values))
        for key, column in expected.values.items():
            self.assertEqual(
                [None if math.isnan(v) else v for v in column],
                [None if math.isnan(v) else v for v in actual.values[key]],
                key)
        self.assertEqual(expected.neutral_score, actual.neutral_score)
        self.assertEqual(expected.worst_score, actual.worst_score)
        self.assertEqual({k: str(v) for k, v in expected.rejected.items()},
                         actual.rejected)

    def test_worker_answers_what_the_scheduler_would_compute(self):
        snapshot = self.provider.refresh()
        pid = self.provider._refresh_worker.pid
        self.assertIsNotNone(pid)
        self.assertNotEqual(os.getpid(), pid)
        self.assertEqual({'fast', 'mid', 'slow', 'gpu', 'old', 'n1+n1.a'},
                         set(snapshot.index))
        self.assertTrue(snapshot.stale[snapshot.row('old')])
        self.assertIsNotNone(snapshot.row('n1', 'n1.a'))
        # 500 us falls in the log2 bucket [256, 512).
        self.assertTrue(256 <= snapshot.value(
            snapshot.row('gpu'), 'gpu_exec', 'p50') < 512)
        self.assertIn('forged', snapshot.rejected)
        self.assertSameSnapshot(self._in_process(), snapshot)

    def test_worker_warnings_are_logged_by_the_scheduler_once(self):
        for _ in range(3):
            self.provider.refresh()
        lines = [line for line in self.logger.output.splitlines()
                 if 'forged' in line]
        self.assertEqual(1, len(lines), self.logger.output)
        self.assertIn('Ignoring the sample stored as', lines[0])

    def test_worker_keeps_its_memory_of_good_samples(self):
        self.provider.refresh()
        pid = self.provider._refresh_worker.pid
        # 'fast' is overwritten by garbage: the worker keeps its last good
        # sample (same process, same decoder) and names the refusal.
        with open(os.path.join(self.path, 'fast.sample'), 'wb') as out:
            out.write(b'garbage')
        snapshot = self.provider.refresh()
        self.assertEqual(pid, self.provider._refresh_worker.pid)
        self.assertIsNotNone(snapshot.row('fast'))
        self.assertIn('fast', snapshot.rejected)

    def test_killed_worker_is_replaced(self):
        self.provider.refresh()
        pid = self.provider._refresh_worker.pid
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(_wait_gone(pid))
        self.store.put(samples.host_sample('new', io_us=70))
        snapshot = self.provider.refresh()
        self.assertIn('new', snapshot.index)
        self.assertNotEqual(pid, self.provider._refresh_worker.pid)

    def test_hung_worker_is_killed_and_the_refresh_runs_here(self):
        self.provider.refresh()
        pid = self.provider._refresh_worker.pid
        self.flags('multimodal_virt_scheduler', refresh_timeout=1.0)
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(lambda: _alive(pid) and os.kill(pid, signal.SIGKILL))
        self.store.put(samples.host_sample('new', io_us=70))
        snapshot = self.provider.refresh()
        self.assertIn('new', snapshot.index)  # read in this process
        self.assertIn('Latency refresh worker failed', self.logger.output)
        self.assertTrue(_wait_gone(pid))
        self.provider.refresh()
        self.assertNotEqual(pid, self.provider._refresh_worker.pid)

    def test_new_store_options_start_a_new_worker(self):
        self.provider.refresh()
        pid = self.provider._refresh_worker.pid
        other = self.useFixture(fixtures.TempDir()).path
        os.chmod(other, 0o755)
        self.flags('multimodal_virt_store', file_path=other)
        file_store.FileStore(self.conf).put(
            samples.host_sample('elsewhere', io_us=50))
        self.assertEqual(['elsewhere'], list(self.provider.refresh().index))
        self.assertNotEqual(pid, self.provider._refresh_worker.pid)
        self.assertTrue(_wait_gone(pid))

    def test_close_stops_the_worker(self):
        self.provider.refresh()
        pid = self.provider._refresh_worker.pid
        self.provider.close()
        self.assertTrue(_wait_gone(pid))

    def test_dropped_provider_lets_its_worker_go(self):
        prov = provider_mod.SnapshotProvider(self.conf)
        prov.refresh()
        pid = prov._refresh_worker.pid
        del prov
        import gc
        gc.collect()
        # The pipe closes: the child ends by itself (reaped by
        # subprocess when the next child starts, so poll for the zombie).
        self.assertTrue(_wait_gone(pid))
