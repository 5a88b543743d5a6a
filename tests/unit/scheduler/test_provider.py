import gc
import threading
import time

import fixtures
from oslo_config import cfg

from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt.metrics import vocabulary
from multimodal_virt.scheduler import provider
from multimodal_virt.stores import file as file_store
from tests import base
from tests.unit.scheduler import fakes
from tests.functional import samples


CountingStore = fakes.MemoryStore


class BlockingStore(CountingStore):
    """A store whose read waits until the test releases it."""

    def __init__(self, samples_by_host):
        super().__init__(samples_by_host)
        self.reading = threading.Event()
        self.release = threading.Event()

    def get_all(self):
        self.reading.set()
        self.release.wait(30)
        return super().get_all()


class Request(object):
    """Stands in for a RequestSpec: weak-referable, identity-hashed."""


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting')
        time.sleep(0.01)


class SnapshotProviderTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags('multimodal_virt_scheduler', refresh_interval=5.0,
                   stale_after=60.0, forget_after=600.0)
        self.clock = base.FakeClock(time.time())

    def _provider(self, store):
        return provider.SnapshotProvider(self.conf, store=store,
                                         clock=self.clock)

    def test_requests_never_read_the_store(self):
        store = CountingStore({'a': samples.host_sample('a', io_us=100)})
        prov = self._provider(store)
        self.assertEqual(0, len(prov.snapshot()))  # nothing refreshed yet
        first = prov.refresh()
        for _ in range(100):
            self.assertIs(first, prov.snapshot())
        self.assertEqual(1, store.reads)
        self.assertIsNot(first, prov.refresh())
        self.assertEqual(2, store.reads)

    def test_one_snapshot_per_request(self):
        store = CountingStore({'a': samples.host_sample('a', io_us=100)})
        prov = self._provider(store)
        prov.refresh()
        request, other = Request(), Request()
        seen = prov.snapshot_for(request)
        prov.refresh()
        # The request keeps its snapshot after a swap; a new one gets the
        # new snapshot.
        self.assertIs(seen, prov.snapshot_for(request))
        self.assertIs(prov.snapshot(), prov.snapshot_for(other))
        self.assertIsNot(seen, prov.snapshot_for(other))
        # Interleaved requests (two schedulers' threads) keep their own.
        self.assertIs(seen, prov.snapshot_for(request))
        self.assertIsNot(seen, prov.snapshot_for(other))
        del request
        gc.collect()
        self.assertEqual(1, len(prov._per_request))

    def test_refresh_paces_its_read_verification_and_build(self):
        store = CountingStore({'h%d' % i: samples.host_sample('h%d' % i,
                                                              io_us=100)
                               for i in range(3)})
        calls = []
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.scheduler.provider._pace',
            lambda: calls.append(1)))
        self.assertEqual(3, len(self._provider(store).refresh()))
        # One chunk verified, then one pause per vocabulary metric and one
        # before the lists are built.
        self.assertEqual(1 + len(vocabulary.LATENCY_METRICS) + 1, len(calls))

    def test_store_down_keeps_last_samples_which_age(self):
        logger = self.useFixture(fixtures.FakeLogger())
        store = CountingStore({'a': samples.host_sample('a', io_us=100)})
        prov = self._provider(store)
        self.assertFalse(prov.refresh().stale[0])
        store.error = exception.StoreUnavailable('refused')
        for _ in range(5):
            snap = prov.refresh()
            self.assertEqual(['a'], list(snap.index))
            self.assertFalse(snap.stale[0])
        self.clock.now += 61.0
        self.assertTrue(prov.refresh().stale[0])
        self.assertEqual(1, logger.output.count('Latency stats unavailable'))

    def test_unexpected_error_never_escapes(self):
        store = CountingStore(error=RuntimeError('boom'))
        self.assertEqual(0, len(self._provider(store).refresh()))

    def test_build_failure_keeps_the_previous_snapshot(self):
        store = CountingStore({'a': samples.host_sample('a', io_us=100)})
        prov = self._provider(store)
        first = prov.refresh()
        store.read_batch = lambda now, pace: object()  # build fails
        self.assertIs(first, prov.refresh())
        self.assertIs(first, prov.snapshot())

    def test_vanished_host_stays_stale_until_forgotten(self):
        store = CountingStore({
            'dead': samples.host_sample('dead', io_us=100),
            'live': samples.host_sample('live', io_us=100)})
        prov = self._provider(store)
        prov.refresh()
        del store.samples['dead']  # e.g. its memcached key expired
        self.clock.now += 120.0
        store.samples['live'] = samples.host_sample('live', io_us=100,
                                                    age=-120.0)
        snap = prov.refresh()
        self.assertEqual({'dead', 'live'}, set(snap.index))
        self.assertTrue(snap.stale[snap.row('dead')])
        self.assertFalse(snap.stale[snap.row('live')])
        self.clock.now += 600.0
        self.assertIsNone(prov.refresh().row('dead'))

    def test_forget_after_is_at_least_stale_after(self):
        self.flags('multimodal_virt_scheduler', forget_after=0.0)
        store = CountingStore({'dead': samples.host_sample('dead')})
        prov = self._provider(store)
        prov.refresh()
        store.samples = {}
        self.clock.now += 30.0
        self.assertIsNotNone(prov.refresh().row('dead'))
        self.clock.now += 31.0
        self.assertIsNone(prov.refresh().row('dead'))


