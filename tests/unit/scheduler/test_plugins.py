"""LatencyFilter/LatencyWeigher logic with in-memory host states."""

import dataclasses

import fixtures
from nova import objects

from multimodal_virt.metrics import codec
from multimodal_virt.scheduler import latency_filter
from multimodal_virt.scheduler import latency_weigher
from multimodal_virt.scheduler import provider
from tests import base
from tests.functional import samples


class FixedStore(object):
    def __init__(self, samples_by_host):
        self.samples = samples_by_host

    def get_all(self):
        return self.samples

    def read_batch(self, now):
        return codec.SampleBatch.from_samples(self.get_all())


@dataclasses.dataclass
class FakeHostState:
    host: str
    num_instances: int = 0
    aggregates: list = dataclasses.field(default_factory=list)


def _spec(extra_specs):
    objects.register_all()
    return objects.RequestSpec(flavor=objects.Flavor(
        name='f', flavorid='f', extra_specs=extra_specs))


class PluginTestBase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.store = FixedStore({
            'fast': samples.host_sample('fast', io_us=60, gpu_us=60),
            'slowio': samples.host_sample('slowio', io_us=2000, gpu_us=60),
            'old': samples.host_sample('old', io_us=60, age=600),
        })
        self.provider = provider.SnapshotProvider(self.conf, store=self.store)


class LatencyFilterTest(PluginTestBase):

    def setUp(self):
        super().setUp()
        self.filter = latency_filter.LatencyFilter(self.conf, self.provider)
        self.hosts = [FakeHostState(h) for h in
                      ('fast', 'slowio', 'old', 'unknown')]

    def _passing(self, extra_specs):
        return [h.host for h in self.filter.filter_all(self.hosts,
                                                       _spec(extra_specs))]

    def test_no_slo_passes_everything(self):
        self.assertEqual(['fast', 'slowio', 'old', 'unknown'],
                         self._passing({}))

    def test_slo_rejects_with_reason(self):
        logger = self.useFixture(fixtures.FakeLogger(level='DEBUG'))
        self.assertEqual(['fast', 'old', 'unknown'],
                         self._passing({'multimodal_virt:io_p99_us': '500'}))
        self.assertIn('slowio rejected: io p99 latency', logger.output)
        self.assertIn('multimodal_virt:io_p99_us=500', logger.output)

    def test_stale_reject_policy(self):
        self.flags('multimodal_virt_scheduler', stale_policy='reject',
                   stale_after=60)
        self.provider.invalidate()
        self.assertEqual(['fast', 'slowio', 'unknown'], self._passing({}))

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

    def _weights(self, hosts):
        wrapped = [type('W', (), {'obj': h}) for h in hosts]
        return self.weigher.weigh_objects(wrapped, None)

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
        snap = self.provider.snapshot()
        self.assertAlmostEqual(before - 2 * snap.herd_penalty, after)

    def test_no_data_means_no_influence(self):
        self.store.samples = {}
        self.provider.invalidate()
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
