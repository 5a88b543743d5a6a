"""Herd guard: boots placed on a node since its sample count against it.

Between two samples the scheduler is blind to the load its own placements
add, so a burst of boots would all pick the one "best" node. Nova builds
fresh ``HostState`` objects for every request, so what one request placed
is not in the next request's ``num_instances`` until the compute host has
claimed the instance. The guard therefore keeps the scheduler's own record
of its selections, with no network call:

* each weighing is a pending decision for the node the latency ranking put
  first, counted as one boot there until it is settled, so separate
  requests weighed while earlier ones are still claiming in Placement see
  each other (as the instances of one multi-create do);
* the decision watches the request's best-weighed ``HostState`` objects:
  Nova's ``HostState.consume_from_request`` increments ``num_instances`` on
  the one it selects, and the next weighing (of this or any request)
  records that selection against the node and settles the decision; a
  decision whose request ended without one is dropped.

Boots since a node's sample are its pending decisions plus its selections
recorded after the sample's timestamp, or plus the node's ``num_instances``
growth since the sample if that is larger (selections by other scheduler
processes, once the compute host claimed them).

The penalty per boot is derived so that ``herd_spread_boots`` means what it
says: after that many boots on the best node, the next-best node gets the
next one.
"""

import collections
import threading
import time
import weakref

import numpy as np

#: Best-weighed host states watched per request: the selected one is among
#: them whenever the latency weigher decided the placement.
WATCHED_PER_REQUEST = 16
#: Seconds a watched host state is kept for Nova to consume it (it does so
#: right after weighing, once Placement accepted the claim).
WATCH_SECONDS = 30.0
#: Bound on pending decisions (concurrent requests).
MAX_DECISIONS = 1024
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


class _Decision(object):
    """One weighing: the states watched and the node it predicts."""

    __slots__ = ('request', 'watched', 'predicted', 'at')

    def __init__(self, request, watched, predicted, at):
        self.request = request
        self.watched = watched
        self.predicted = predicted
        self.at = at

    def live(self, now):
        request = self.request() if self.request is not None else True
        return request is not None and now - self.at <= WATCH_SECONDS


def _request_ref(request):
    try:
        return weakref.ref(request)
    except TypeError:
        return None


class HerdGuard(object):
    """The scheduler's record of its own selections, per compute node.

    Every weighing is a pending decision: until Nova consumes one of the
    watched host states, the node the latency ranking put first counts as
    one boot, so separate requests weighed while earlier ones are still
    claiming in Placement see each other. Once Nova consumes a state the
    selection is recorded against that node (the prediction is dropped);
    a decision whose request ended without a consumed state is dropped.

    :param max_nodes: bound on tracked nodes; tables are cleared past it.
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
        self._decisions = collections.deque()
        self._penalty = (None, 0.0)

    def penalty(self, snapshot, policy):
        """:func:`penalty_per_boot` for ``snapshot``, once per snapshot."""
        cached_for, value = self._penalty
        if cached_for is not snapshot:
            value = penalty_per_boot(snapshot, policy.herd_spread_boots,
                                     policy.herd_penalty_us)
            self._penalty = (snapshot, value)
        return value

    def weigh(self, request, states, keys, scores, since, penalty):
        """Weigh one request's nodes and record the decision, atomically.

        The nodes come as parallel lists.

        :param request: the ``RequestSpec`` (its lifetime bounds the
            pending decision).
        :param states: the nodes' ``HostState`` objects.
        :param keys: their node keys (hashable).
        :param scores: their latency scores (µs).
        :param since: the times their samples were taken.
        :param penalty: µs per boot since the sample.
        :returns: raw weights, ``-(score + boots * penalty)``.
        """
        now = self._clock()
        with self._lock:
            self._record_selections(now, request)
            pending = collections.Counter(
                d.predicted for d in self._decisions)
            weights = [
                -(score + penalty * self._boots(
                    key, taken, getattr(state, 'num_instances', 0) or 0,
                    pending[key]))
                for state, key, score, taken in zip(states, keys, scores,
                                                    since)]
            self._decide(request, states, keys, weights, now)
        return weights

    def _record_selections(self, now, request):
        """Record consumed states; drop decisions that are settled."""
        kept = collections.deque()
        for decision in self._decisions:
            consumed = False
            for state, key, seen in decision.watched:
                grown = (getattr(state, 'num_instances', 0) or 0) - seen
                if grown > 0:
                    self._add(key, now, grown)
                    consumed = True
            # A new weighing of the same request (the next instance of a
            # multi-create) settles its earlier decision either way.
            same_request = (request is not None and decision.request
                            is not None and decision.request() is request)
            if not consumed and not same_request and decision.live(now):
                kept.append(decision)
        self._decisions = kept

    def _decide(self, request, states, keys, weights, now):
        # Stable, best first, ties in Nova's order (its sort is stable too).
        ranked = sorted(range(len(states)), key=weights.__getitem__,
                        reverse=True)
        watched = tuple(
            (states[i], keys[i], getattr(states[i], 'num_instances', 0) or 0)
            for i in ranked[:WATCHED_PER_REQUEST])
        if watched:
            self._decisions.append(_Decision(
                _request_ref(request), watched, watched[0][1], now))
        while len(self._decisions) > MAX_DECISIONS:
            self._decisions.popleft()

    def _boots(self, key, sample_timestamp, num_instances, pending):
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
        # Recorded selections and num_instances growth count the same boots
        # once the compute host has claimed them: the larger is the better
        # estimate, never their sum. Pending decisions are not in either.
        return max(selected, num_instances - baseline[1], 0) + pending

    def _add(self, key, when, count):
        times = self._selections.get(key)
        if times is None:
            if len(self._selections) >= self._max_nodes:
                self._selections.clear()
            times = self._selections[key] = []
        times.extend([when] * count)
