import dataclasses
import math

from multimodal_virt.scheduler import snapshot
from tests import base
from tests.functional import samples

NOW = 1.7e9


def _sample(host, io_us=None, gpu_us=None, age=0.0):
    s = samples.host_sample(host, io_us=io_us, gpu_us=gpu_us)
    return dataclasses.replace(s, timestamp=NOW - age)


def _snap(samples_by_host, **policy):
    return snapshot.LatencySnapshot(samples_by_host,
                                    snapshot.ScoringPolicy(**policy), NOW)


class LatencySnapshotTest(base.TestCase):

    def test_percentiles_and_blend(self):
        snap = _snap({'a': _sample('a', io_us=100, gpu_us=1000)})
        entry = snap.get('a')
        io_hist = _sample('a', io_us=100).io
        self.assertAlmostEqual(io_hist.percentile(0.99), entry.get('io', 'p99'))
        self.assertAlmostEqual(entry.get('io', 'p99') +
                               entry.get('gpu_cmd', 'p99'), entry.score)
        self.assertFalse(entry.stale)

    def test_weights_and_percentile_choice(self):
        s = {'a': _sample('a', io_us=100, gpu_us=1000)}
        only_io = _snap(s, gpu_cmd_weight=0.0, percentile='p50').get('a')
        self.assertAlmostEqual(only_io.get('io', 'p50'), only_io.score)

    def test_missing_metric_gets_median_of_others(self):
        snap = _snap({'a': _sample('a', io_us=100, gpu_us=100),
                      'b': _sample('b', io_us=100, gpu_us=1000),
                      'c': _sample('c', io_us=100, gpu_us=None)})
        gpu = [snap.get(h).get('gpu_cmd', 'p99') for h in 'ab']
        self.assertIsNone(snap.get('c').get('gpu_cmd', 'p99'))
        self.assertAlmostEqual(snap.get('a').get('io', 'p99') +
                               sorted(gpu)[0] / 2 + sorted(gpu)[1] / 2,
                               snap.get('c').score)

    def test_stale_policies(self):
        data = {'fresh1': _sample('fresh1', io_us=100),
                'fresh2': _sample('fresh2', io_us=1000),
                'fresh3': _sample('fresh3', io_us=4000),
                'old': _sample('old', io_us=10, age=120)}
        penalize = _snap(data, stale_after=60, stale_policy='penalize')
        self.assertTrue(penalize.get('old').stale)
        self.assertEqual(penalize.worst_score, penalize.get('old').score)
        self.assertEqual(penalize.get('fresh3').score, penalize.worst_score)
        neutral = _snap(data, stale_after=60, stale_policy='neutral')
        self.assertEqual(neutral.get('fresh2').score,
                         neutral.get('old').score)
        trusting = _snap(data, stale_after=600)
        self.assertLess(trusting.get('old').score,
                        trusting.get('fresh1').score)

    def test_missing_host_policies(self):
        data = {'a': _sample('a', io_us=100), 'b': _sample('b', io_us=1000),
                'c': _sample('c', io_us=4000)}
        neutral = _snap(data)
        self.assertEqual(neutral.get('b').score, neutral.base_score('zz'))
        penalize = _snap(data, missing_policy='penalize')
        self.assertEqual(penalize.get('c').score, penalize.base_score('zz'))

    def test_empty_snapshot(self):
        snap = _snap({})
        self.assertEqual(0, len(snap))
        self.assertIsNone(snap.get('a'))
        self.assertEqual(0.0, snap.base_score('a'))

    def test_host_without_any_events(self):
        snap = _snap({'idle': _sample('idle'), 'a': _sample('a', io_us=100)})
        self.assertTrue(math.isfinite(snap.get('idle').score))
        self.assertIsNone(snap.get('idle').get('io', 'p99'))
