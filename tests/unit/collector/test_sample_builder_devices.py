"""Per-device histograms, drop counters and per-metric sources."""

from multimodal_virt.collector.probes import base as probe_base
from multimodal_virt.collector import sample_builder
from multimodal_virt.collector import sample_quality
from multimodal_virt.metrics import histogram as hist
from tests import base

H = hist.LatencyHistogram


def _reading(source='ebpf', **fields):
    return probe_base.ProbeReading(source=source, **fields)


class TestDevices(base.TestCase):

    def test_top_devices_and_other(self):
        devices = {'vda': H((0, 50)), 'vdb': H((0, 5)), 'sda': H((0, 9)),
                   'nvme0n1': H((0, 9))}
        top = sample_builder.top_devices(devices, 2)
        self.assertEqual(['vda', 'nvme0n1', 'other'], list(top))
        self.assertEqual(14, top['other'].count)
        self.assertEqual(devices, sample_builder.top_devices(devices, 8))

    def test_sample_publishes_devices_drops_and_sources(self):
        ebpf = _reading(io=H((0, 60)),
                        io_by_device={'vda': H((0, 50)), 'vdb': H((0, 10))},
                        dropped={'block_io.start': 0, 'block_io.hists': 3})
        irq = _reading(irq_counts={1: 20}, events=('irq:irq_handler_entry',),
                       dropped={'irq.counts': 1})
        procfs = _reading(source='procfs', io=H((0, 1)),
                          io_by_device={'sda': H((0, 1))},
                          irq_counts={1: 5}, events=('procfs:interrupts',))
        sample = sample_builder.build_sample(
            'cn1', [ebpf, irq, procfs], 10.0, timestamp=1.0, max_devices=1)
        self.assertEqual({'vda': H((0, 50)), 'other': H((0, 10))},
                         sample.device_io)
        self.assertEqual({'block_io.start': 0, 'block_io.hists': 3,
                          'irq.counts': 1}, sample.dropped)
        # Metrics state a source only where the default (the sample's
        # source if it has a histogram, else none) would be wrong.
        self.assertEqual({'vm_exit_rate': 'none', 'irq_rate': 'ebpf'},
                         sample.metric_sources)
        self.assertEqual('ebpf', sample.metric_source('io'))
        self.assertEqual('none', sample.metric_source('gpu_cmd'))
        self.assertEqual(10.0, sample.effective_window_s['io'])

    def test_procfs_only_metric_says_procfs(self):
        ebpf = _reading(irq_counts={1: 20}, events=('irq:irq_handler_entry',))
        procfs = _reading(source='procfs', io=H((0, 4)))
        sample = sample_builder.build_sample('cn1', [ebpf, procfs], 10.0,
                                             timestamp=1.0)
        self.assertEqual('ebpf', sample.source)
        self.assertEqual('procfs', sample.metric_source('io'))
        self.assertEqual('ebpf', sample.metric_source('irq_rate'))

    def test_device_history_decays_and_forgets_idle_devices(self):
        history = sample_quality.DecayedHistograms(half_life_s=10.0)

        def window(devices):
            reading = _reading(io=H(()), io_by_device=devices)
            return sample_builder.build_sample(
                'cn1', [reading], 10.0, timestamp=1.0, history=history)

        self.assertEqual({'vda': H((0, 4))},
                         window({'vda': H((0, 4))}).device_io)
        self.assertEqual({'vda': H((0, 2))}, window({}).device_io)
        window({})
        self.assertEqual({'vda': H((0, 1))}, window({}).device_io)
        self.assertEqual({}, window({}).device_io)
        self.assertEqual(set(['io']), history.keys())
