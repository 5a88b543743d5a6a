import dataclasses
import gc
import time

from multimodal_virt.scheduler import herd
from multimodal_virt.scheduler import snapshot
from tests import base
from tests.functional import samples


@dataclasses.dataclass
class State:
    host: str
    num_instances: int = 0


def _snap(latencies, stale=()):
    data = {h: samples.host_sample(h, io_us=us, age=600 if h in stale else 0)
            for h, us in latencies.items()}
    return snapshot.LatencySnapshot(data, snapshot.ScoringPolicy(
        stale_after=60.0), time.time())


def _simulate(latencies, boots, spread_boots):
    """Sequential boots, each on the node with the best penalised score."""
    snap = _snap(latencies)
    penalty = herd.penalty_per_boot(snap, spread_boots)
    placed = {h: 0 for h in latencies}
    order = []
    for _ in range(boots):
        best = min(sorted(latencies), key=lambda h: (
            snap.base_score(h) + placed[h] * penalty))
        placed[best] += 1
        order.append(best)
    return order


class PenaltyTest(base.TestCase):

    def test_spread_boots_means_what_it_says(self):
        latencies = {'a': 60, 'b': 250, 'c': 1000, 'd': 4000, 'e': 4000}
        for spread in (1, 2, 3, 5):
            order = _simulate(latencies, spread + 1, spread)
            self.assertEqual(['a'] * spread + ['b'], order, spread)

    def test_one_standout_among_many_does_not_collapse(self):
        # 12 nodes, one much faster: p10 == p90 of the others, which used
        # to shrink the penalty to 5 % of the median (50 boots on 'a').
        latencies = {'n%02d' % i: 1000 for i in range(11)}
        latencies['a'] = 60
        order = _simulate(latencies, 14, 3)
        self.assertEqual(['a'] * 3, order[:3])
        self.assertNotIn('a', order[3:14])
        self.assertEqual(11, len(set(order[3:14])))

    def test_near_ties_spread_sooner_never_slower(self):
        latencies = {'a': 1000, 'b': 1001, 'c': 1002}
        order = _simulate(latencies, 6, 3)
        self.assertEqual(['a', 'b', 'c', 'a', 'b', 'c'], order)

    def test_all_alike_still_spreads(self):
        snap = _snap({'a': 500, 'b': 500})
        self.assertGreater(herd.penalty_per_boot(snap, 3), 0)

    def test_outlier_cannot_squeeze_the_penalty(self):
        base_order = _simulate({'a': 60, 'b': 250, 'c': 1000}, 4, 3)
        with_outlier = _simulate({'a': 60, 'b': 250, 'c': 1000,
                                  'z': 10 ** 9}, 4, 3)
        self.assertEqual(base_order, with_outlier)

    def test_stale_rows_left_out(self):
        snap = _snap({'a': 60, 'b': 250, 'old': 10}, stale=('old',))
        self.assertAlmostEqual(190 / 2.5,
                               herd.penalty_per_boot(snap, 3), places=0)

    def test_fixed_penalty(self):
        self.assertEqual(42.0, herd.penalty_per_boot(_snap({'a': 1}), 3,
                                                     fixed_us=42.0))

    def test_empty_snapshot(self):
        self.assertEqual(0.0, herd.penalty_per_boot(_snap({}), 3))


class Request(object):
    """Stands in for a RequestSpec."""


class HerdGuardTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = base.FakeClock(1000.0)
        self.guard = herd.HerdGuard(clock=self.clock)

    def _boots(self, request, states, since=900.0, scores=None):
        """Weigh ``states`` for ``request``; return boots per host."""
        scores = scores or [0.0] * len(states)
        weights = self.guard.weigh(request, states, [s.host for s in states],
                                   scores, [since] * len(states),
                                   penalty=1.0)
        return {s.host: -w - score
                for s, w, score in zip(states, weights, scores)}

    def test_pending_decision_counts_for_concurrent_requests(self):
        first = Request()
        # 'a' ranks first (lower latency): the decision predicts it.
        self._boots(first, [State('a'), State('b')], scores=[10.0, 20.0])
        # A second request weighs while the first is still claiming.
        self.assertEqual({'a': 1, 'b': 0},
                         self._boots(Request(), [State('a'), State('b')]))

    def test_consumed_selection_replaces_the_prediction(self):
        first = Request()
        a = State('a', 5)
        self._boots(first, [a, State('b', 2)], scores=[10.0, 20.0])
        a.num_instances += 1  # Nova consumes the host it selected
        self.clock.now += 1.0
        later = Request()
        self.assertEqual({'a': 1, 'b': 0},
                         self._boots(later, [State('a', 5), State('b', 2)]))
        del later
        gc.collect()
        # The compute host claims it: num_instances grows, still one boot.
        self.assertEqual({'a': 1, 'b': 0},
                         self._boots(Request(), [State('a', 6),
                                                 State('b', 2)]))

    def test_selection_other_than_predicted(self):
        first = Request()
        b = State('b')
        self._boots(first, [State('a'), b], scores=[10.0, 20.0])
        b.num_instances += 1  # another weigher made Nova pick 'b'
        self.assertEqual({'a': 0, 'b': 1},
                         self._boots(Request(), [State('a'), State('b')]))

    def test_request_ended_without_selection_is_dropped(self):
        first = Request()
        self._boots(first, [State('a'), State('b')], scores=[10.0, 20.0])
        del first  # e.g. NoValidHost after the claims failed
        gc.collect()
        self.assertEqual({'a': 0, 'b': 0},
                         self._boots(Request(), [State('a'), State('b')]))

    def test_multi_create_counts_each_instance_once(self):
        request = Request()
        states = [State('a'), State('b')]
        for chosen in (0, 0, 1):
            self._boots(request, states, scores=[10.0, 20.0])
            states[chosen].num_instances += 1
        del request
        gc.collect()
        self.assertEqual({'a': 2, 'b': 1},
                         self._boots(Request(), [State('a'), State('b')]))

    def test_new_sample_resets_the_count(self):
        request = Request()
        a = State('a', 5)
        self._boots(request, [a])
        a.num_instances += 1
        del request
        gc.collect()
        self.assertEqual({'a': 1}, self._boots(Request(), [State('a', 6)]))
        self.assertEqual({'a': 0}, self._boots(Request(), [State('a', 6)],
                                               since=1001.0))

    def test_growth_from_other_schedulers_counts(self):
        gone = Request()
        self._boots(gone, [State('a', 5)])
        del gone
        gc.collect()
        self.assertEqual({'a': 2}, self._boots(Request(), [State('a', 7)]))

    def test_deletes_never_go_negative(self):
        gone = Request()
        self._boots(gone, [State('a', 5)])
        del gone
        gc.collect()
        self.assertEqual({'a': 0}, self._boots(Request(), [State('a', 2)]))

    def test_unsettled_decision_expires(self):
        keep = Request()
        self._boots(keep, [State('a')])
        self.clock.now += herd.WATCH_SECONDS + 1
        self.assertEqual({'a': 0}, self._boots(Request(), [State('a')]))

    def test_bounded(self):
        guard = herd.HerdGuard(max_nodes=10)
        requests = [Request() for _ in range(herd.MAX_DECISIONS + 20)]
        for i, request in enumerate(requests):
            guard.weigh(request, [State('h%d' % i)], ['h%d+n' % i],
                        [0.0], [1.0], 1.0)
        self.assertLessEqual(len(guard._decisions), herd.MAX_DECISIONS)
        self.assertLessEqual(len(guard._baselines), 10)

    def test_nodes_of_one_host_count_apart(self):
        one, two = State('h'), State('h')
        request = Request()
        self.guard.weigh(request, [one, two], ['h+n1', 'h+n2'], [0.0, 5.0],
                         [900.0, 900.0], 1.0)
        one.num_instances += 1
        weights = self.guard.weigh(Request(), [State('h'), State('h')],
                                   ['h+n1', 'h+n2'], [0.0, 0.0],
                                   [900.0, 900.0], 1.0)
        self.assertEqual([-1.0, 0.0], weights)
