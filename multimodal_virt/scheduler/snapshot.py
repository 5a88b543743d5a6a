"""Per-host latency scores computed once per store refresh.

A :class:`LatencySnapshot` turns ``{host: HostSample}`` into per-host
percentiles and a blended score with numpy, in one vectorised pass, and
keeps them as flat lists behind a ``{host: row}`` index. Filtering or
weighing a host is then a dictionary lookup and a list index.
"""

import dataclasses

import numpy as np

from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import vocabulary

METRICS = vocabulary.LATENCY_METRICS


@dataclasses.dataclass(frozen=True)
class HostLatency:
    """What the scheduler knows about one reporting host (for display).

    Percentiles are in microseconds, keyed ``(metric, percentile)``;
    ``None`` where the host reported no events of that kind.
    """

    host: str
    timestamp: float
    stale: bool
    score: float
    percentiles: dict

    def get(self, metric, percentile):
        """Return e.g. ``get('io', 'p99')`` or ``None``."""
        return self.percentiles.get((metric, percentile))


@dataclasses.dataclass(frozen=True)
class ScoringPolicy:
    """How samples become scores (built from ``[multimodal_virt_scheduler]``).

    :param percentile: ``p50``, ``p95`` or ``p99``.
    :param gpu_cmd_weight: weight of the GPU-command percentile.
    :param io_weight: weight of the I/O percentile.
    :param stale_after: age in seconds after which a sample is stale.
    :param stale_policy: ``neutral``, ``penalize`` or ``reject``.
    :param missing_policy: ``neutral`` or ``penalize``.
    :param herd_penalty_us: fixed penalty per boot, or 0 for automatic.
    :param herd_spread_boots: boots that cost one latency spread (automatic).
    """

    percentile: str = 'p99'
    gpu_cmd_weight: float = 1.0
    io_weight: float = 1.0
    stale_after: float = 60.0
    stale_policy: str = 'penalize'
    missing_policy: str = 'neutral'
    herd_penalty_us: float = 0.0
    herd_spread_boots: int = 3

    @classmethod
    def from_conf(cls, group):
        """Build from the ``[multimodal_virt_scheduler]`` option group."""
        return cls(**{f.name: getattr(group, f.name)
                      for f in dataclasses.fields(cls)})


def _histogram_matrix(samples, metric):
    """Stack one metric's bucket counts into a ``(hosts, buckets)`` array."""
    rows = [getattr(s, metric) for s in samples]
    width = max((len(h.buckets) for h in rows if h is not None), default=0)
    matrix = np.zeros((len(rows), max(width, 1)), dtype=np.float64)
    for i, histogram in enumerate(rows):
        if histogram is not None and histogram.buckets:
            matrix[i, :len(histogram.buckets)] = histogram.buckets
    return matrix


def _fill_missing(values):
    """Replace NaN (no events) by the median of the hosts that have data."""
    known = values[~np.isnan(values)]
    if known.size == 0:
        return np.zeros_like(values)
    return np.where(np.isnan(values), float(np.median(known)), values)


def _as_list(values):
    """numpy floats to a list with ``None`` for NaN."""
    return [None if v != v else v for v in values.tolist()]


class LatencySnapshot(object):
    """Immutable scores of every reporting host at one refresh.

    :param samples: ``{host: HostSample}`` as returned by a store.
    :param policy: a :class:`ScoringPolicy`.
    :param now: the refresh time (seconds since the epoch).
    """

    def __init__(self, samples, policy, now):
        self.policy = policy
        self.taken_at = now
        self.neutral_score = 0.0
        self.worst_score = 0.0
        self.herd_penalty = 0.0
        self.index = {}
        self.timestamps = []
        self.stale = []
        self.scores = []
        self.values = {}
        if samples:
            self._compute(sorted(samples.items()))

    def _compute(self, ordered):
        policy = self.policy
        sample_list = [sample for _, sample in ordered]
        timestamps = np.array([s.timestamp for s in sample_list])
        stale = vocabulary.is_stale(timestamps, self.taken_at,
                                    policy.stale_after)

        values = {}
        for metric in METRICS:
            matrix = _histogram_matrix(sample_list, metric)
            for name, fraction in hist.PERCENTILES:
                values[(metric, name)] = hist.percentiles_matrix(matrix,
                                                                 fraction)
        chosen = policy.percentile
        blended = (policy.gpu_cmd_weight *
                   _fill_missing(values[('gpu_cmd', chosen)]) +
                   policy.io_weight * _fill_missing(values[('io', chosen)]))

        fresh = blended[~stale]
        spread = 0.0
        if fresh.size:
            self.neutral_score = float(np.median(fresh))
            self.worst_score = float(np.max(fresh))
            spread = float(np.percentile(fresh, 90) - np.percentile(fresh, 10))
        self.herd_penalty = self._herd_penalty(spread)
        if policy.stale_policy == 'neutral':
            stale_score = self.neutral_score
        else:  # penalize, and reject when the filter is not enabled
            stale_score = self.worst_score

        self.index = {host: row for row, (host, _) in enumerate(ordered)}
        self.timestamps = timestamps.tolist()
        self.stale = stale.tolist()
        self.scores = np.where(stale, stale_score, blended).tolist()
        self.values = {key: _as_list(array) for key, array in values.items()}

    def _herd_penalty(self, spread):
        if self.policy.herd_penalty_us > 0:
            return self.policy.herd_penalty_us
        if spread <= 0:
            # All hosts alike: still spread a burst, by 5 % of the median.
            spread = max(abs(self.neutral_score) * 0.05, 1.0)
        return spread / self.policy.herd_spread_boots

    def __len__(self):
        return len(self.index)

    def row(self, host):
        """Row of ``host`` in the flat lists, or ``None`` if it has none."""
        return self.index.get(host)

    def value(self, row, metric, percentile):
        """Percentile (µs) of ``metric`` at ``row``, ``None`` if no events."""
        return self.values[(metric, percentile)][row]

    def get(self, host):
        """Return a :class:`HostLatency` for ``host`` or ``None``."""
        row = self.index.get(host)
        if row is None:
            return None
        return HostLatency(
            host=host, timestamp=self.timestamps[row], stale=self.stale[row],
            score=self.scores[row],
            percentiles={key: column[row]
                         for key, column in self.values.items()})

    def base_score(self, host):
        """Blended latency (µs) the weigher uses for ``host``, no herd.

        Hosts without a sample get the policy's score, so they never erase
        the ranking of the others.
        """
        row = self.index.get(host)
        if row is not None:
            return self.scores[row]
        if self.policy.missing_policy == 'penalize':
            return self.worst_score
        return self.neutral_score