class RefresherTest(base.TestCase):
    """The background refresher, with the threading module in use here."""

    def setUp(self):
        super().setUp()
        self.flags('multimodal_virt_scheduler', refresh_interval=0.05)

    def test_refresher_swaps_in_snapshots(self):
        store = CountingStore({'a': samples.host_sample('a', io_us=100)})
        prov = provider.SnapshotProvider(self.conf, store=store)
        self.addCleanup(prov.close)
        prov.start()
        _wait_for(lambda: len(prov.snapshot()) == 1)
        store.samples['b'] = samples.host_sample('b', io_us=50)
        _wait_for(lambda: len(prov.snapshot()) == 2)

    def test_requests_do_not_wait_for_a_slow_store(self):
        store = BlockingStore({'a': samples.host_sample('a', io_us=100)})
        prov = provider.SnapshotProvider(self.conf, store=store)
        self.addCleanup(prov.close)
        self.addCleanup(store.release.set)
        prov.start()
        _wait_for(store.reading.is_set)
        # The refresher is inside the store read: requests get the current
        # (empty) snapshot at once instead of waiting for it.
        before = prov.snapshot_for(Request())
        self.assertEqual(0, len(before))
        self.assertEqual(0, store.reads)
        store.release.set()
        _wait_for(lambda: len(prov.snapshot()) == 1)

    def test_refresher_ends_with_its_provider(self):
        store = CountingStore()
        prov = provider.SnapshotProvider(self.conf, store=store)
        prov.start()
        _wait_for(lambda: store.reads > 0)
        threads = [t for t in threading.enumerate()
                   if t.name == 'multimodal-virt-snapshot-refresher']
        del prov
        gc.collect()
        reads = store.reads
        time.sleep(0.3)
        self.assertLessEqual(store.reads, reads + 1)
        for thread in threads:
            thread.join(5)

    def test_close_stops_the_refresher(self):
        store = CountingStore()
        prov = provider.SnapshotProvider(self.conf, store=store)
        prov.start()
        _wait_for(lambda: store.reads > 0)
        prov.close()
        time.sleep(0.1)
        reads = store.reads
        time.sleep(0.3)
        self.assertEqual(reads, store.reads)


class SharedProviderTest(base.TestCase):

    def test_one_provider_per_config_object(self):
        first = provider.SnapshotProvider.shared(self.conf)
        self.addCleanup(first.close)
        self.assertIs(first, provider.SnapshotProvider.shared(self.conf))
        other = cfg.ConfigOpts()
        mmv_conf.register_opts(other)
        second = provider.SnapshotProvider.shared(other)
        self.addCleanup(second.close)
        self.assertIsNot(first, second)

    def test_store_reloaded_when_its_options_change(self):
        one = self.useFixture(fixtures.TempDir()).path
        two = self.useFixture(fixtures.TempDir()).path
        self.flags('multimodal_virt_store', driver='file', file_path=one)
        prov = provider.SnapshotProvider(self.conf)
        file_store.FileStore(self.conf).put(samples.host_sample('in-one'))
        self.assertEqual(['in-one'], list(prov.refresh().index))
        self.flags('multimodal_virt_store', file_path=two)
        file_store.FileStore(self.conf).put(samples.host_sample('in-two'))
        self.assertIn('in-two', prov.refresh().index)
