"""Which path dominates a host: GPU jobs, GPU submission, I/O, exits, IRQs.

Each path's *pressure* is its measured value over its configured threshold
(``[multimodal_virt_analysis]``): a latency percentile for storage I/O, GPU
job execution (``gpu_exec``), GPU queue wait (``gpu_queue``) and GPU command
submission (``gpu_submit``), a
rate for VM exits and interrupts. The path with the highest pressure
dominates; a pressure above 1 makes it a bottleneck. Pure logic: a sample
in, a :class:`Finding` out.
"""

import dataclasses

from multimodal_virt.analysis import recommend
from multimodal_virt.metrics import vocabulary

#: Latency metrics measured but not judged: ``gpu_wait`` says how long a
#: program chose to wait for its GPU work (its synchronisation more than the
#: host; weighed 0 by default). Deprecated aliases
#: (``vocabulary.METRIC_ALIASES``: ``gpu_cmd``) are not judged either: they
#: carry another metric's histogram, which would count twice.
INFORMATIONAL = ('gpu_wait',)
#: Latency metrics judged against a threshold of their own.
LATENCY_PATHS = tuple(m for m in vocabulary.LATENCY_METRICS
                      if m not in vocabulary.METRIC_ALIASES
                      and m not in INFORMATIONAL)
