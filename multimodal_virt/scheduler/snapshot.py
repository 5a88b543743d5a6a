"""Per-host latency scores computed once per store refresh.

A :class:`LatencySnapshot` turns a bulk-decoded
:class:`~multimodal_virt.metrics.codec.SampleBatch` into per-node
percentiles and a blended score with numpy, in one vectorised pass over
every vocabulary metric, and keeps them as flat lists behind a
``{key: row}`` index. Filtering or
weighing a host is then a dictionary lookup and a list index.
"""

import array as pyarray
import dataclasses

import numpy as np

from multimodal_virt.metrics import codec
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import vocabulary


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
    :param metric_weights: ``{metric: weight}``; metrics not named weigh
        ``vocabulary.DEFAULT_WEIGHTS``; a deprecated name (``gpu_cmd``)
        sets the weight of the metric it stands for.
    :param gpu_cmd_weight: deprecated alias of ``metric_weights['gpu_cmd']``
        (``None``: not set).
    :param io_weight: deprecated alias of ``metric_weights['io']``.
    :param stale_after: age in seconds after which a sample is stale.
    :param stale_policy: ``neutral``, ``penalize`` or ``reject``.
    :param missing_policy: ``neutral`` or ``penalize``.
    :param herd_penalty_us: fixed penalty per boot, or 0 for automatic.
    :param herd_spread_boots: boots that cost one latency spread (automatic).
    :param gpu_slo_requires_measurement: GPU SLOs need a host that can
        measure the metric (see :func:`~.slo.violations`).
    """

    percentile: str = 'p99'
    metric_weights: dict = None
    gpu_cmd_weight: float = None
    io_weight: float = None
    stale_after: float = 60.0
    stale_policy: str = 'penalize'
    missing_policy: str = 'neutral'
    herd_penalty_us: float = 0.0
    herd_spread_boots: int = 3
    gpu_slo_requires_measurement: bool = True

    def weights(self):
        """``{metric: weight}`` for every vocabulary metric.

        :raises ValueError: for a weight on a metric the vocabulary lacks.
        """
        metrics = vocabulary.LATENCY_METRICS
        weights = {m: vocabulary.DEFAULT_WEIGHTS.get(m, 1.0) for m in metrics}
        for metric, alias in (('gpu_cmd', self.gpu_cmd_weight),
                              ('io', self.io_weight)):
            if alias is not None and metric in weights:
                weights[vocabulary.canonical_metric(metric)] = float(alias)
        for metric, weight in (self.metric_weights or {}).items():
            if metric not in weights:
                raise ValueError('metric_weights: unknown metric %r (known: '
                                 '%s)' % (metric, ', '.join(metrics)))
            weights[vocabulary.canonical_metric(metric)] = float(weight)
        return weights

    @classmethod
    def from_conf(cls, group):
        """Build from the ``[multimodal_virt_scheduler]`` option group.

        The deprecated ``gpu_cmd_weight``/``io_weight`` count only when set
        away from their default; ``metric_weights`` wins over them.
        """
        kwargs = {}
        for field in dataclasses.fields(cls):
            if field.name in ('gpu_cmd_weight', 'io_weight'):
                value = getattr(group, field.name, 1.0)
                kwargs[field.name] = None if value == 1.0 else value
            elif field.name == 'metric_weights':
                kwargs[field.name] = dict(getattr(group, field.name) or {})
            else:
                kwargs[field.name] = getattr(group, field.name)
        return cls(**kwargs)


def _no_pace():
    pass


def _floats(values):
    """``values`` (a float array) as an ``array('d')``."""
    return pyarray.array('d', np.ascontiguousarray(values, np.float64)
                         .tobytes())


def _fill_missing(values):
    """Replace NaN (no events) by the median of the hosts that have data."""
    known = values[~np.isnan(values)]
    if known.size == 0:
        return np.zeros_like(values)
    return np.where(np.isnan(values), float(np.median(known)), values)


def _clip_outliers(scores, fresh):
    """Cap scores far above the fresh hosts' bulk (Tukey's far-out fence).

    Nova normalises weights between the best and the worst host, so one
    host reporting an absurd latency would squeeze every other host to the
    same weight. Scores above ``p75 + 3 * max(p75 - p25, 5 % of the median,
    1 us)`` of the fresh hosts are lowered to that fence: such a host still
    ranks last (tied with other outliers) and the others keep their spread.
    """
    bulk = scores[fresh]
    if bulk.size < 4:
        return scores
    p25, p50, p75 = np.percentile(bulk, (25, 50, 75))
    fence = p75 + 3.0 * max(p75 - p25, 0.05 * abs(p50), 1.0)
    return np.minimum(scores, fence)


@dataclasses.dataclass
class SnapshotArrays:
    """Everything a refresh computes, as arrays (row per compute node).

    What :func:`compute` returns and a refresh worker process sends back
    (:mod:`~multimodal_virt.scheduler.refresh_worker`); a
    :class:`LatencySnapshot` is built from it.

    :ivar keys: store keys, one per row.
    :ivar timestamps: float64, end of each sample's window.
    :ivar stale: bool, judged at the refresh time.
    :ivar scores: float64 blended scores, stale rows already replaced.
    :ivar values: ``{(metric, percentile): float64}``, NaN where not
        measured.
    :ivar observable: ``{metric: bool}`` for the GPU metrics.
    """

    keys: list
    timestamps: np.ndarray
    stale: np.ndarray
    scores: np.ndarray
    values: dict
    observable: dict
    neutral_score: float = 0.0
    worst_score: float = 0.0
    rejected: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def empty(cls, rejected=None):
        nothing = np.zeros(0)
        return cls([], nothing, nothing.astype(bool), nothing, {}, {},
                   rejected=rejected or {})


def compute(batch, policy, now, pace=None):
    """Score a :class:`~multimodal_virt.metrics.codec.SampleBatch`.

    One vectorised pass over every vocabulary metric: percentiles, the
    insufficient and unobservable rules, the blend, outlier clipping and
    the stale policy.

    :param pace: called between the per-metric steps.
    :returns: a :class:`SnapshotArrays`.
    """
    if not len(batch):
        return SnapshotArrays.empty(batch.rejected)
    pace = pace or _no_pace
    timestamps = batch.timestamps
    stale = vocabulary.is_stale(timestamps, now, policy.stale_after)
    weights = policy.weights()
    chosen = policy.percentile
    values = {}
    blended = np.zeros(len(batch))
    for metric in vocabulary.LATENCY_METRICS:
        columns = hist.percentiles_of_matrix(
            batch.buckets[metric],
            [fraction for _, fraction in hist.PERCENTILES])
        blind = ~batch.observable[metric]
        counts = batch.buckets[metric].sum(axis=1, dtype=np.uint64)
        least = batch.min_events[metric]
        for index, ((name, _), column) in enumerate(
                zip(hist.PERCENTILES, columns)):
            column[blind] = np.nan
            # Fewer events than the publisher's minimum: insufficient,
            # read as not measured (neutral in the blend, no SLO check).
            column[counts < least[:, index]] = np.nan
            values[(metric, name)] = column
        if weights[metric]:
            blended += weights[metric] * _fill_missing(
                values[(metric, chosen)])
        pace()
    blended = _clip_outliers(blended, ~stale)

    neutral = worst = 0.0
    fresh = blended[~stale]
    if fresh.size:
        neutral = float(np.median(fresh))
        worst = float(np.max(fresh))
    if policy.stale_policy == 'neutral':
        stale_score = neutral
    else:  # penalize, and reject when the filter is not enabled
        stale_score = worst
    return SnapshotArrays(
        keys=list(batch.keys), timestamps=timestamps, stale=stale,
        scores=np.where(stale, stale_score, blended), values=values,
        observable={metric: batch.observable[metric]
                    for metric in vocabulary.GPU_METRICS},
        neutral_score=neutral, worst_score=worst, rejected=batch.rejected)


class LatencySnapshot(object):
    """Immutable scores of every reporting compute node at one refresh.

    Rows are keyed by store key (:func:`~multimodal_virt.metrics.sample.
    sample_key`): the host name, or ``host+nodename`` for a node named
    unlike its host.

    :param samples: a :class:`~multimodal_virt.metrics.codec.SampleBatch`
        (the scheduler's bulk-decoded refresh), ``{key: HostSample}``
        (CLI, demo, tests) or the :class:`SnapshotArrays` a refresh
        worker computed.
    :param policy: a :class:`ScoringPolicy`.
    :param now: the refresh time (seconds since the epoch).
    :param pace: called between the steps of the build (the background
        refresher lets request threads run).
    """

    def __init__(self, samples, policy, now, pace=None):
        self.policy = policy
        self.taken_at = now
        if isinstance(samples, SnapshotArrays):
            arrays = samples
        else:
            if not isinstance(samples, codec.SampleBatch):
                samples = codec.SampleBatch.from_samples(samples or {})
            arrays = compute(samples, policy, now, pace)
        self._freeze(arrays, pace or _no_pace)

    def _freeze(self, arrays, pace):
        """Keep the arrays as flat Python sequences: a request indexes,
        never numpy. Floats are ``array('d')`` (8 bytes each, copied in
        one go, a Python float when indexed), flags lists of bools."""
        self.neutral_score = arrays.neutral_score
        self.worst_score = arrays.worst_score
        #: ``{key: reason}`` of the payloads the refresh refused.
        self.rejected = arrays.rejected
        self.index = {key: row for row, key in enumerate(arrays.keys)}
        self.timestamps = _floats(arrays.timestamps)
        self.stale = arrays.stale.tolist()
        self.scores = _floats(arrays.scores)
        pace()
        # NaN (no events) stays NaN here; value() and get() say None.
        self.values = {key: _floats(array)
                       for key, array in arrays.values.items()}
        self.observable_rows = {metric: array.tolist()
                                for metric, array in arrays.observable.items()}

    def __len__(self):
        return len(self.index)

    def row(self, host, nodename=None):
        """Row of a compute node in the flat lists, ``None`` if it has none.

        :param nodename: Nova's ``HostState.nodename``; ``None`` means the
            node named like its host.
        """
        return self.index.get(sample_mod.sample_key(host, nodename))

    def value(self, row, metric, percentile):
        """Percentile (µs) of ``metric`` at ``row``, ``None`` if no events."""
        value = self.values[(metric, percentile)][row]
        return None if value != value else value

    def observable(self, row, metric):
        """Whether the node at ``row`` can measure ``metric`` at all."""
        rows = self.observable_rows.get(metric)
        return True if rows is None else rows[row]

    def get(self, host, nodename=None):
        """Return a :class:`HostLatency` for a compute node or ``None``."""
        row = self.row(host, nodename)
        if row is None:
            return None
        return HostLatency(
            host=host, timestamp=self.timestamps[row], stale=self.stale[row],
            score=self.scores[row],
            percentiles={key: None if column[row] != column[row]
                         else column[row]
                         for key, column in self.values.items()})

    def base_score(self, host, nodename=None):
        """Blended latency (µs) the weigher uses for a node, no herd.

        Nodes without a sample get the policy's score, so they never erase
        the ranking of the others.
        """
        row = self.row(host, nodename)
        if row is not None:
            return self.scores[row]
        return self.missing_score()

    def missing_score(self):
        """The score of a node without a sample (``missing_policy``)."""
        if self.policy.missing_policy == 'penalize':
            return self.worst_score
        return self.neutral_score
