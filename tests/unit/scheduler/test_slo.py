import ddt

from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import vocabulary
from multimodal_virt.scheduler import slo
from multimodal_virt.scheduler import snapshot as snapshot_mod
from tests import base


@ddt.ddt
class SloTest(base.TestCase):

    def test_parses_our_keys_only(self):
        specs = {'multimodal_virt:io_p99_us': '500',
                 'multimodal_virt:gpu_cmd_p95_us': ' 80 ',
                 'hw:cpu_policy': 'dedicated',
                 'pci_passthrough:alias': 'a100-vf:1'}
        self.assertEqual(
            (slo.Slo('gpu_cmd', 'p95', 80), slo.Slo('io', 'p99', 500)),
            slo.from_extra_specs(specs))

    def test_gpu_signal_keys(self):
        specs = {'multimodal_virt:gpu_exec_p99_us': '800',
                 'multimodal_virt:gpu_submit_p95_us': '50',
                 'multimodal_virt:gpu_wait_p50_us': '5',
                 'multimodal_virt:gpu_busy_p99_us': '5'}   # not a latency
        self.assertEqual(
            (slo.Slo('gpu_exec', 'p99', 800), slo.Slo('gpu_submit', 'p95', 50),
             slo.Slo('gpu_wait', 'p50', 5)),
            slo.from_extra_specs(specs))

    def test_no_specs(self):
        self.assertEqual((), slo.from_extra_specs(None))

    @ddt.data('abc', '0', '-5', '1.5', '', '99999999999')
    def test_bad_values_name_the_key(self, value):
        err = self.assertRaises(
            exception.InvalidExtraSpec, slo.from_extra_specs,
            {'multimodal_virt:io_p99_us': value})
        self.assertIn('multimodal_virt:io_p99_us', str(err))


class ViolationsTest(base.TestCase):

    def test_only_measured_percentiles_over_the_limit(self):
        class Snapshot(object):
            policy = snapshot_mod.ScoringPolicy()

            def value(self, row, metric, percentile):
                return {('io', 'p99'): 900.0, ('io', 'p95'): 400.0,
                        ('gpu_cmd', 'p99'): None}[(metric, percentile)]

            def observable(self, row, metric):
                return True
        slos = (slo.Slo('io', 'p99', 500), slo.Slo('io', 'p95', 500),
                slo.Slo('gpu_cmd', 'p99', 1))
        self.assertEqual([(slos[0], 900.0)],
                         slo.violations(Snapshot(), 0, slos))


class GpuMeasurementTest(base.TestCase):
    """gpu_slo_requires_measurement: GPU SLOs need a host that can measure.
    """

    NOW = 10000.0

    def snapshot(self, requires=True):
        def sample(host, **fields):
            return sample_mod.HostSample(host=host, timestamp=self.NOW,
                                         window_s=10.0, source='ebpf',
                                         **fields)
        blind = {metric: False for metric in vocabulary.GPU_METRICS}
        samples = {
            # Passthrough VF host: busy observable, latency not.
            'vf-host': sample(
                'vf-host', io=hist.LatencyHistogram((5,)),
                gpu_busy={'0000:03:00.1': 0.4}, observable=blind),
            # Mediated GPU host, idle in this window: observable, no events.
            'idle-gpu': sample('idle-gpu'),
            # A busy GPU host: its collector saw fences.
            'busy-gpu': sample('busy-gpu', gpu_exec=hist.LatencyHistogram(
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4)),
                observable={'gpu_submit': False, 'gpu_wait': False,
                            'gpu_cmd': False}),
        }
        policy = snapshot_mod.ScoringPolicy(
            gpu_slo_requires_measurement=requires)
        return snapshot_mod.LatencySnapshot(samples, policy, self.NOW)

    def test_unmeasurable_gpu_slo_breaks(self):
        snapshot = self.snapshot()
        exec_slo = slo.Slo('gpu_exec', 'p99', 5000)
        io_slo = slo.Slo('io', 'p99', 5000)
        row = snapshot.row('vf-host')
        self.assertEqual([(exec_slo, None)],
                         slo.violations(snapshot, row, (exec_slo, io_slo)))
        # gpu_cmd (deprecated) follows gpu_submit: not measurable either.
        cmd_slo = slo.Slo('gpu_cmd', 'p99', 5000)
        self.assertEqual([(cmd_slo, None)],
                         slo.violations(snapshot, row, (cmd_slo,)))

    def test_observable_hosts_pass_without_events(self):
        snapshot = self.snapshot()
        slos = (slo.Slo('gpu_exec', 'p99', 5000),
                slo.Slo('gpu_submit', 'p99', 5000),
                slo.Slo('gpu_cmd', 'p99', 5000))
        self.assertEqual([], slo.violations(
            snapshot, snapshot.row('idle-gpu'), slos))
        self.assertEqual([], slo.violations(
            snapshot, snapshot.row('busy-gpu'), slos[:1]))

    def test_measured_gpu_slo_still_judged_by_value(self):
        snapshot = self.snapshot()
        tight = slo.Slo('gpu_exec', 'p99', 100)
        broken = slo.violations(snapshot, snapshot.row('busy-gpu'), (tight,))
        self.assertEqual(tight, broken[0][0])
        self.assertGreater(broken[0][1], 100)

    def test_option_off_lets_unmeasurable_hosts_pass(self):
        snapshot = self.snapshot(requires=False)
        self.assertEqual([], slo.violations(
            snapshot, snapshot.row('vf-host'),
            (slo.Slo('gpu_exec', 'p99', 5000),)))

    def test_option_read_from_config(self):
        self.assertTrue(
            self.conf.multimodal_virt_scheduler.gpu_slo_requires_measurement)
        self.flags('multimodal_virt_scheduler',
                   gpu_slo_requires_measurement=False)
        policy = snapshot_mod.ScoringPolicy.from_conf(
            self.conf.multimodal_virt_scheduler)
        self.assertFalse(policy.gpu_slo_requires_measurement)
