"""LatencyFilter/LatencyWeigher logic with in-memory host states."""

import dataclasses
import gc

import fixtures
from nova import objects

from multimodal_virt.scheduler import latency_filter
from multimodal_virt.scheduler import latency_weigher
from multimodal_virt.scheduler import node
from multimodal_virt.scheduler import provider
from tests import base
from tests.unit.scheduler import fakes
from tests.functional import samples


FixedStore = fakes.MemoryStore


@dataclasses.dataclass
class FakeHostState:
    host: str
    num_instances: int = 0
    aggregates: list = dataclasses.field(default_factory=list)
    nodename: str = None
    hypervisor_type: str = 'QEMU'


def _spec(extra_specs, rebuild=False):
    objects.register_all()
    spec = objects.RequestSpec(flavor=objects.Flavor(
        name='f', flavorid='f', extra_specs=extra_specs))
    spec.scheduler_hints = (
        {'_nova_check_type': ['rebuild']} if rebuild else {})
    return spec


class PluginTestBase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.store = FixedStore({
            'fast': samples.host_sample('fast', io_us=60, gpu_us=60),
            'slowio': samples.host_sample('slowio', io_us=2000, gpu_us=60),
            'old': samples.host_sample('old', io_us=60, age=600),
        })
        self.provider = provider.SnapshotProvider(self.conf, store=self.store)
        self.provider.refresh()


class LatencyFilterTest(PluginTestBase):

    def setUp(self):
        super().setUp()
        self.filter = latency_filter.LatencyFilter(self.conf, self.provider)
        self.hosts = [FakeHostState(h) for h in
                      ('fast', 'slowio', 'old', 'unknown')]

    def _passing(self, extra_specs, rebuild=False):
        # Nova's own loop (BaseFilter.filter_all -> _filter_one), which is
        # where RUN_ON_REBUILD is honoured.
        spec = _spec(extra_specs, rebuild)
        return [h.host for h in self.filter.filter_all(self.hosts, spec)]

    def test_no_slo_passes_everything(self):
        self.assertEqual(['fast', 'slowio', 'old', 'unknown'],
                         self._passing({}))

    def test_slo_rejects_with_reason(self):
        logger = self.useFixture(fixtures.FakeLogger(level='DEBUG'))
        self.assertEqual(['fast', 'old', 'unknown'],
                         self._passing({'multimodal_virt:io_p99_us': '500'}))
        self.assertIn('slowio (slowio) rejected: io p99 latency',
                      logger.output)
        self.assertIn('multimodal_virt:io_p99_us=500', logger.output)

    def test_rebuild_is_not_filtered(self):
        self.assertEqual(['fast', 'slowio', 'old', 'unknown'], self._passing(
            {'multimodal_virt:io_p99_us': '500'}, rebuild=True))

    def test_stale_reject_policy_only_for_slo_flavors(self):
        self.flags('multimodal_virt_scheduler', stale_policy='reject',
                   stale_after=60)
        self.provider.refresh()
        self.assertEqual(['fast', 'unknown'], self._passing(
            {'multimodal_virt:io_p99_us': '500'}))
        # A flavor without latency SLOs is never filtered, stale or not.
        self.assertEqual(['fast', 'slowio', 'old', 'unknown'],
                         self._passing({}))

    def test_all_stale_never_blocks_flavors_without_slos(self):
        self.flags('multimodal_virt_scheduler', stale_policy='reject',
                   stale_after=60)
        self.store.samples = {
            host: samples.host_sample(host, io_us=60, age=600)
            for host in ('fast', 'slowio', 'old')}
        # Older timestamps than already seen would be refused as replays:
        # judge them as a scheduler that starts now does.
        self.store.forget_history()
        self.provider.refresh()
        self.assertEqual(['fast', 'slowio', 'old', 'unknown'],
                         self._passing({}))
        self.assertEqual(['unknown'], self._passing(
            {'multimodal_virt:io_p99_us': '500'}))

    def test_one_snapshot_per_request(self):
        spec = _spec({'multimodal_virt:io_p99_us': '500'})
        first = list(self.filter.filter_all(self.hosts[:1], spec))
        # A refresh swaps in a snapshot where 'fast' is over the SLO; the
        # request in flight keeps judging with the one it started with.
        self.store.samples = {
            'fast': samples.host_sample('fast', io_us=5000)}
        self.provider.refresh()
        self.assertEqual(first, list(self.filter.filter_all(self.hosts[:1],
                                                            spec)))
        self.assertEqual([], list(self.filter.filter_all(
            self.hosts[:1], _spec({'multimodal_virt:io_p99_us': '500'}))))

    def test_nodes_of_one_host_judged_apart(self):
        slow = samples.host_sample('twin', io_us=4000)
        fast = samples.host_sample('twin', io_us=60, nodename='twin-b')
        self.store.samples = {slow.key: slow, fast.key: fast}
        self.provider.refresh()
        spec = _spec({'multimodal_virt:io_p99_us': '500'})
        self.assertFalse(self.filter.host_passes(FakeHostState('twin'), spec))
        self.assertTrue(self.filter.host_passes(
            FakeHostState('twin', nodename='twin-b'), spec))

    def test_node_judged_by_own_sample_else_host_sample(self):
        self.store.samples = {
            'fast': samples.host_sample('fast', io_us=60)}
        self.provider.refresh()
        spec = _spec({'multimodal_virt:io_p99_us': '500'})
        # A libvirt node named by FQDN under a short service host name.
        fqdn = FakeHostState('fast', nodename='fast.example.org')
        self.assertTrue(self.filter.host_passes(fqdn, spec))
        self.assertIsNotNone(node.locate(self.provider.snapshot(), fqdn)[1])
        # Ironic nodes never borrow their service host's sample.
        ironic = FakeHostState('fast', nodename='4f0c-node',
                               hypervisor_type='ironic')
        self.assertIsNone(node.locate(self.provider.snapshot(), ironic)[1])
        self.assertTrue(self.filter.host_passes(ironic, spec))

    def test_malformed_slo_rejects_all_hosts(self):
        self.assertEqual([], self._passing(
            {'multimodal_virt:io_p99_us': 'soon'}))

    def test_host_passes_single_host_api(self):
        self.assertFalse(self.filter.host_passes(
            FakeHostState('slowio'),
            _spec({'multimodal_virt:io_p99_us': '500'})))


