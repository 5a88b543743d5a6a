"""Latency-tier traits on the compute node provider, set by nova-compute.

Each metric's latency (at ``tier_percentile``, from this host's latest
sample in the stats store) maps to one of three tiers, reported as one
trait ``CUSTOM_MULTIMODAL_VIRT_<IO|GPU_EXEC|GPU_SUBMIT>_LAT_<LOW|MEDIUM|HIGH>``
(the metrics of ``[multimodal_virt_compute]`` ``TIER_METRICS``). A deprecated
metric alias (``vocabulary.METRIC_ALIASES``: ``gpu_cmd`` -> ``gpu_submit``)
gets its own trait with its target's tier, so flavors written against
``CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_HIGH`` keep working. A flavor keeps away
from slow hosts with e.g. ``trait:CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH
=forbidden``.

Called from the driver's ``update_provider_tree`` after Nova's own, so the
traits travel to Placement with nova-compute's own report client, on the
provider Nova itself identifies by ``nodename``. Rules:

* **hysteresis**: a tier changes only when the latency is past the
  threshold by ``tier_hysteresis`` (relative) in the direction of the move;
* **minimum dwell**: a tier set less than ``tier_min_dwell`` seconds ago is
  kept;
* a window with no events for a metric, or fewer than the collector's
  ``min_events`` for the percentile (``HostSample.sufficient``, the
  scheduler's rule), keeps its tier; a metric the sample does not measure
  or declares not observable, a missing or stale sample removes its
  traits;
* only the traits named here (:func:`owned_traits`) are added or removed;
  every other trait of the provider is left as it is.
"""

import dataclasses
import time

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.conf import compute as compute_conf
from multimodal_virt.metrics import vocabulary
from multimodal_virt import ratelimit

LOG = logging.getLogger(__name__)

TRAIT_PREFIX = 'CUSTOM_MULTIMODAL_VIRT_'
TIERS = ('LOW', 'MEDIUM', 'HIGH')
#: metric -> trait infix, for the metrics with tier thresholds
METRICS = {metric: metric.upper() + '_LAT'
           for metric in vocabulary.LATENCY_METRICS
           if metric in compute_conf.TIER_METRICS}
#: deprecated alias -> the tiered metric whose tier its trait carries
ALIASES = {alias: target for alias, target in vocabulary.METRIC_ALIASES.items()
           if target in METRICS}
_INFIXES = dict(METRICS, **{alias: alias.upper() + '_LAT'
                            for alias in ALIASES})
# Do not read the store more often than this (a burst of claims calls
# update_provider_tree once per claim).
MIN_READ_INTERVAL = 5.0


def trait_name(metric, tier):
    """Return the trait of ``metric`` (tiered or deprecated alias) at
    ``tier``."""
    return '%s%s_%s' % (TRAIT_PREFIX, _INFIXES[metric], tier)


def owned_traits(metric=None):
    """The tier traits this module owns (of one metric, or all, aliases
    included)."""
    metrics = [metric] if metric else list(_INFIXES)
    return {trait_name(m, tier) for m in metrics for tier in TIERS}


def tier_of(trait):
    """``(metric, tier)`` of one of our tiered metrics' traits, or None
    (alias traits only mirror their target)."""
    for metric in METRICS:
        for tier in TIERS:
            if trait == trait_name(metric, tier):
                return metric, tier
    return None


