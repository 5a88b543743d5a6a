"""block_io with real programs: direct I/O shows up in the histogram."""

from multimodal_virt.collector.probes import block_io
from tests.functional.collector import ebpf_base

WRITES = 64


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

    def test_per_device_names_from_sysfs(self):
        probe = self.started(block_io.BlockIOProbe)
        ebpf_base.direct_writes(self.tmp, 8)
        names = set(probe.collect().io_by_device)
        self.assertTrue(names)
        for name in names:
            self.assertNotIn(':', name, 'unresolved device %s' % name)


class TestBlockIOBcc(TestBlockIOLibbpf):
    BACKEND = 'bcc'
