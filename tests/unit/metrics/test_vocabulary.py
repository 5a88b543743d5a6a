"""The shared vocabulary: SLO keys round-trip, the stale rule."""

import numpy as np
import testtools

from multimodal_virt.metrics import vocabulary


class SloKeyTest(testtools.TestCase):

    def test_every_key_parses_back(self):
        for metric in vocabulary.LATENCY_METRICS:
            for percentile in vocabulary.PERCENTILE_NAMES:
                key = vocabulary.slo_key(metric, percentile)
                match = vocabulary.SLO_KEY_RE.match(key)
                self.assertIsNotNone(match, key)
                self.assertEqual((metric, percentile),
                                 (match.group('metric'),
                                  match.group('percentile')))

    def test_foreign_and_misspelt_keys_do_not_parse(self):
        for key in ('multimodal_virt:io_p98_us', 'multimodal_virt:disk_p99_us',
                    'other:io_p99_us', 'multimodal_virt:io_p99_us_extra',
                    'multimodal_virt:io_p99'):
            self.assertIsNone(vocabulary.SLO_KEY_RE.match(key), key)

    def test_every_metric_is_described_and_labelled(self):
        for metric in vocabulary.LATENCY_METRICS:
            self.assertIn(metric, vocabulary.METRIC_DESCRIPTIONS)
            self.assertIn(metric, vocabulary.METRIC_LABELS)


class StaleRuleTest(testtools.TestCase):

    def test_older_than_stale_after_is_stale(self):
        self.assertTrue(vocabulary.is_stale(100.0, 161.0, 60.0))
        self.assertFalse(vocabulary.is_stale(100.0, 160.0, 60.0))
        self.assertFalse(vocabulary.is_stale(100.0, 100.0, 60.0))

    def test_element_wise_on_arrays(self):
        stale = vocabulary.is_stale(np.array([0.0, 50.0, 100.0]), 100.0, 60.0)
        self.assertEqual([True, False, False], stale.tolist())