def _histogram(sample, metric):
    """``(name, histogram)`` of ``metric``, or of a deprecated alias when a
    collector published only the alias; ``(metric, None)`` when the host
    declares the metric not observable or has no histogram."""
    if sample.observable.get(metric) is False:
        return metric, None
    for name in [metric] + [a for a, t in ALIASES.items() if t == metric]:
        found = getattr(sample, name, None)
        if found is not None:
            return name, found
    return metric, None


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Upper bounds (microseconds) of the LOW and MEDIUM tiers."""

    low_max_us: float
    medium_max_us: float

    def __post_init__(self):
        if not 0 <= self.low_max_us <= self.medium_max_us:
            raise exception.MultimodalVirtError(
                'tier thresholds need 0 <= low_max_us (%s) <= medium_max_us '
                '(%s)' % (self.low_max_us, self.medium_max_us))

    def tier(self, value_us, scale=1.0):
        """Plain tier of ``value_us`` with both bounds multiplied by scale."""
        if value_us <= self.low_max_us * scale:
            return 'LOW'
        if value_us <= self.medium_max_us * scale:
            return 'MEDIUM'
        return 'HIGH'


def next_tier(current, value_us, thresholds, hysteresis):
    """Tier after seeing ``value_us``, with a hysteresis band.

    Moving up needs the value above a bound raised by ``hysteresis``;
    moving down needs it below a bound lowered by ``hysteresis``.

    :param current: the current tier, or None (no tier yet: no band).
    :returns: the new tier.
    """
    if current is None:
        return thresholds.tier(value_us)
    rank = TIERS.index
    up = thresholds.tier(value_us, 1.0 + hysteresis)
    if rank(up) > rank(current):
        return up
    down = thresholds.tier(value_us, 1.0 - hysteresis)
    if rank(down) < rank(current):
        return down
    return current


@dataclasses.dataclass
class _State:
    tier: str
    since: float


class LatencyTraits:
    """Keeps the tier traits of one compute node provider up to date.

    :param group: the ``[multimodal_virt_compute]`` option group.
    :param host: this host's name in samples (Nova's ``CONF.host``).
    :param store_factory: callable returning the stats store (called once,
        lazily, so a broken store does not stop nova-compute from starting).
    :param clock: wall clock (sample timestamps are wall-clock seconds).
    """

    def __init__(self, group, host, store_factory, clock=time.time):
        self.group = group
        self.host = host
        self._store_factory = store_factory
        self._store = None
        self._clock = clock
        self._state = {}  # {nodename: {metric: _State}}
        self._sample = None
        self._read_at = None
        self._log = ratelimit.RateLimitedLog(LOG, interval=300.0)
        self._thresholds = {
            metric: Thresholds(
                getattr(group, metric + '_latency_low_max_us'),
                getattr(group, metric + '_latency_medium_max_us'))
            for metric in METRICS}

    def _latest_sample(self, now):
        """This host's latest sample; the previous one when the store fails."""
        if self._read_at is not None and now - self._read_at < (
                MIN_READ_INTERVAL):
            return self._sample
        self._read_at = now
        try:
            if self._store is None:
                self._store = self._store_factory()
            sample = self._store.get(self.host)
        except exception.MultimodalVirtError as err:
            self._log.warning('store', 'Cannot read the latency sample of '
                              '%s from the stats store, keeping the last '
                              'one: %s', self.host, err)
            return self._sample
        if sample is not None:
            self._sample = sample
        return self._sample

    def wanted(self, sample, now, current):
        """Per metric: the tier to report, or None for no trait.

        :param sample: the host's latest sample or None.
        :param now: wall-clock time of the judgement.
        :param current: ``{metric: _State}`` reported so far (updated).
        :returns: ``{metric: tier or None}``.
        """
        group = self.group
        stale = sample is None or vocabulary.is_stale(
            sample.timestamp, now, group.sample_stale_after)
        fraction = vocabulary.PERCENTILE_FRACTIONS[group.tier_percentile]
        result = {}
        for metric in METRICS:
            state = current.get(metric)
            name, histogram = (metric, None) if stale else _histogram(
                sample, metric)
            if histogram is None:
                current.pop(metric, None)
                result[metric] = None
                continue
            if histogram.count == 0 or not sample.sufficient(
                    name, group.tier_percentile):
                # No events, or fewer than the collector's min_events for
                # the percentile (the scheduler's rule: not measured).
                result[metric] = state.tier if state else None
                continue
            tier = next_tier(state.tier if state else None,
                             histogram.percentile(fraction),
                             self._thresholds[metric],
                             group.tier_hysteresis)
            if state is None:
                current[metric] = _State(tier, now)
            elif tier != state.tier:
                if now - state.since >= group.tier_min_dwell:
                    LOG.info('Latency tier of %(metric)s on %(host)s: '
                             '%(old)s -> %(new)s',
                             {'metric': metric, 'host': self.host,
                              'old': state.tier, 'new': tier})
                    current[metric] = _State(tier, now)
            result[metric] = current[metric].tier
        return result

    def _initial_state(self, traits, now):
        state = {}
        for trait in traits:
            found = tier_of(trait)
            if found:
                state[found[0]] = _State(found[1], now)
        return state

    def update(self, provider_tree, nodename):
        """Set our tier traits on ``nodename`` in Nova's provider tree.

        Never raises: a failure is logged (rate-limited) and the tree is
        left as Nova built it.
        """
        try:
            self._update(provider_tree, nodename)
        except Exception as err:  # never break nova-compute's reporting
            self._log.error('update', 'Latency tier traits of %s not '
                            'updated: %s', nodename, err)

    def _update(self, provider_tree, nodename):
        now = self._clock()
        traits = set(provider_tree.data(nodename).traits)
        if not self.group.latency_traits:
            wanted = {metric: None for metric in METRICS}
        else:
            if nodename not in self._state:
                self._state[nodename] = self._initial_state(traits, now)
            wanted = self.wanted(self._latest_sample(now), now,
                                 self._state[nodename])
        for alias, target in ALIASES.items():
            wanted[alias] = wanted[target]
        new = set(traits) - owned_traits()
        new.update(trait_name(m, t) for m, t in wanted.items() if t)
        if new != traits:
            provider_tree.remove_traits(nodename,
                                        *(traits - new))
            provider_tree.add_traits(nodename, *(new - traits))
