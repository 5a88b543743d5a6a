import json
import time

import ddt

from multimodal_virt import exception
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import histogram
from multimodal_virt.metrics import sample
from multimodal_virt.metrics import signing
from tests import base


def _valid(**overrides):
    data = sample.HostSample(
        host='compute-1', timestamp=time.time(), window_s=10.0,
        source='ebpf', collector_version='1.0',
        io=histogram.LatencyHistogram((0, 3, 4)),
        gpu_cmd=histogram.LatencyHistogram((1,)), vm_exit_rate=12.5,
        irq_rate=300.0, gpu_util=40.0,
        vm_exits_by_instance={'8d0e4c4f-0000-4000-8000-000000000001': 3.0},
        events=('block:block_rq_issue',)).to_dict()
    data.update(overrides)
    return data


@ddt.ddt
class HostSampleTest(base.TestCase):

    def test_json_round_trip(self):
        original = sample.HostSample.from_dict(_valid())
        payload = original.to_json()
        self.assertEqual(original, sample.HostSample.from_json(payload))
        self.assertEqual(original.io.percentiles()['p99'],
                         json.loads(payload)['io']['p99'])

    @ddt.data(
        ('host', ''), ('host', 'a b'), ('host', '../etc'), ('host', 7),
        ('timestamp', float('nan')), ('timestamp', -5),
        ('timestamp', time.time() + 3600), ('window_s', 0),
        ('source', 'guess'), ('vm_exit_rate', -1.0),
        ('irq_rate', 'fast'), ('gpu_util', 101.0),
        ('vm_exits_by_instance', {'x': float('inf')}),
        ('vm_exits_by_instance', []), ('events', 'block'),
        ('io', {'buckets': [-1]}), ('gpu_cmd', [1, 2]),
        ('version', 2), ('version', None), ('extra_field', 1),
    )
    @ddt.unpack
    def test_invalid_field_rejected_with_its_name(self, field, value):
        data = _valid(**{field: value})
        err = self.assertRaises(exception.InvalidSample,
                                sample.HostSample.from_dict, data)
        self.assertIn(field.split('_')[0], str(err).lower())

    def test_missing_required_field(self):
        data = _valid()
        del data['timestamp']
        err = self.assertRaises(exception.InvalidSample,
                                sample.HostSample.from_dict, data)
        self.assertIn('timestamp', str(err))

    @ddt.data(b'NaN', b'{"version": 1, "host": "h", "timestamp": NaN}',
              b'{not json', b'\xff\xfe', b'[]')
    def test_malformed_payloads(self, payload):
        self.assertRaises(exception.InvalidSample,
                          sample.HostSample.from_json, payload)

    def test_oversized_payload_rejected_on_read_and_write(self):
        good = sample.HostSample.from_dict(_valid())
        payload = good.to_json()
        self.assertRaises(exception.InvalidSample,
                          sample.HostSample.from_json, payload,
                          len(payload) - 1)
        self.assertRaises(exception.InvalidSample, good.to_json,
                          len(payload) - 1)

    def test_age(self):
        good = sample.HostSample.from_dict(_valid(timestamp=1000.0))
        self.assertEqual(30.0, good.age(now=1030.0))


UUID = '8d0e4c4f-0000-4000-8000-000000000001'


def _gpu(**overrides):
    fields = dict(
        gpu_exec=histogram.LatencyHistogram((0, 2, 5)),
        gpu_submit=histogram.LatencyHistogram((3,)),
        gpu_wait=histogram.LatencyHistogram((0, 0, 0, 1)),
        gpu_nvidia_rm=histogram.LatencyHistogram((1,)),
        gpu_exec_by_device={'virtio_gpu': {'buckets': [0, 2, 5]}},
        gpu_exec_by_instance={UUID: {'buckets': [0, 1]}},
        gpu_busy={'0000:3b:00.1': 0.375},
        observable={'gpu_busy': True})
    fields.update(overrides)
    return _valid(**fields)


@ddt.ddt
class GpuFieldsTest(base.TestCase):

    def test_round_trip(self):
        original = sample.HostSample.from_dict(_gpu())
        again = sample.HostSample.from_json(original.to_json())
        self.assertEqual(original, again)
        self.assertEqual(7, again.gpu_exec.count)
        self.assertEqual(7, again.gpu_exec_by_device['virtio_gpu'].count)
        self.assertEqual(1, again.gpu_exec_by_instance[UUID].count)
        self.assertEqual({'0000:3b:00.1': 0.375}, again.gpu_busy)

    def test_signed_v2_round_trip_keeps_gpu_fields(self):
        keyring = signing.Keyring(['k' * 32])
        original = sample.HostSample.from_dict(_gpu(
            timestamp=time.time(), observable={'gpu_wait': False},
            gpu_wait=None))
        again = codec.decode_one(codec.encode(original, keyring),
                                 original.key, keyring)
        for name in ('gpu_exec', 'gpu_submit', 'gpu_nvidia_rm',
                     'gpu_exec_by_device', 'gpu_exec_by_instance',
                     'gpu_busy'):
            self.assertEqual(getattr(original, name), getattr(again, name),
                             name)
        self.assertIsNone(again.gpu_wait)
        self.assertFalse(again.observable['gpu_wait'])

    @ddt.data(
        ('gpu_exec', [1]), ('gpu_wait', {'buckets': [-1]}),
        ('gpu_exec_by_device', {'': {'buckets': [1]}}),
        ('gpu_exec_by_device', {'x': 'nope'}),
        ('gpu_exec_by_device', []),
        ('gpu_exec_by_instance', {UUID: None}),
        ('gpu_busy', {'0000:3b:00.1': 1.01}),
        ('gpu_busy', {'0000:3b:00.1': -1}),
        ('observable', {'gpu_exec': 'yes'}),
    )
    @ddt.unpack
    def test_invalid_field_rejected_with_its_name(self, field, value):
        err = self.assertRaises(exception.InvalidSample,
                                sample.HostSample.from_dict,
                                _gpu(**{field: value}))
        self.assertIn(field, str(err))

    def test_too_many_devices(self):
        many = {'dev%d' % i: {'buckets': [1]}
                for i in range(sample.MAX_GPU_DEVICES + 1)}
        self.assertRaises(exception.InvalidSample,
                          sample.HostSample.from_dict,
                          _gpu(gpu_exec_by_device=many))
