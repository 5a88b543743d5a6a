"""Herd guard: boots placed on a node since its sample count against it.

Between two samples the scheduler is blind to the load its own placements
add, so a burst of boots would all pick the one "best" node. Nova builds
fresh ``HostState`` objects for every request, so what one request placed
is not in the next request's ``num_instances`` until the compute host has
claimed the instance. The guard therefore keeps the scheduler's own record
of its selections: after weighing, it watches the few best-weighed
``HostState`` objects of the request; Nova's
``HostState.consume_from_request`` increments ``num_instances`` on the one
it selects, and the next weighing (of this or any later request) records
that selection against the node. Boots since a node's sample are the
selections recorded after the sample's timestamp, or the node's
``num_instances`` growth since the sample if that is larger (selections
made by other scheduler processes, once the compute host claimed them).

The penalty per boot is derived so that ``herd_spread_boots`` means what it
says: after that many boots on the best node, the next-best node gets the
next one.
"""

import collections
import threading
import time

import numpy as np

#: Best-weighed host states watched per request: the selected one is among
#: them whenever the latency weigher decided the placement.
WATCHED_PER_REQUEST = 16
#: Seconds a watched host state is kept for Nova to consume it (it does so
#: right after weighing, once Placement accepted the claim).
WATCH_SECONDS = 30.0
#: Bound on watched host states across concurrent requests.
MAX_WATCHED = 4096
#: The penalty never drops below this share of the median latency, so near
#: ties still spread instead of taking hundreds of boots.
MIN_PENALTY_SHARE = 0.05


def penalty_per_boot(snapshot, spread_boots, fixed_us=0.0):
    """Microseconds one boot adds to a node's blended latency.

    Automatic (``fixed_us`` 0): the gap between the best and the next-best
    distinct fresh score, at least 5 % of their median (1 µs minimum),
    divided by ``spread_boots - 0.5``. So after ``spread_boots`` boots the
    best node is just worse than the next-best, and after one boot fewer it
    is still better. Stale rows are left out, outliers above the second
    best cannot shrink it, and it cannot collapse to nothing when many
    nodes tie.

    :param snapshot: a :class:`~.snapshot.LatencySnapshot`.
    :param spread_boots: ``herd_spread_boots`` (>= 1).
    :param fixed_us: ``herd_penalty_us``; used as is when positive.
    """
    if fixed_us > 0:
        return float(fixed_us)
    scores = np.asarray(snapshot.scores, dtype=np.float64)
    fresh = scores[~np.asarray(snapshot.stale, dtype=bool)] if len(
        scores) else scores
    fresh = fresh[np.isfinite(fresh)]
    if not fresh.size:
        return 0.0
    distinct = np.unique(fresh)
    gap = float(distinct[1] - distinct[0]) if distinct.size > 1 else 0.0
    floor = max(abs(float(np.median(fresh))) * MIN_PENALTY_SHARE, 1.0)
    return max(gap, floor) / (spread_boots - 0.5)


class HerdGuard(object):
    """The scheduler's record of its own selections, per compute node.

    :param max_nodes: bound on tracked nodes; the table is cleared past it.
    :param clock: wall clock, comparable with sample timestamps.
    """

    def __init__(self, max_nodes=100000, clock=time.time):
        self._max_nodes = max_nodes
        self._clock = clock
        self._lock = threading.Lock()
        # node key -> times the scheduler selected it
        self._selections = {}
        # node key -> (sample timestamp, num_instances at first sight)
        self._baselines = {}
        # id(host_state) -> (host_state, node key, num_instances when
        # weighed, watched at), oldest first
        self._watched = collections.OrderedDict()
        self._penalty = (None, 0.0)

    def penalty(self, snapshot, policy):
        """:func:`penalty_per_boot` for ``snapshot``, once per snapshot."""
        cached_for, value = self._penalty
        if cached_for is not snapshot:
            value = penalty_per_boot(snapshot, policy.herd_spread_boots,
                                     policy.herd_penalty_us)
            self._penalty = (snapshot, value)
        return value

    def record_selections(self):
        """Record the watched host states Nova has consumed since weighing.

        Called before every weighing, so the selections of earlier requests
        (and of earlier instances of a multi-create) count.
        """
        now = self._clock()
        with self._lock:
            for ident, (state, key, seen, since) in list(
                    self._watched.items()):
                grown = (getattr(state, 'num_instances', 0) or 0) - seen
                if grown > 0:
                    self._add(key, now, grown)
                    del self._watched[ident]
                elif now - since > WATCH_SECONDS:
                    del self._watched[ident]

    def watch(self, weighed):
        """Watch the best-weighed host states of a request.

        :param weighed: ``[(raw weight, host_state, node key)]``.
        """
        best = sorted(weighed, key=lambda item: item[0], reverse=True)
        now = self._clock()
        with self._lock:
            for _, state, key in best[:WATCHED_PER_REQUEST]:
                # A state still watched has not grown since (growth is
                # recorded before each weighing): keep its first entry.
                if id(state) not in self._watched:
                    self._watched[id(state)] = (
                        state, key, getattr(state, 'num_instances', 0) or 0,
                        now)
            while len(self._watched) > MAX_WATCHED:
                self._watched.popitem(last=False)

    def boots_since(self, key, sample_timestamp, num_instances):
        """Boots placed on node ``key`` since its sample.

        :param key: ``(host, nodename)``.
        :param sample_timestamp: timestamp of the node's sample (or of the
            window standing in for it, for nodes without one); it only
            moves forward.
        :param num_instances: ``HostState.num_instances`` now.
        :returns: a non-negative integer.
        """
        with self._lock:
            times = self._selections.get(key)
            selected = 0
            if times:
                times[:] = [t for t in times if t > sample_timestamp]
                selected = len(times)
                if not selected:
                    del self._selections[key]
            baseline = self._baselines.get(key)
            if baseline is None or baseline[0] != sample_timestamp:
                if len(self._baselines) >= self._max_nodes:
                    self._baselines.clear()
                baseline = (sample_timestamp, num_instances)
                self._baselines[key] = baseline
            # Both count the same boots once the compute host has claimed
            # them: the larger is the better estimate, never their sum.
            return max(selected, num_instances - baseline[1], 0)

    def _add(self, key, when, count):
        times = self._selections.get(key)
        if times is None:
            if len(self._selections) >= self._max_nodes:
                self._selections.clear()
            times = self._selections[key] = []
        times.extend([when] * count)
