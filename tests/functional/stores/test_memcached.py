"""The memcached store against a real memcached started by the test."""

import shutil
import time

from multimodal_virt import exception
from multimodal_virt.stores import loader
from multimodal_virt.stores import memcached
from tests import base
from tests.functional import fixtures as mmv_fixtures
from tests.functional import requirements
from tests.functional import samples


class MemcachedStoreTest(base.TestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, shutil.which('memcached'),
                             'memcached binary not installed')
        self.memcached = self.useFixture(mmv_fixtures.MemcachedFixture())
        self.flags('multimodal_virt_store', driver='memcached',
                   memcached_servers=[self.memcached.server],
                   key_prefix='t%d' % self.memcached.port)
        self.store = loader.get_store(self.conf)

    def test_loaded_by_stevedore(self):
        self.assertIsInstance(self.store, memcached.MemcachedStore)

    def test_many_hosts_one_batched_read(self):
        published = {}
        for i in range(200):
            s = samples.host_sample('compute-%03d' % i, io_us=10 + i)
            self.store.put(s)
            published[s.host] = s
        reader = loader.get_store(self.conf)
        self.assertEqual(published, reader.get_all())

    def test_writers_in_separate_stores_share_the_index(self):
        other = loader.get_store(self.conf)
        self.store.put(samples.host_sample('a'))
        other.put(samples.host_sample('b'))
        self.assertEqual({'a', 'b'}, set(self.store.get_all()))

    def test_delete(self):
        self.store.put(samples.host_sample('a'))
        self.store.put(samples.host_sample('b'))
        self.store.delete('a')
        self.assertEqual({'b'}, set(self.store.get_all()))

    def test_invalid_payload_skipped(self):
        self.store.put(samples.host_sample('good'))
        self.store.put(samples.host_sample('bad'))
        region = self.store._region
        region.set(self.store._sample_key('bad'),
                   b'{"version": 1, "host": "bad", "timestamp": NaN}')
        self.assertEqual({'good'}, set(self.store.get_all()))

    def test_sample_ttl_expires_entries(self):
        self.flags('multimodal_virt_store', sample_ttl=1)
        store = loader.get_store(self.conf)
        store.put(samples.host_sample('short-lived'))
        self.assertIn('short-lived', store.get_all())
        time.sleep(2.1)
        self.assertNotIn('short-lived', store.get_all())

    def test_store_down_raises_store_unavailable(self):
        self.useFixture(mmv_fixtures.MemcachedFixture()).stop()
        self.flags('multimodal_virt_store',
                   memcached_servers=['127.0.0.1:%d'
                                      % mmv_fixtures.free_port()],
                   socket_timeout=0.2)
        store = loader.get_store(self.conf)
        for _ in range(3):  # still loud after the server is marked dead
            self.assertRaises(exception.StoreUnavailable, store.get_all)
            self.assertRaises(exception.StoreUnavailable, store.put,
                              samples.host_sample('a'))

    def test_store_recovers_when_memcached_returns(self):
        self.store.put(samples.host_sample('a'))
        port = self.memcached.port
        self.memcached.stop()
        self.assertRaises(exception.StoreUnavailable, self.store.get_all)
        restarted = self.useFixture(mmv_fixtures.MemcachedFixture(port=port))
        self.assertEqual(port, restarted.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.store.put(samples.host_sample('b'))
                break
            except exception.StoreUnavailable:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.2)
        self.assertEqual({'b'}, set(self.store.get_all()))
