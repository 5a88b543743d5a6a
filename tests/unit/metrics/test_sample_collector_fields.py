"""The collector's optional sample fields: validation and round trip."""

import ddt

from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from tests import base

H = hist.LatencyHistogram


def _sample(**fields):
    return sample_mod.HostSample(host='cn1', timestamp=100.0, window_s=10.0,
                                 source='ebpf', **fields)


@ddt.ddt
class TestCollectorFields(base.TestCase):

    def test_round_trip(self):
        sample = _sample(
            io=H((0, 400)),
            io_by_device={'vda': H((0, 300)), 'other': H((0, 100))},
            dropped_events={'block_io.hists': 7, 'kvm_exit.exits': 0},
            sources={'io': 'ebpf', 'gpu_cmd': 'none', 'irq_rate': 'procfs'},
            min_events={'p50': 20, 'p99': 300},
            effective_window_s={'io': 178.2})
        again = sample_mod.HostSample.from_json(sample.to_json())
        self.assertEqual(sample, again)
        self.assertEqual(100, again.io_by_device['other'].count)

    def test_unset_fields_are_not_written(self):
        data = _sample().to_dict()
        for name in ('io_by_device', 'dropped_events', 'sources',
                     'min_events', 'effective_window_s'):
            self.assertNotIn(name, data)

    def test_insufficient_percentile(self):
        sample = _sample(io=H((0, 299)), min_events={'p50': 20, 'p99': 300})
        self.assertFalse(sample.sufficient('io', 'p99'))
        self.assertTrue(sample.sufficient('io', 'p50'))
        self.assertTrue(sample.sufficient('io', 'p95'))  # no minimum
        self.assertTrue(sample.sufficient('gpu_cmd', 'p99'))  # no data

    @ddt.data(
        ('io_by_device', {'../etc': {'buckets': [1]}}, 'block device name'),
        ('io_by_device', {'vda': None}, 'null'),
        ('io_by_device', {'vda%d' % i: {'buckets': [1]} for i in range(65)},
         'at most 64'),
        ('dropped_events', {'hists': 1}, '<probe>.<map>'),
        ('dropped_events', {'block_io.hists': -1}, 'count >= 0'),
        ('dropped_events', {'block_io.hists': True}, 'count >= 0'),
        ('sources', {'io': 'guess'}, 'ebpf, procfs, none'),
        ('sources', {'disk': 'ebpf'}, 'not one of'),
        ('min_events', {'p42': 1}, 'not one of'),
        ('min_events', {'p99': 1.5}, 'count >= 0'),
        ('effective_window_s', {'io': -1}, '>= 0'),
        ('effective_window_s', {'disk': 1}, 'not one of'),
    )
    @ddt.unpack
    def test_bad_values_named(self, field, value, message):
        data = _sample().to_dict()
        data[field] = value
        err = self.assertRaises(exception.InvalidSample,
                                sample_mod.HostSample.from_dict, data)
        self.assertIn(message, str(err))