PATHS = LATENCY_PATHS + ('vm_exit', 'irq')
LABELS = {
    **vocabulary.METRIC_LABELS,
    'vm_exit': 'VM exits',
    'irq': 'interrupts',
}
RATE_FIELDS = {'vm_exit': 'vm_exit_rate', 'irq': 'irq_rate'}
#: Metrics of the flavor SLOs :meth:`Thresholds.slo_extra_specs` builds
#: (the demo flavor): those a collector with a GPU node (or the demo's
#: ioctl stand-in) measures. gpu_exec needs a DRM driver emitting fences,
#: and an SLO on a metric a host cannot measure rejects the host
#: (``gpu_slo_requires_measurement``): per-host recommendations name it.
FLAVOR_SLO_METRICS = ('gpu_submit', 'io')
VERDICTS = ('bottleneck', 'healthy', 'stale', 'no-data')
_FRACTIONS = vocabulary.PERCENTILE_FRACTIONS


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Analysis thresholds (see ``multimodal_virt.conf.analysis``).

    :param percentile: latency percentile compared (``p50``/``p95``/``p99``).
    :param gpu_exec_us: GPU job latency threshold (µs).
    :param gpu_submit_us: GPU command-submission latency threshold (µs).
    :param gpu_queue_us: GPU queue-wait latency threshold (µs).
    :param io_us: I/O latency threshold (µs).
    :param vm_exit_rate: VM exits per second threshold.
    :param irq_rate: interrupts per second threshold.
    :param slo_headroom: fraction of a threshold used as recommended SLO.
    :param top_instances: instances named when VM exits dominate.
    """

    percentile: str = 'p99'
    gpu_exec_us: float = 20000.0
    gpu_submit_us: float = 2000.0
    io_us: float = 10000.0
    vm_exit_rate: float = 50000.0
    irq_rate: float = 100000.0
    slo_headroom: float = 1.0
    top_instances: int = 3
    gpu_queue_us: float = 10000.0

    def __post_init__(self):
        if self.percentile not in _FRACTIONS:
            raise ValueError('percentile must be one of %s, got %r'
                             % (', '.join(_FRACTIONS), self.percentile))
        for name in ('gpu_exec_us', 'gpu_submit_us', 'gpu_queue_us', 'io_us',
                     'vm_exit_rate', 'irq_rate'):
            if not getattr(self, name) > 0:
                raise ValueError('threshold %s must be > 0, got %r'
                                 % (name, getattr(self, name)))

    @classmethod
    def from_conf(cls, group):
        """Build from the ``[multimodal_virt_analysis]`` option group."""
        return cls(percentile=group.percentile,
                   gpu_exec_us=group.gpu_exec_threshold_us,
                   gpu_submit_us=group.gpu_submit_threshold_us,
                   io_us=group.io_threshold_us,
                   vm_exit_rate=group.vm_exit_rate_threshold,
                   irq_rate=group.irq_rate_threshold,
                   slo_headroom=group.slo_headroom,
                   top_instances=group.top_instances,
                   gpu_queue_us=group.gpu_queue_threshold_us)

    def limit(self, path):
        """Threshold of ``path`` (µs for latencies, per second for rates).

        A deprecated alias (``gpu_cmd``) has its metric's threshold.
        """
        return {'gpu_exec': self.gpu_exec_us,
                'gpu_submit': self.gpu_submit_us,
                'gpu_queue': self.gpu_queue_us, 'io': self.io_us,
                'vm_exit': self.vm_exit_rate,
                'irq': self.irq_rate}[vocabulary.canonical_metric(path)]

    def slo_us(self, metric):
        """Recommended flavor SLO (whole µs) for a latency metric."""
        return max(1, int(self.limit(metric) * self.slo_headroom))

    def slo_extra_specs(self):
        """``{extra spec: value}`` of a flavor's SLOs (the demo flavor).

        One SLO per :data:`FLAVOR_SLO_METRICS`, at threshold times
        ``slo_headroom``.
        """
        return {vocabulary.slo_key(metric, self.percentile):
                str(self.slo_us(metric)) for metric in FLAVOR_SLO_METRICS}


@dataclasses.dataclass(frozen=True)
class PathPressure:
    """One path of one host, measured against its threshold.

    :param path: one of :data:`PATHS`.
    :param value: the measured percentile (µs) or rate (/s); ``None`` when
        the host reported nothing for this path.
    :param threshold: the configured threshold.
    :param events: number of latency events behind a percentile.
    """

    path: str
    value: object
    threshold: float
    events: int = 0

    @property
    def measured(self):
        return self.value is not None

    @property
    def pressure(self):
        """``value / threshold``; ``None`` when not measured."""
        return None if self.value is None else self.value / self.threshold

    @property
    def over(self):
        return self.value is not None and self.value > self.threshold

    @property
    def unit(self):
        return 'us' if self.path in LATENCY_PATHS else '/s'

    def describe(self, percentile):
        """Human text such as ``GPU command submission p99 8130 us``."""
        if self.value is None:
            return '%s: not measured' % LABELS[self.path]
        if self.path in LATENCY_PATHS:
            what = '%s %s %.0f us' % (LABELS[self.path], percentile,
                                      self.value)
            limit = '%.0f us' % self.threshold
        else:
            what = '%s %.0f/s' % (LABELS[self.path], self.value)
            limit = '%.0f/s' % self.threshold
        return '%s (%.0f%% of the %s threshold)' % (
            what, 100.0 * self.pressure, limit)


@dataclasses.dataclass(frozen=True)
class Finding:
    """The analysis of one host.

    :param host: host name.
    :param verdict: ``bottleneck``, ``healthy``, ``stale`` or ``no-data``.
    :param dominant: the path with the highest pressure, or ``None``.
    :param pressures: :class:`PathPressure` of every path, highest first.
    :param age_s: sample age in seconds.
    :param reason: one sentence saying why.
    :param recommendations: tuple of :class:`~.recommend.Recommendation`.
    """

    host: str
    verdict: str
    dominant: object
    pressures: tuple
    age_s: float
    reason: str
    recommendations: tuple = ()

    def to_dict(self, percentile='p99'):
        """Plain JSON types."""
        return {
            'host': self.host, 'verdict': self.verdict,
            'dominant': self.dominant,
            'dominant_label': LABELS.get(self.dominant),
            'age_s': round(self.age_s, 1), 'reason': self.reason,
            'paths': [{'path': p.path, 'value': p.value, 'unit': p.unit,
                       'threshold': p.threshold, 'events': p.events,
                       'pressure': (None if p.pressure is None
                                    else round(p.pressure, 4)),
                       'over': p.over} for p in self.pressures],
            'recommendations': [r.to_dict() for r in self.recommendations],
        }


def path_pressures(sample, thresholds):
    """Measure every path of ``sample`` against ``thresholds``.

    :param sample: a :class:`~multimodal_virt.metrics.sample.HostSample`.
    :param thresholds: a :class:`Thresholds`.
    :returns: list of :class:`PathPressure`, highest pressure first,
        unmeasured paths last (in :data:`PATHS` order).
    """
    fraction = _FRACTIONS[thresholds.percentile]
    result = []
    for path in PATHS:
        events = 0
        if path in LATENCY_PATHS:
            histogram = getattr(sample, path)
            # Too few events for the percentile: not measured, as the
            # scheduler reads it.
            value = (histogram.percentile(fraction) if histogram and
                     sample.sufficient(path, thresholds.percentile)
                     else None)
            events = histogram.count if histogram else 0
        else:
            value = getattr(sample, RATE_FIELDS[path])
        result.append(PathPressure(path, value, thresholds.limit(path),
                                   events))
    return sorted(result, key=lambda p: (p.pressure is None,
                                         -(p.pressure or 0.0),
                                         PATHS.index(p.path)))


def analyze(sample, thresholds, now, stale_after):
    """Find the dominating path of one host and what to do about it.

    :param sample: the host's latest sample.
    :param thresholds: a :class:`Thresholds`.
    :param now: current time (seconds since the epoch).
    :param stale_after: age in seconds after which a sample is stale
        (``[multimodal_virt_scheduler] stale_after``).
    :returns: a :class:`Finding`.
    """
    pressures = tuple(path_pressures(sample, thresholds))
    measured = [p for p in pressures if p.measured]
    age = sample.age(now)
    dominant = measured[0] if measured else None
    percentile = thresholds.percentile
    if dominant is None:
        verdict = 'no-data'
        reason = ('the sample has no latency histogram and no rate: the '
                  'collector measured nothing on this host')
    elif dominant.over:
        verdict = 'bottleneck'
        others = [p.describe(percentile) for p in measured[1:] if p.over]
        reason = 'dominant path: %s' % dominant.describe(percentile)
        if others:
            reason += '; also over: %s' % '; '.join(others)
    else:
        verdict = 'healthy'
        reason = ('no path over its threshold; largest share: %s'
                  % dominant.describe(percentile))
    if vocabulary.is_stale(sample.timestamp, now, stale_after):
        verdict = 'stale'
        reason = ('sample is %.0f s old (stale_after %.0f s): the scheduler '
                  'treats the host by its stale_policy; from the old data, '
                  '%s' % (age, stale_after, reason))
    recommendations = recommend.for_finding(
        sample, verdict, [p for p in measured if p.over], thresholds)
    return Finding(host=sample.host, verdict=verdict,
                   dominant=dominant.path if dominant else None,
                   pressures=pressures, age_s=age, reason=reason,
                   recommendations=tuple(recommendations))


def analyze_all(samples, thresholds, now, stale_after):
    """:func:`analyze` every ``{host: sample}``; returns findings by host."""
    return {host: analyze(sample, thresholds, now, stale_after)
            for host, sample in sorted(samples.items())}
