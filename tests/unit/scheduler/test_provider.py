import fixtures
from oslo_config import cfg

from multimodal_virt.metrics import codec
from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt.scheduler import provider
from multimodal_virt.stores import file as file_store
from tests import base
from tests.functional import samples


class CountingStore(object):
    def __init__(self, samples_by_host=None, error=None):
        self.samples = samples_by_host or {}
        self.error = error
        self.reads = 0

    def get_all(self):
        self.reads += 1
        if self.error:
            raise self.error
        return dict(self.samples)

    def read_batch(self, now):
        return codec.SampleBatch.from_samples(self.get_all())


class SnapshotProviderTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags('multimodal_virt_scheduler', refresh_interval=5.0)
        self.clock = base.FakeClock(1000.0)

    def _provider(self, store):
        return provider.SnapshotProvider(self.conf, store=store,
                                         monotonic=self.clock)

    def test_reads_at_most_once_per_interval(self):
        store = CountingStore({'a': samples.host_sample('a', io_us=100)})
        prov = self._provider(store)
        first = prov.snapshot()
        for _ in range(100):
            self.assertIs(first, prov.snapshot())
        self.assertEqual(1, store.reads)
        self.clock.now += 5.0
        self.assertIsNot(first, prov.snapshot())
        self.assertEqual(2, store.reads)

    def test_store_down_degrades_with_one_warning(self):
        logger = self.useFixture(fixtures.FakeLogger())
        store = CountingStore(error=exception.StoreUnavailable('refused'))
        prov = self._provider(store)
        for _ in range(5):
            self.assertEqual(0, len(prov.snapshot()))
            self.clock.now += 5.0
        self.assertEqual(5, store.reads)
        self.assertEqual(1, logger.output.count('Latency stats unavailable'))

    def test_unexpected_error_never_escapes(self):
        store = CountingStore(error=RuntimeError('boom'))
        self.assertEqual(0, len(self._provider(store).snapshot()))

    def test_invalidate(self):
        store = CountingStore()
        prov = self._provider(store)
        prov.snapshot()
        prov.invalidate()
        prov.snapshot()
        self.assertEqual(2, store.reads)


class SharedProviderTest(base.TestCase):

    def test_one_provider_per_config_object(self):
        first = provider.SnapshotProvider.shared(self.conf)
        self.assertIs(first, provider.SnapshotProvider.shared(self.conf))
        other = cfg.ConfigOpts()
        mmv_conf.register_opts(other)
        self.assertIsNot(first, provider.SnapshotProvider.shared(other))

    def test_store_reloaded_when_its_options_change(self):
        one = self.useFixture(fixtures.TempDir()).path
        two = self.useFixture(fixtures.TempDir()).path
        self.flags('multimodal_virt_store', driver='file', file_path=one)
        self.flags('multimodal_virt_scheduler', refresh_interval=0.0)
        prov = provider.SnapshotProvider(self.conf)
        file_store.FileStore(self.conf).put(samples.host_sample('in-one'))
        self.assertEqual(['in-one'], list(prov.snapshot().index))
        self.flags('multimodal_virt_store', file_path=two)
        self.assertEqual([], list(prov.snapshot().index))
