"""Log2 latency histograms, as the eBPF probes produce them.

Bucket ``i`` counts latencies ``v`` (integer microseconds) with
``floor(log2(v)) == i``; bucket 0 also holds ``v == 0``. This is the layout
of libbpf-tools ``biolatency`` and of bpftrace's ``hist()``, so in-kernel maps
decode into it without conversion.
"""

import dataclasses
import math

import numpy as np

from multimodal_virt import exception
from multimodal_virt.metrics import vocabulary

MAX_BUCKETS = 64
PERCENTILES = vocabulary.PERCENTILES


def bucket_bounds(index):
    """Return the ``[low, high)`` microsecond range of bucket ``index``."""
    if index == 0:
        return 0.0, 2.0
    return float(2 ** index), float(2 ** (index + 1))


def bucket_of(value_us):
    """Return the bucket index of a latency in microseconds."""
    value = int(value_us)
    if value < 0:
        raise exception.InvalidHistogram(
            'latency must be >= 0 microseconds, got %r' % value_us)
    return max(value.bit_length() - 1, 0)


def percentile(buckets, fraction):
    """Estimate a percentile from log2 bucket counts.

    Interpolates linearly inside the bucket that holds the requested rank.

    :param buckets: sequence of non-negative bucket counts.
    :param fraction: quantile in ``(0, 1]``.
    :returns: latency in microseconds, or ``None`` for an empty histogram.
    """
    total = sum(buckets)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            low, high = bucket_bounds(index)
            return low + (high - low) * (rank - seen) / count
        seen += count
    low, high = bucket_bounds(len(buckets) - 1)
    return high


def percentiles_matrix(matrix, fraction):
    """Vectorised :func:`percentile` over a ``(hosts, buckets)`` matrix.

    :param matrix: 2-D array of bucket counts, one row per host.
    :param fraction: quantile in ``(0, 1]``.
    :returns: 1-D float array; ``nan`` where a row is empty.
    """
    return percentiles_of_matrix(matrix, (fraction,))[0]


def percentiles_of_matrix(matrix, fractions):
    """Several percentiles of every row, with one cumulative sum.

    :param matrix: 2-D array of non-negative integer (or float) counts.
    :param fractions: quantiles in ``(0, 1]``.
    :returns: list of 1-D float arrays, one per fraction; ``nan`` where a
        row is empty.
    """
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[1] == 0:
        rows = counts.shape[0] if counts.ndim else 0
        return [np.full(rows, np.nan) for _ in fractions]
    used = np.flatnonzero(counts.any(axis=0))
    if not used.size:  # nobody measured it: skip the arithmetic
        return [np.full(counts.shape[0], np.nan) for _ in fractions]
    # Only the columns some row uses: the percentiles are the same (a rank
    # is never reached in the empty columns before them, and always by
    # the last used one), the arithmetic a fraction of it.
    first = int(used[0])
    counts = counts[:, first:int(used[-1]) + 1]
    # float64: exact for the codec's u32 counts (every sum < 2**53).
    cumulative = np.cumsum(counts, axis=1, dtype=np.float64)
    totals = cumulative[:, -1]
    rows = np.arange(counts.shape[0])
    results = []
    for fraction in fractions:
        ranks = fraction * totals
        # First bucket whose cumulative count reaches the rank.
        column = np.argmax(cumulative >= ranks[:, None], axis=1)
        in_bucket = counts[rows, column].astype(np.float64)
        before = cumulative[rows, column] - in_bucket
        index = column + first
        low = np.where(index == 0, 0.0, np.exp2(index.astype(np.float64)))
        high = np.exp2(index.astype(np.float64) + 1.0)
        with np.errstate(invalid='ignore', divide='ignore'):
            position = np.where(in_bucket > 0, (ranks - before) / in_bucket,
                                0.0)
        result = low + (high - low) * position
        result[totals <= 0] = np.nan
        results.append(result)
    return results


@dataclasses.dataclass(frozen=True)
class LatencyHistogram:
    """An immutable log2 latency histogram in microseconds."""

    buckets: tuple

    def __post_init__(self):
        buckets = self.buckets
        if not isinstance(buckets, (tuple, list)):
            raise exception.InvalidHistogram(
                'histogram buckets must be a list of counts, got %s'
                % type(buckets).__name__)
        if len(buckets) > MAX_BUCKETS:
            raise exception.InvalidHistogram(
                'histogram has %d buckets, at most %d allowed'
                % (len(buckets), MAX_BUCKETS))
        # Fast path first (this runs for every host on every store read);
        # the slow loop only names the offending bucket.
        if not set(map(type, buckets)) <= {int} or (
                buckets and min(buckets) < 0):
            for index, count in enumerate(buckets):
                # bool is an int subclass; a JSON true is not a count.
                if type(count) is not int:
                    raise exception.InvalidHistogram(
                        'bucket %d must be an integer count, got %r'
                        % (index, count))
                if count < 0:
                    raise exception.InvalidHistogram(
                        'bucket %d has a negative count %d' % (index, count))
        object.__setattr__(self, 'buckets', tuple(buckets))

    @classmethod
    def from_values(cls, values_us):
        """Build a histogram from individual latencies (microseconds)."""
        counts = [0] * MAX_BUCKETS
        top = -1
        for value in values_us:
            index = bucket_of(value)
            counts[index] += 1
            top = max(top, index)
        return cls(tuple(counts[:top + 1]))

    @property
    def count(self):
        """Total number of recorded events."""
        return sum(self.buckets)

    def percentile(self, fraction):
        """See :func:`percentile`."""
        return percentile(self.buckets, fraction)

    def percentiles(self):
        """Return ``{'p50': .., 'p95': .., 'p99': ..}`` (``None`` if empty)."""
        return {name: self.percentile(q) for name, q in PERCENTILES}

    def merged(self, other):
        """Return the bucket-wise sum of two histograms."""
        size = max(len(self.buckets), len(other.buckets))
        mine = self.buckets + (0,) * (size - len(self.buckets))
        theirs = other.buckets + (0,) * (size - len(other.buckets))
        return LatencyHistogram(tuple(a + b for a, b in zip(mine, theirs)))

    def to_dict(self):
        """Serialise: buckets plus derived percentiles (for humans)."""
        data = {'unit': 'us', 'buckets': list(self.buckets),
                'count': self.count}
        for name, value in self.percentiles().items():
            data[name] = None if value is None else round(value, 3)
        return data

    @classmethod
    def from_dict(cls, data):
        """Parse :meth:`to_dict` output; derived fields are recomputed."""
        if not isinstance(data, dict):
            raise exception.InvalidHistogram(
                'histogram must be an object, got %s' % type(data).__name__)
        if data.get('unit', 'us') != 'us':
            raise exception.InvalidHistogram(
                'histogram unit must be "us", got %r' % data.get('unit'))
        if 'buckets' not in data:
            raise exception.InvalidHistogram('histogram has no "buckets"')
        histogram = cls(data['buckets'])
        if 'count' in data and data['count'] != histogram.count:
            raise exception.InvalidHistogram(
                'histogram count %r does not match its buckets (%d)'
                % (data['count'], histogram.count))
        return histogram


def finite_non_negative(name, value, allow_none=True):
    """Validate a float metric: finite and >= 0 (``None`` if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise exception.InvalidSample(
            '%s must be a number, got %r' % (name, value))
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise exception.InvalidSample('%s must be finite, got %r'
                                      % (name, value))
    if value < 0:
        raise exception.InvalidSample('%s must be >= 0, got %r'
                                      % (name, value))
    return value
