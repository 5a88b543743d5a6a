"""block_io with real programs: direct I/O shows up in the histogram."""

import os

from multimodal_virt.collector.probes import block_io
from tests.functional.collector import ebpf_base

WRITES = 64
FSYNCS = 40


def _flushes_completed():
    """Flush requests completed by all disks (/sys/block/*/stat field 16)."""
    total = 0
    for name in os.listdir('/sys/block'):
        try:
            with open('/sys/block/%s/stat' % name) as handle:
                fields = handle.read().split()
        except OSError:
            continue
        if len(fields) >= 16:
            total += int(fields[15])
    return total


class TestBlockIOLibbpf(ebpf_base.EbpfTestCase):

    def test_direct_io_counted(self):
        probe = self.started(block_io.BlockIOProbe)
        self.assertEqual(('block:block_rq_issue', 'block:block_rq_complete'),
                         probe.events)
        probe.collect()
        ebpf_base.direct_writes(self.tmp, WRITES)
        reading = probe.collect()
        self.assertEqual('ebpf', reading.source)
        # Other processes may do I/O too: at least ours must be there.
        self.assertGreaterEqual(reading.io.count, WRITES)
        self.assertGreaterEqual(sum(h.count for h in
                                    reading.io_by_device.values()), WRITES)
        # Direct 4 KiB writes take more than 1 us and less than 10 s.
        self.assertIsNotNone(reading.io.percentile(0.5))
        self.assertLess(reading.io.percentile(0.5), 10e6)

    def test_flushes_are_not_counted_as_lost(self):
        """fsync makes the filesystem ask the disk for a flush: the request
        that asked is completed (zero bytes) without ever being issued, in
        the place of the flush request that is issued and timed. Each such
        completion used to count as a completion with no issue time."""
        probe = self.started(block_io.BlockIOProbe)
        probe.collect()
        flushes_before = _flushes_completed()
        path = os.path.join(self.tmp, 'synced')
        with open(path, 'wb') as handle:
            for _ in range(FSYNCS):
                handle.write(b'x' * 4096)
                handle.flush()
                os.fsync(handle.fileno())
        reading = probe.collect()
        flushes = _flushes_completed() - flushes_before
        # The independent count: the block layer's own flush counter.
        self.assertGreaterEqual(flushes, FSYNCS // 2)
        self.assertEqual(0, reading.dropped['block_io.start'])

    def test_per_device_names_from_sysfs(self):
        probe = self.started(block_io.BlockIOProbe)
        ebpf_base.direct_writes(self.tmp, 8)
        names = set(probe.collect().io_by_device)
        self.assertTrue(names)
        for name in names:
            self.assertNotIn(':', name, 'unresolved device %s' % name)


class TestBlockIOBcc(TestBlockIOLibbpf):
    BACKEND = 'bcc'
