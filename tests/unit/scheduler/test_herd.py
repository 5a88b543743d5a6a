import dataclasses
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


class HerdGuardTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = base.FakeClock(1000.0)
        self.guard = herd.HerdGuard(clock=self.clock)

    def _weigh(self, states):
        self.guard.record_selections()
        self.guard.watch([(0.0, s, (s.host, s.host)) for s in states])

    def test_selection_counts_in_later_requests(self):
        first = State('a', 5)
        self._weigh([first, State('b', 2)])
        first.num_instances += 1  # Nova consumes the selected host
        self.clock.now += 1.0
        self._weigh([State('a', 5), State('b', 2)])  # next request
        self.assertEqual(1, self.guard.boots_since(('a', 'a'), 900.0, 5))
        self.assertEqual(0, self.guard.boots_since(('b', 'b'), 900.0, 2))

    def test_claimed_and_recorded_boots_are_not_added(self):
        first = State('a', 5)
        self._weigh([first])
        first.num_instances += 1
        self.guard.record_selections()
        self.assertEqual(1, self.guard.boots_since(('a', 'a'), 900.0, 5))
        # The compute host claims it: num_instances grows, still one boot.
        self.assertEqual(1, self.guard.boots_since(('a', 'a'), 900.0, 6))

    def test_multi_create_counts_each_instance_once(self):
        states = [State('a', 0), State('b', 0)]
        for chosen in (0, 0, 1):
            self._weigh(states)  # each instance of one request re-weighs
            states[chosen].num_instances += 1
        self.guard.record_selections()
        self.assertEqual(2, self.guard.boots_since(('a', 'a'), 900.0, 2))
        self.assertEqual(1, self.guard.boots_since(('b', 'b'), 900.0, 1))

    def test_new_sample_resets_the_count(self):
        first = State('a', 5)
        self._weigh([first])
        first.num_instances += 1
        self.guard.record_selections()
        self.assertEqual(1, self.guard.boots_since(('a', 'a'), 900.0, 6))
        self.assertEqual(0, self.guard.boots_since(('a', 'a'), 1001.0, 6))
        self.assertEqual(1, self.guard.boots_since(('a', 'a'), 1001.0, 7))

    def test_growth_from_other_schedulers_counts(self):
        self.assertEqual(0, self.guard.boots_since(('a', 'a'), 1.0, 5))
        self.assertEqual(2, self.guard.boots_since(('a', 'a'), 1.0, 7))

    def test_deletes_never_go_negative(self):
        self.guard.boots_since(('a', 'a'), 1.0, 5)
        self.assertEqual(0, self.guard.boots_since(('a', 'a'), 1.0, 2))

    def test_unselected_watch_expires(self):
        self._weigh([State('a', 0)])
        self.clock.now += herd.WATCH_SECONDS + 1
        self.guard.record_selections()
        self.assertEqual({}, dict(self.guard._watched))

    def test_bounded(self):
        guard = herd.HerdGuard(max_nodes=10)
        for i in range(25):
            guard.boots_since(('h%d' % i, 'h%d' % i), 1.0, 0)
        self.assertLessEqual(len(guard._baselines), 10)
        for _ in range(herd.MAX_WATCHED // herd.WATCHED_PER_REQUEST + 5):
            guard.watch([(0.0, State('h'), ('h', 'h'))
                         for _ in range(herd.WATCHED_PER_REQUEST)])
        self.assertLessEqual(len(guard._watched), herd.MAX_WATCHED)

    def test_nodes_of_one_host_count_apart(self):
        one, two = State('h', 0), State('h', 0)
        self.guard.watch([(1.0, one, ('h', 'n1')), (0.0, two, ('h', 'n2'))])
        one.num_instances += 1
        self.guard.record_selections()
        self.assertEqual(1, self.guard.boots_since(('h', 'n1'), 900.0, 0))
        self.assertEqual(0, self.guard.boots_since(('h', 'n2'), 900.0, 0))