class LatencyWeigherTest(PluginTestBase):

    def setUp(self):
        super().setUp()
        self.weigher = latency_weigher.LatencyWeigher(self.conf,
                                                      self.provider)

    def _weights(self, hosts, request=None):
        """Weigh ``hosts`` for ``request`` (a new, finished one if None)."""
        wrapped = [type('W', (), {'obj': h}) for h in hosts]
        return self.weigher.weigh_objects(wrapped, request or _spec({}))

    def test_lower_latency_weighs_more(self):
        fast, slow, old, unknown = self._weights(
            [FakeHostState(h) for h in ('fast', 'slowio', 'old', 'unknown')])
        self.assertGreater(fast, slow)
        self.assertEqual(slow, old)  # stale: penalised to the worst
        self.assertGreater(unknown, slow)  # missing: neutral, not erased
        self.assertLess(unknown, fast)

    def test_herd_penalty_grows_with_boots(self):
        host = FakeHostState('fast', num_instances=3)
        before, = self._weights([host])
        host.num_instances = 5
        after, = self._weights([host])
        penalty = self.weigher._herd.penalty(self.provider.snapshot(),
                                             self.provider.snapshot().policy)
        self.assertGreater(penalty, 0)
        self.assertAlmostEqual(before - 2 * penalty, after)

    def test_selections_count_across_requests(self):
        penalty = self.weigher._herd.penalty(self.provider.snapshot(),
                                             self.provider.snapshot().policy)
        self.assertGreater(penalty, 0)
        base_fast = -self.provider.snapshot().base_score('fast')
        # Request 1 weighs; while it claims, request 2 sees its decision.
        first = _spec({})
        states = [FakeHostState(h) for h in ('fast', 'slowio', 'unknown')]
        self._weights(states, first)
        fast, _, _ = self._weights(
            [FakeHostState(h) for h in ('fast', 'slowio', 'unknown')])
        self.assertAlmostEqual(base_fast - penalty, fast)
        # Nova consumes the host it selected; request 1 ends. Request 3
        # gets fresh HostStates (the compute has not claimed the instance
        # yet): one boot still counts, once.
        states[0].num_instances += 1
        del first
        gc.collect()
        fast, _, _ = self._weights(
            [FakeHostState(h) for h in ('fast', 'slowio', 'unknown')])
        self.assertAlmostEqual(base_fast - penalty, fast)

    def test_no_data_means_no_influence(self):
        empty = provider.SnapshotProvider(self.conf, store=FixedStore({}))
        empty.refresh()
        self.weigher = latency_weigher.LatencyWeigher(self.conf, empty)
        self.assertEqual([0.0, 0.0], self._weights(
            [FakeHostState('a', num_instances=9), FakeHostState('b')]))

    def test_multiplier_from_conf_and_aggregate(self):
        self.flags('multimodal_virt_scheduler', weight_multiplier=2.5)
        self.assertEqual(2.5, self.weigher.weight_multiplier(
            FakeHostState('fast')))
        aggregate = objects.Aggregate(
            id=1, name='gpu', hosts=['fast'],
            metadata={latency_weigher.AGGREGATE_MULTIPLIER_KEY: '7'})
        self.assertEqual(7.0, self.weigher.weight_multiplier(
            FakeHostState('fast', aggregates=[aggregate])))
