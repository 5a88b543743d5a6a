"""The collector's optional sample fields: validation and round trip."""

import ddt

from multimodal_virt import exception
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import signing
from tests import base

H = hist.LatencyHistogram


def _sample(**fields):
    return sample_mod.HostSample(host='cn1', timestamp=100.0, window_s=10.0,
                                 source='ebpf', **fields)


@ddt.ddt
class TestCollectorFields(base.TestCase):

    def _full(self):
        return _sample(
            io=H((0, 400)),
            device_io={'vda': H((0, 300)), 'other': H((0, 100))},
            dropped={'block_io.hists': 7, 'kvm_exit.exits': 0},
            metric_sources={'io': 'procfs', 'gpu_cmd': 'none',
                            'irq_rate': 'procfs'},
            min_events={'p50': 20, 'p99': 300},
            effective_window_s={'io': 178.2})

    def test_round_trip(self):
        sample = self._full()
        again = sample_mod.HostSample.from_json(sample.to_json())
        self.assertEqual(sample, again)
        self.assertEqual(100, again.device_io['other'].count)

    def test_signed_v2_round_trip(self):
        keyring = signing.Keyring(['k' * 32])
        sample = self._full()
        again = codec.decode_one(codec.encode(sample, keyring), sample.key,
                                 keyring, now=sample.timestamp)
        for name in ('device_io', 'dropped', 'min_events',
                     'effective_window_s'):
            self.assertEqual(getattr(sample, name), getattr(again, name),
                             name)
        self.assertEqual('procfs', again.metric_source('io'))
        self.assertEqual('procfs', again.metric_sources['irq_rate'])
        self.assertEqual('none', again.metric_source('gpu_cmd'))

    def test_insufficient_percentile(self):
        sample = _sample(io=H((0, 299)), min_events={'p50': 20, 'p99': 300})
        self.assertFalse(sample.sufficient('io', 'p99'))
        self.assertTrue(sample.sufficient('io', 'p50'))
        self.assertTrue(sample.sufficient('io', 'p95'))  # no minimum
        self.assertTrue(sample.sufficient('gpu_cmd', 'p99'))  # no data

    @ddt.data(
        ('device_io', {'../etc': {'buckets': [1]}}, 'bad key'),
        ('device_io', {'vda%d' % i: {'buckets': [1]} for i in range(65)},
         'at most'),
        ('dropped', {'block_io.hists': -1}, 'integer count'),
        ('dropped', {'block_io.hists': True}, 'integer count'),
        ('metric_sources', {'io': 'guess'}, 'ebpf, procfs, none'),
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
