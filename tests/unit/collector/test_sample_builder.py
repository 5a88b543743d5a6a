"""Unit tests of merging probe readings into a host sample."""

import math

from multimodal_virt.collector.probes import base as probe_base
from multimodal_virt.collector import sample_builder
from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from tests import base

UUID_A = 'aaaaaaaa-0000-4000-8000-000000000001'
UUID_B = 'bbbbbbbb-0000-4000-8000-000000000002'


def _hist(*values):
    return hist.LatencyHistogram.from_values(values)


def _reading(source='ebpf', **kwargs):
    return probe_base.ProbeReading(source=source, **kwargs)


class TestBuildSample(base.TestCase):

    def test_ebpf_readings_merge(self):
        readings = [
            _reading(io=_hist(100, 200), events=('block:block_rq_issue',)),
            _reading(io=_hist(3000), gpu_cmd=_hist(50),
                     events=('syscalls:sys_enter_ioctl',)),
            _reading(vm_exits_by_pid={10: 400, 11: 100, 12: 50},
                     events=('kvm:kvm_exit',)),
            _reading(irq_counts={24: 30, 25: 10},
                     events=('irq:irq_handler_entry',)),
        ]
        attribution = {10: UUID_A, 11: UUID_A, 12: UUID_B}
        sample = sample_builder.build_sample(
            'compute-1', readings, 2.0, attribution=attribution,
            timestamp=1000.0, collector_version='1.2.3')
        self.assertIsInstance(sample, sample_mod.HostSample)
        self.assertEqual('ebpf', sample.source)
        self.assertEqual(3, sample.io.count)
        self.assertEqual(1, sample.gpu_cmd.count)
        self.assertEqual(275.0, sample.vm_exit_rate)
        self.assertEqual(20.0, sample.irq_rate)
        self.assertEqual({UUID_A: 250.0, UUID_B: 25.0},
                         sample.vm_exits_by_instance)
        self.assertEqual(('block:block_rq_issue', 'irq:irq_handler_entry',
                          'kvm:kvm_exit', 'syscalls:sys_enter_ioctl'),
                         sample.events)
        self.assertEqual('1.2.3', sample.collector_version)
        self.assertEqual(1000.0, sample.timestamp)
        # The result round-trips through the store format.
        self.assertEqual(sample, sample_mod.HostSample.from_json(
            sample.to_json()))

    def test_procfs_only_sample(self):
        readings = [_reading('procfs', io=_hist(60), irq_counts={1: 0},
                             events=('procfs:diskstats',
                                     'procfs:interrupts'))]
        sample = sample_builder.build_sample('h', readings, 1.0)
        self.assertEqual('procfs', sample.source)
        self.assertEqual(0.0, sample.irq_rate)
        self.assertIsNone(sample.vm_exit_rate)
        self.assertIsNone(sample.gpu_cmd)

    def test_ebpf_wins_over_procfs_for_the_same_metric(self):
        readings = [_reading('procfs', io=_hist(*[60] * 100),
                             irq_counts={1: 1000}),
                    _reading('ebpf', io=_hist(5000))]
        sample = sample_builder.build_sample('h', readings, 1.0)
        self.assertEqual('ebpf', sample.source)
        self.assertEqual(1, sample.io.count)
        # irq measured by procfs only: taken from there.
        self.assertEqual(1000.0, sample.irq_rate)

    def test_unmeasured_metrics_are_none(self):
        sample = sample_builder.build_sample('h', [_reading(io=_hist(1))],
                                             1.0)
        self.assertIsNone(sample.vm_exit_rate)
        self.assertIsNone(sample.irq_rate)
        self.assertEqual({}, sample.vm_exits_by_instance)

    def test_measured_but_quiet_is_zero(self):
        sample = sample_builder.build_sample(
            'h', [_reading(events=('kvm:kvm_userspace_exit',
                                   'irq:irq_handler_entry'))], 1.0)
        self.assertEqual(0.0, sample.vm_exit_rate)
        self.assertEqual(0.0, sample.irq_rate)

    def test_exits_by_reason_only(self):
        sample = sample_builder.build_sample(
            'h', [_reading(vm_exits_by_reason={'pio': 30, 'mmio': 10})], 4.0)
        self.assertEqual(10.0, sample.vm_exit_rate)

    def test_unattributed_pids_count_in_total_only(self):
        sample = sample_builder.build_sample(
            'h', [_reading(vm_exits_by_pid={1: 10, 2: 30})], 1.0,
            attribution={1: UUID_A})
        self.assertEqual(40.0, sample.vm_exit_rate)
        self.assertEqual({UUID_A: 10.0}, sample.vm_exits_by_instance)

    def test_bad_counts_are_dropped_never_negative(self):
        sample = sample_builder.build_sample(
            'h', [_reading(irq_counts={1: -5, 2: 'x', 3: True, 4: 7},
                           vm_exits_by_pid={1: -100, 2: 10})], 1.0,
            attribution={1: UUID_A, 2: UUID_B})
        self.assertEqual(7.0, sample.irq_rate)
        self.assertEqual(10.0, sample.vm_exit_rate)
        self.assertEqual({UUID_B: 10.0}, sample.vm_exits_by_instance)

    def test_bad_histogram_type_is_ignored(self):
        sample = sample_builder.build_sample(
            'h', [_reading(io=[1, 2, 3]), _reading(io=_hist(8))], 1.0)
        self.assertEqual(1, sample.io.count)

    def test_instance_map_is_bounded(self):
        count = sample_mod.MAX_INSTANCES + 10
        exits = {pid: pid for pid in range(1, count + 1)}
        attribution = {pid: '%08x-0000-4000-8000-000000000000' % pid
                       for pid in exits}
        rates = sample_builder.instance_rates(exits, attribution, 1.0)
        self.assertEqual(sample_mod.MAX_INSTANCES, len(rates))
        # The busiest instances are the ones kept.
        self.assertIn(attribution[count], rates)
        self.assertNotIn(attribution[1], rates)

    def test_rates_are_finite(self):
        sample = sample_builder.build_sample(
            'h', [_reading(irq_counts={1: 2 ** 62})], 1e-6)
        self.assertTrue(math.isfinite(sample.irq_rate))

    def test_bad_window(self):
        for window in (0, -1.0, float('nan'), float('inf'), 'x'):
            self.assertRaises(exception.InvalidSample,
                              sample_builder.build_sample, 'h', [], window)

    def test_bad_host(self):
        err = self.assertRaises(exception.InvalidSample,
                                sample_builder.build_sample, 'a b', [], 1.0)
        self.assertIn('host', str(err))

    def test_no_readings_gives_empty_procfs_sample(self):
        sample = sample_builder.build_sample('h', [], 1.0)
        self.assertEqual('procfs', sample.source)
        self.assertIsNone(sample.io)


