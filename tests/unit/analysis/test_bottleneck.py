import fixtures

from multimodal_virt.analysis import bottleneck
from tests import base
from tests.unit.analysis import helpers

THRESHOLDS = bottleneck.Thresholds(percentile='p99', gpu_exec_us=8000.0,
                                   gpu_submit_us=1000.0, io_us=5000.0, vm_exit_rate=10000.0,
                                   irq_rate=50000.0)


def _analyze(sample, stale_after=60.0, thresholds=THRESHOLDS):
    return bottleneck.analyze(sample, thresholds, helpers.NOW, stale_after)


class ThresholdsTest(base.TestCase):

    def test_from_conf_reads_the_analysis_group(self):
        self.flags('multimodal_virt_analysis', percentile='p95',
                   gpu_exec_threshold_us=9000.0,
                   gpu_submit_threshold_us=500.0, io_threshold_us=8000.0,
                   vm_exit_rate_threshold=123.0, irq_rate_threshold=456.0,
                   slo_headroom=0.5, top_instances=1)
        got = bottleneck.Thresholds.from_conf(
            self.conf.multimodal_virt_analysis)
        self.assertEqual(bottleneck.Thresholds('p95', 9000.0, 500.0, 8000.0,
                                               123.0, 456.0, 0.5, 1), got)
        self.assertEqual(9000.0, got.limit('gpu_exec'))
        self.assertEqual(500.0, got.limit('gpu_submit'))
        # The deprecated alias has its metric's threshold.
        self.assertEqual(500.0, got.limit('gpu_cmd'))
        # The demo flavor's SLOs: the honest names, never the alias.
        self.assertEqual({'multimodal_virt:gpu_submit_p95_us': '250',
                          'multimodal_virt:io_p95_us': '4000'},
                         got.slo_extra_specs())

    def test_deprecated_threshold_option_is_still_read(self):
        path = self.useFixture(fixtures.TempDir()).join('old.conf')
        with open(path, 'w') as handle:
            handle.write('[multimodal_virt_analysis]\n'
                         'gpu_cmd_threshold_us = 700\n')
        self.conf(['--config-file', path])
        got = bottleneck.Thresholds.from_conf(
            self.conf.multimodal_virt_analysis)
        self.assertEqual(700.0, got.gpu_submit_us)

    def test_bad_values_are_named(self):
        err = self.assertRaises(ValueError, bottleneck.Thresholds,
                                percentile='p42')
        self.assertIn("'p42'", str(err))
        err = self.assertRaises(ValueError, bottleneck.Thresholds,
                                io_us=0.0)
        self.assertIn('io_us', str(err))


