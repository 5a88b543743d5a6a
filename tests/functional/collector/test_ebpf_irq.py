"""irq with real programs: completions of direct I/O raise interrupts."""

from multimodal_virt.collector.probes import irq
from tests.functional.collector import ebpf_base


class TestIrqLibbpf(ebpf_base.EbpfTestCase):

    def test_irq_lines_counted(self):
        probe = self.started(irq.IrqProbe)
        self.assertEqual(('irq:irq_handler_entry',), probe.events)
        probe.collect()
        # Direct I/O completes through the disk's interrupt.
        ebpf_base.direct_writes(self.tmp, 32)
        counts = probe.collect().irq_counts
        self.assertTrue(counts)
        for line, count in counts.items():
            self.assertIsInstance(line, int)
            self.assertGreater(count, 0)


class TestIrqBcc(TestIrqLibbpf):
    BACKEND = 'bcc'
