from multimodal_virt.analysis import bottleneck
from multimodal_virt.analysis import ranking
from multimodal_virt.scheduler import slo
from multimodal_virt.scheduler import snapshot
from tests import base
from tests.unit.analysis import helpers

SLOS = slo.from_extra_specs({'multimodal_virt:gpu_cmd_p99_us': '2000',
                             'multimodal_virt:io_p99_us': '10000'})


def _setup(stale_policy='penalize'):
    samples = {
        'good': helpers.host_sample('good', gpu_us=50, io_us=100),
        'ok': helpers.host_sample('ok', gpu_us=300, io_us=900),
        'gpu-bad': helpers.host_sample('gpu-bad', gpu_us=9000, io_us=100),
        'old': helpers.host_sample('old', gpu_us=10, io_us=10, age=600),
    }
    snap = snapshot.LatencySnapshot(
        samples, snapshot.ScoringPolicy(stale_after=60.0,
                                        stale_policy=stale_policy),
        helpers.NOW)
    findings = bottleneck.analyze_all(samples, bottleneck.Thresholds(),
                                      helpers.NOW, 60.0)
    return samples, snap, findings


class RankingTest(base.TestCase):

    def test_violations_match_the_filter_rule(self):
        _samples, snap, _findings = _setup()
        broken = ranking.slo_violations(snap, 'gpu-bad', SLOS)
        self.assertEqual(['gpu_cmd'], [s.metric for s, _v in broken])
        self.assertGreater(broken[0][1], 2000)
        self.assertEqual([], ranking.slo_violations(snap, 'good', SLOS))
        self.assertEqual([], ranking.slo_violations(snap, 'unknown', SLOS))

    def test_explain(self):
        samples, snap, findings = _setup()
        weighed = [('good', 1.0), ('ok', 0.9), ('old', 0.0)]
        places = ranking.explain(weighed, sorted(samples), snap, SLOS,
                                 findings)
        by_host = {p.host: p for p in places}
        self.assertEqual(['good', 'ok', 'old', 'gpu-bad'],
                         [p.host for p in places])
        self.assertTrue(by_host['good'].explanation.startswith(
            'chosen: lowest blended p99 score'))
        self.assertIn('worse than the chosen host',
                      by_host['ok'].explanation)
        self.assertIn('stale_policy=penalize', by_host['old'].explanation)
        rejected = by_host['gpu-bad']
        self.assertIsNone(rejected.rank)
        self.assertIn('multimodal_virt:gpu_cmd_p99_us=2000',
                      rejected.explanation)
        self.assertIn('GPU command submission', rejected.explanation)
        self.assertEqual(snap.base_score('ok'), by_host['ok'].score_us)

    def test_stale_rejected_under_reject_policy(self):
        samples, snap, findings = _setup('reject')
        places = ranking.explain([('good', 1.0)], ['good', 'old'], snap,
                                 (), findings)
        self.assertIn('stale_policy=reject', places[1].explanation)

    def test_rejected_without_a_latency_reason(self):
        samples, snap, findings = _setup()
        places = ranking.explain([], ['good'], snap, SLOS, findings)
        self.assertIn('no latency SLO broken', places[0].explanation)

    def test_host_without_sample(self):
        _samples, snap, _findings = _setup()
        places = ranking.explain([('good', 1.0), ('new', 0.5)],
                                 ['good', 'new'], snap, SLOS, {})
        self.assertIn('no sample', places[1].explanation)
        self.assertEqual({'host', 'rank', 'weight', 'score_us',
                          'explanation'}, set(places[1].to_dict()))