class TestGpuSignals(base.TestCase):

    def test_gpu_histograms_and_alias(self):
        readings = [
            _reading(gpu_submit=_hist(40, 60), gpu_wait=_hist(900),
                     gpu_nvidia_rm=_hist(5), gpu_observed=('gpu_submit',
                                                           'gpu_wait')),
            _reading(gpu_exec=_hist(300, 5000), gpu_observed=('gpu_exec',)),
            _reading(gpu_queue=_hist(20, 30, 9000),
                     gpu_observed=('gpu_queue',)),
        ]
        sample = sample_builder.build_sample('compute-1', readings, 2.0,
                                             timestamp=1000.0)
        self.assertEqual(3, sample.gpu_queue.count)
        self.assertEqual(2, sample.gpu_submit.count)
        self.assertEqual(sample.gpu_submit, sample.gpu_cmd)
        self.assertEqual(1, sample.gpu_wait.count)
        self.assertEqual(1, sample.gpu_nvidia_rm.count)
        self.assertEqual(2, sample.gpu_exec.count)
        # Every GPU metric declared or measured.
        self.assertEqual({}, sample.observable)
        self.assertEqual(sample, sample_mod.HostSample.from_json(
            sample.to_json()))

    def test_legacy_gpu_cmd_reading_kept(self):
        sample = sample_builder.build_sample(
            'h', [_reading(gpu_cmd=_hist(70))], 1.0, timestamp=1000.0)
        self.assertEqual(1, sample.gpu_cmd.count)
        self.assertIsNone(sample.gpu_submit)

    def test_fences_per_device_and_instance(self):
        readings = [
            _reading(gpu_exec_by_device={'virtio_gpu': _hist(100, 200),
                                         'i915': _hist(50)},
                     gpu_exec_by_pid={10: _hist(100), 11: _hist(200),
                                      99: _hist(50)}),
            _reading(gpu_exec_by_device={'virtio_gpu': _hist(400)},
                     gpu_exec_by_pid={12: _hist(400)}),
        ]
        sample = sample_builder.build_sample(
            'h', readings, 1.0, attribution={10: UUID_A, 11: UUID_A,
                                             12: UUID_B},
            timestamp=1000.0)
        self.assertEqual(3, sample.gpu_exec_by_device['virtio_gpu'].count)
        self.assertEqual(1, sample.gpu_exec_by_device['i915'].count)
        self.assertEqual({UUID_A: 2, UUID_B: 1},
                         {k: v.count for k, v in
                          sample.gpu_exec_by_instance.items()})

    def test_sched_execution_joins_gpu_exec_once_per_driver(self):
        fences = _reading(gpu_exec=_hist(100, 200),
                          gpu_exec_by_device={'virtio_gpu': _hist(100, 200)},
                          gpu_exec_by_pid={10: _hist(100, 200)})
        sched = _reading(gpu_queue=_hist(30, 40, 50),
                         gpu_sched_exec={('virtio_gpu', 10): _hist(90),
                                         ('amdgpu', 11): _hist(500, 700),
                                         ('amdgpu', 12): _hist(900),
                                         'bad': _hist(1)},
                         gpu_observed=('gpu_queue',))
        sample = sample_builder.build_sample(
            'h', [fences, sched], 1.0, attribution={11: UUID_A, 10: UUID_B},
            timestamp=1000.0)
        # virtio_gpu's jobs are timed by its fences already: not twice.
        self.assertEqual(5, sample.gpu_exec.count)
        self.assertEqual({'virtio_gpu': 2, 'amdgpu': 3},
                         {k: v.count for k, v in
                          sample.gpu_exec_by_device.items()})
        self.assertEqual({UUID_A: 2, UUID_B: 2},
                         {k: v.count for k, v in
                          sample.gpu_exec_by_instance.items()})
        self.assertEqual(3, sample.gpu_queue.count)
        self.assertNotIn('gpu_queue', sample.observable)
        self.assertEqual([], sample_builder.sched_exec_readings([fences]))

    def test_bad_gpu_entries_dropped(self):
        readings = [_reading(gpu_exec_by_device={'x': 'nope'},
                             gpu_exec_by_pid=[1],
                             gpu_busy_by_vf={'0000:3b:00.1': 250.0,
                                             '0000:3b:00.2': 12.5,
                                             '0000:3b:00.3': True},
                             gpu_observed=('gpu_exec', 'bogus'))]
        sample = sample_builder.build_sample('h', readings, 1.0,
                                             timestamp=1000.0)
        self.assertEqual({}, sample.gpu_exec_by_device)
        self.assertEqual({}, sample.gpu_exec_by_instance)
        self.assertEqual({'0000:3b:00.2': 0.125}, sample.gpu_busy)
        # Declared: gpu_exec only ('bogus' ignored); the rest not observable.
        self.assertEqual({'gpu_cmd': False, 'gpu_submit': False,
                          'gpu_wait': False, 'gpu_queue': False},
                         sample.observable)

    def test_busy_vfs_make_gpu_busy_observable(self):
        sample = sample_builder.build_sample(
            'h', [_reading(gpu_busy_by_vf={'0000:3b:00.1': 50.0},
                           gpu_observed=('gpu_busy',))], 1.0,
            timestamp=1000.0)
        self.assertEqual({'0000:3b:00.1': 0.5}, sample.gpu_busy)
        # A passthrough host: busy per VF, GPU latency not observable.
        self.assertFalse(sample.observable['gpu_exec'])

    def test_device_map_bounded(self):
        many = {'dev%03d' % i: _hist(*([10] * (i + 1)))
                for i in range(sample_mod.MAX_GPU_DEVICES + 10)}
        sample = sample_builder.build_sample(
            'h', [_reading(gpu_exec_by_device=many)], 1.0, timestamp=1000.0)
        self.assertEqual(sample_mod.MAX_GPU_DEVICES,
                         len(sample.gpu_exec_by_device))
        self.assertNotIn('dev000', sample.gpu_exec_by_device)
