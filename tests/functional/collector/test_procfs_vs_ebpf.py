"""The procfs fallback agrees with the eBPF block_io probe.

Both probes watch the same real ``dd oflag=direct`` workload. procfs only
knows each device's mean latency per window (see ProcfsProbe), eBPF sees
every request; their medians must agree within an order of magnitude.
"""

from testtools import content

from multimodal_virt.collector.probes import block_io
from multimodal_virt.collector.probes import procfs
from tests.functional.collector import ebpf_base

WRITES = 3000


class TestProcfsAgreesWithBlockIO(ebpf_base.EbpfTestCase):

    def test_p50_within_an_order_of_magnitude(self):
        ebpf_base.direct_writes(self.tmp, WRITES)  # allocate the file
        ebpf = self.started(block_io.BlockIOProbe)
        fallback = self.started(procfs.ProcfsProbe)
        ebpf.collect()  # start both windows together
        fallback.collect()

        ebpf_base.direct_writes(self.tmp, WRITES, overwrite=True)

        ebpf_reading = ebpf.collect()
        procfs_reading = fallback.collect()
        # This test compares the p50s; exact counting is asserted by
        # test_ebpf_block_io. Here, in the parallel suite, 1 to 4 of the
        # 3,000 writes have gone uncounted (with no drop counted); the
        # cause is not found yet, so only a near-complete count is asked.
        self.assertGreaterEqual(ebpf_reading.io.count, WRITES * 0.99,
                                ebpf_reading.dropped)
        self.assertGreaterEqual(procfs_reading.io.count, WRITES)
        ebpf_p50 = ebpf_reading.io.percentile(0.5)
        procfs_p50 = procfs_reading.io.percentile(0.5)
        self.addDetailUniqueName('p50_us', content.text_content(
            'ebpf p50 %.1f us (%d I/Os), procfs p50 %.1f us (%d I/Os)'
            % (ebpf_p50, ebpf_reading.io.count, procfs_p50,
               procfs_reading.io.count)))
        ratio = procfs_p50 / ebpf_p50
        self.assertTrue(0.1 <= ratio <= 10.0,
                        'procfs p50 %.1f us vs eBPF p50 %.1f us'
                        % (procfs_p50, ebpf_p50))