class AnalyzeTest(base.TestCase):

    def test_each_path_can_dominate(self):
        cases = {
            'gpu_submit': helpers.host_sample('h', gpu_us=4000, io_us=100,
                                              vm_exit_rate=100.0,
                                              irq_rate=100.0),
            'gpu_exec': helpers.host_sample('h', exec_us=40000, gpu_us=50,
                                            io_us=100, vm_exit_rate=100.0,
                                            irq_rate=100.0),
            'gpu_queue': helpers.host_sample('h', queue_us=40000, gpu_us=50,
                                             io_us=100, vm_exit_rate=100.0,
                                             irq_rate=100.0),
            'io': helpers.host_sample('h', gpu_us=50, io_us=20000,
                                      vm_exit_rate=100.0, irq_rate=100.0),
            'vm_exit': helpers.host_sample('h', gpu_us=50, io_us=100,
                                           vm_exit_rate=90000.0,
                                           irq_rate=100.0),
            'irq': helpers.host_sample('h', gpu_us=50, io_us=100,
                                       vm_exit_rate=100.0,
                                       irq_rate=400000.0),
        }
        for path, sample in cases.items():
            finding = _analyze(sample)
            self.assertEqual(path, finding.dominant, path)
            self.assertEqual('bottleneck', finding.verdict, path)
            self.assertEqual(path, finding.pressures[0].path)
            self.assertEqual([path], [r.path for r in
                                      finding.recommendations])
            self.assertIn(bottleneck.LABELS[path], finding.reason)

    def test_pressure_is_value_over_threshold_at_the_percentile(self):
        sample = helpers.host_sample('h', gpu_us=3000, io_us=2500)
        finding = _analyze(sample)
        by_path = {p.path: p for p in finding.pressures}
        expected = sample.gpu_submit.percentile(0.99) / 1000.0
        self.assertAlmostEqual(expected, by_path['gpu_submit'].pressure)
        self.assertEqual(200, by_path['gpu_submit'].events)
        self.assertFalse(by_path['vm_exit'].measured)
        self.assertIsNone(by_path['vm_exit'].pressure)
        # Unmeasured paths sort last; the alias gpu_cmd and the
        # informational gpu_wait are not judged.
        self.assertEqual(['gpu_submit', 'io', 'gpu_exec', 'gpu_queue', 'vm_exit',
                          'irq'],
                         [p.path for p in finding.pressures])

    def test_two_paths_over_give_two_recommendations(self):
        sample = helpers.host_sample('h', gpu_us=2500, io_us=40000)
        finding = _analyze(sample)
        self.assertEqual('io', finding.dominant)
        self.assertEqual(['io', 'gpu_submit'],
                         [r.path for r in finding.recommendations])
        self.assertIn('also over', finding.reason)

    def test_healthy_host_still_names_its_largest_share(self):
        finding = _analyze(helpers.host_sample('h', gpu_us=100, io_us=4000))
        self.assertEqual('healthy', finding.verdict)
        self.assertEqual('io', finding.dominant)
        self.assertEqual((), finding.recommendations)
        self.assertIn('largest share', finding.reason)

    def test_stale_sample(self):
        finding = _analyze(helpers.host_sample('h', gpu_us=4000, age=600))
        self.assertEqual('stale', finding.verdict)
        self.assertEqual('gpu_submit', finding.dominant)
        self.assertIn('600 s old', finding.reason)
        self.assertEqual(['collector', 'gpu_submit'],
                         [r.path for r in finding.recommendations])

    def test_empty_sample(self):
        finding = _analyze(helpers.host_sample('h'))
        self.assertEqual('no-data', finding.verdict)
        self.assertIsNone(finding.dominant)
        self.assertEqual(['collector'],
                         [r.path for r in finding.recommendations])

    def test_percentile_choice_changes_the_verdict(self):
        # 90 % fast, 10 % slow I/O: p50 is fine, p99 is not.
        from multimodal_virt.metrics import histogram
        import dataclasses
        slow_tail = histogram.LatencyHistogram.from_values(
            [100] * 90 + [30000] * 10)
        sample = dataclasses.replace(helpers.host_sample('h'), io=slow_tail)
        p99 = _analyze(sample)
        p50 = _analyze(sample, thresholds=bottleneck.Thresholds(
            percentile='p50', io_us=5000.0))
        self.assertEqual('bottleneck', p99.verdict)
        self.assertEqual('healthy', p50.verdict)

    def test_to_dict_is_json_ready(self):
        import json
        finding = _analyze(helpers.host_sample('h', io_us=20000,
                                               vm_exit_rate=5.0))
        data = json.loads(json.dumps(finding.to_dict()))
        self.assertEqual('io', data['dominant'])
        self.assertEqual('storage I/O', data['dominant_label'])
        self.assertEqual('us', data['paths'][0]['unit'])
        self.assertTrue(data['paths'][0]['over'])
        self.assertEqual('io', data['recommendations'][0]['path'])

    def test_analyze_all(self):
        findings = bottleneck.analyze_all(
            {'b': helpers.host_sample('b', io_us=20000),
             'a': helpers.host_sample('a', gpu_us=9000)},
            THRESHOLDS, helpers.NOW, 60.0)
        self.assertEqual(['a', 'b'], list(findings))
        self.assertEqual('gpu_submit', findings['a'].dominant)
