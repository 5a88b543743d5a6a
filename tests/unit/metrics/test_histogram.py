import math

import ddt
import numpy as np

from multimodal_virt import exception
from multimodal_virt.metrics import histogram
from tests import base


@ddt.ddt
class BucketTest(base.TestCase):

    @ddt.data((0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (1023, 9), (1024, 10))
    @ddt.unpack
    def test_bucket_of(self, value, index):
        self.assertEqual(index, histogram.bucket_of(value))
        low, high = histogram.bucket_bounds(index)
        self.assertTrue(low <= value < high)

    def test_negative_latency_rejected(self):
        self.assertRaises(exception.InvalidHistogram, histogram.bucket_of, -1)


@ddt.ddt
class HistogramTest(base.TestCase):

    def test_from_values_counts(self):
        hist = histogram.LatencyHistogram.from_values([1, 3, 5, 100, 100])
        self.assertEqual((1, 1, 1, 0, 0, 0, 2), hist.buckets)
        self.assertEqual(5, hist.count)

    def test_percentile_interpolates_inside_bucket(self):
        hist = histogram.LatencyHistogram((0, 0, 0, 0, 0, 0, 100))
        # All 100 events in [64, 128): p50 is half way.
        self.assertAlmostEqual(96.0, hist.percentile(0.5))
        self.assertAlmostEqual(127.36, hist.percentile(0.99))

    def test_empty_histogram_has_no_percentile(self):
        self.assertIsNone(histogram.LatencyHistogram(()).percentile(0.99))
        self.assertEqual({'p50': None, 'p95': None, 'p99': None},
                         histogram.LatencyHistogram((0, 0)).percentiles())

    def test_matrix_matches_scalar(self):
        rng = np.random.default_rng(7)
        matrix = rng.integers(0, 50, size=(40, 20))
        matrix[3] = 0
        for fraction in (0.5, 0.95, 0.99):
            vector = histogram.percentiles_matrix(matrix, fraction)
            for row, value in zip(matrix, vector):
                expected = histogram.percentile(list(row), fraction)
                if expected is None:
                    self.assertTrue(math.isnan(value))
                else:
                    self.assertAlmostEqual(expected, value)

    def test_merged(self):
        a = histogram.LatencyHistogram((1, 2))
        b = histogram.LatencyHistogram((0, 1, 5))
        self.assertEqual((1, 3, 5), a.merged(b).buckets)

    def test_round_trip(self):
        hist = histogram.LatencyHistogram.from_values([7, 70, 700])
        self.assertEqual(hist, histogram.LatencyHistogram.from_dict(
            hist.to_dict()))

    @ddt.data([1, -1], [1, 1.5], [True], 'abc', [0] * 65, [None])
    def test_invalid_buckets(self, buckets):
        self.assertRaises(exception.InvalidHistogram,
                          histogram.LatencyHistogram, buckets)

    @ddt.data({'buckets': [1], 'unit': 'ns'}, {'unit': 'us'},
              {'buckets': [1, 2], 'count': 4}, [1, 2])
    def test_invalid_dicts(self, data):
        self.assertRaises(exception.InvalidHistogram,
                          histogram.LatencyHistogram.from_dict, data)

    @ddt.data(float('nan'), float('inf'), -1.0, 'x', True)
    def test_finite_non_negative_rejects(self, value):
        self.assertRaises(exception.InvalidSample,
                          histogram.finite_non_negative, 'rate', value)


class PercentilesOfMatrixTest(base.TestCase):
    """The vectorised refresh path against the scalar :func:`percentile`."""

    def test_equals_scalar_percentile_with_empty_edge_columns(self):
        rng = np.random.default_rng(7)
        fractions = [q for _, q in histogram.PERCENTILES]
        for _ in range(200):
            rows = int(rng.integers(1, 40))
            first = int(rng.integers(0, 32))
            end = int(rng.integers(first, 33))
            matrix = np.zeros((rows, 32), np.uint32)
            used = rng.integers(0, 6, (rows, end - first))
            matrix[:, first:end] = used * (rng.random(used.shape) < 0.5)
            columns = histogram.percentiles_of_matrix(matrix, fractions)
            for row in range(rows):
                for column, fraction in zip(columns, fractions):
                    expected = histogram.percentile(matrix[row].tolist(),
                                                    fraction)
                    if expected is None:
                        self.assertTrue(np.isnan(column[row]))
                    else:
                        self.assertAlmostEqual(expected, column[row],
                                               places=6)
