"""The memcached store against a real memcached started by the test."""

import os
import pickle
import shutil
import socket
import subprocess
import sys
import time

import fixtures

from multimodal_virt import exception
from multimodal_virt.metrics import aggregate
from multimodal_virt.scheduler import aggregator
from multimodal_virt.scheduler import store_reader
from multimodal_virt.stores import loader
from multimodal_virt.stores import memcached
from tests import base
from tests.functional import fixtures as mmv_fixtures
from tests.functional import requirements
from tests.functional import samples
from tests.unit.metrics import test_aggregate


class _Evil(object):
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


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
        self.store._client.set(self.store.sample_key('bad'),
                               b'{"version": 1, "host": "bad"}')
        logger = self.useFixture(fixtures.FakeLogger())
        self.assertEqual({'good'}, set(self.store.get_all()))
        self.assertIn("'bad'", logger.output)

    def test_pickle_payload_never_runs(self):
        # A raw memcached "set" with pymemcache's pickle flag (1) and
        # oslo.cache's dogpile flag: the value is a pickle that would create
        # a file if anything unpickled it. It must only ever be bytes.
        marker = os.path.join(self.useFixture(fixtures.TempDir()).path,
                              'pwned')
        evil = pickle.dumps(_Evil(marker))
        self.store.put(samples.host_sample('victim', io_us=50))
        for flags in (1, 2, 3):
            self.store = loader.get_store(self.conf)
            with socket.create_connection(
                    ('127.0.0.1', self.memcached.port)) as conn:
                key = self.store.sample_key('victim').encode()
                conn.sendall(b'set %s %d 0 %d\r\n%s\r\n'
                             % (key, flags, len(evil), evil))
                self.assertEqual(b'STORED\r\n', conn.recv(64))
            logger = self.useFixture(fixtures.FakeLogger())
            self.assertEqual({}, self.store.get_all())
            self.assertEqual([], self.store.read_batch(time.time()).keys)
            self.assertIsNone(self.store.get('victim'))
            self.assertEqual(evil, self.store.read('victim'))
            self.assertFalse(os.path.exists(marker))
            self.assertIn('victim', logger.output)

    def test_concurrent_writers_lose_no_index_entry(self):
        # 8 processes publish 25 hosts each into the same 64 shards at once;
        # cas retries mean every name lands in the index.
        script = (
            'import sys\n'
            'from oslo_config import cfg\n'
            'from multimodal_virt import conf\n'
            'from multimodal_virt.stores import memcached\n'
            'from tests.functional import samples\n'
            'c = cfg.ConfigOpts(); conf.register_opts(c); c([])\n'
            'g = "multimodal_virt_store"\n'
            'c.set_override("signing_keys", [sys.argv[1]], g)\n'
            'c.set_override("memcached_servers", [sys.argv[2]], g)\n'
            'c.set_override("key_prefix", sys.argv[3], g)\n'
            'store = memcached.MemcachedStore(c)\n'
            'for i in range(25):\n'
            '    store.put(samples.host_sample("w%s-%d" % (sys.argv[4], i)))\n')
        writers = [subprocess.Popen(
            [sys.executable, '-c', script, base.TEST_SIGNING_KEY,
             self.memcached.server, 't%d' % self.memcached.port, str(n)])
            for n in range(8)]
        for writer in writers:
            self.assertEqual(0, writer.wait(60))
        self.assertEqual(200, len(self.store.read_all()))

    def test_index_bounded_and_huge_index_read_fast(self):
        self.flags('multimodal_virt_store', max_hosts=640)
        store = loader.get_store(self.conf)
        store.put(samples.host_sample('real', io_us=50))
        shard = store.shard_key('real')
        # Names that all hash to real's shard, then junk, then real.
        same = [b'bogus-%06d' % i for i in range(20000)
                if store.shard_key('bogus-%06d' % i) == shard]
        bogus = b'\n'.join(same + [b'junk'] * 60000 + [b'real'])
        store._client.set(shard, bogus)
        logger = self.useFixture(fixtures.FakeLogger())
        started = time.monotonic()
        self.assertLessEqual(len(store._index()), store.shard_limit)
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertIn('ignored', logger.output)
        # The real writer's next publish prunes names with no sample.
        store.put(samples.host_sample('real', io_us=50))
        self.assertEqual({'real'}, set(store.read_all()))

    def test_sample_ttl_set_on_each_key(self):
        self.flags('multimodal_virt_store', sample_ttl=1)
        store = loader.get_store(self.conf)
        store.put(samples.host_sample('short-lived'))
        self.flags('multimodal_virt_store', sample_ttl=0)
        loader.get_store(self.conf).put(samples.host_sample('forever'))
        self.assertEqual({'short-lived', 'forever'}, set(store.get_all()))
        time.sleep(2.1)
        self.assertEqual({'forever'}, set(store.get_all()))

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


#: An aggregator writing two aggregates alternately into memcached until
#: killed: argv is the signing key, the server, the key prefix, the two
#: files.
_AGGREGATE_WRITER = """
import sys
from oslo_config import cfg
from multimodal_virt import conf
from multimodal_virt.stores import memcached
c = cfg.ConfigOpts()
conf.register_opts(c)
c([], default_config_files=[])
group = 'multimodal_virt_store'
c.set_override('signing_keys', [sys.argv[1]], group)
c.set_override('memcached_servers', [sys.argv[2]], group)
c.set_override('key_prefix', sys.argv[3], group)
c.set_override('socket_timeout', 5.0, group)
store = memcached.MemcachedStore(c)
payloads = [open(path, 'rb').read() for path in sys.argv[4:6]]
written = 0
while True:
    store.write_aggregate(payloads[written % 2])
    written += 1
"""


class MemcachedAggregateTest(test_aggregate.BatchAssertions, base.TestCase):
    """Aggregates larger than one memcached item, written and read."""

    def setUp(self):
        super().setUp()
        requirements.require(self, shutil.which('memcached'),
                             'memcached binary not installed')
        # Room for several generations of multi-megabyte aggregates.
        self.memcached = self.useFixture(mmv_fixtures.MemcachedFixture(
            extra_args=['-m', '256']))
        self.flags('multimodal_virt_store', driver='memcached',
                   memcached_servers=[self.memcached.server],
                   key_prefix='agg%d' % self.memcached.port,
                   socket_timeout=5.0)
        self.store = loader.get_store(self.conf)

    def _head(self):
        generation, chunks, size = self.store._client.get(
            self.store._aggregate_key).split()
        return generation.decode(), int(chunks), int(size)

    def _chunks_present(self, generation, count):
        keys = self.store._chunk_keys(generation, count)
        return len(self.store._client.get_many(keys))

    def test_round_trip_over_several_chunks(self):
        batch = test_aggregate.valid_batch(test_aggregate.hosts(3500))
        now = time.time()
        size = self.store.publish_aggregate(batch, now)
        self.assertGreater(size, memcached.AGGREGATE_CHUNK_BYTES)
        generation, chunks, stated = self._head()
        self.assertEqual((2, size), (chunks, stated))
        self.assertEqual(2, self._chunks_present(generation, chunks))
        # Another process's store (a scheduler) reads it back exactly.
        reader = loader.get_store(self.conf)
        self.assertEqual(aggregate.encode(batch, reader.keyring, now),
                         reader.read_aggregate())
        decoded = reader.read_aggregate_batch(now + 1, max_age=15)
        self.assertBatchEqual(batch, decoded)
        self.assertEqual({}, decoded.rejected)

    def test_third_write_deletes_the_first_generation(self):
        keys = test_aggregate.hosts(3000)
        generations = []
        for seed in range(4):
            self.store.publish_aggregate(
                test_aggregate.valid_batch(keys, seed=seed), time.time())
            generations.append(self._head()[:2])
            present = [self._chunks_present(*g) for g in generations]
            # The newest two stay (a reader may be joining the older one).
            self.assertEqual([0] * (len(present) - 2) +
                             [g[1] for g in generations[-2:]], present)
        self.assertEqual(4, len(set(g for g, _ in generations)))
        self.assertEqual(2, generations[0][1])

    def test_reader_racing_writers_never_joins_two_generations(self):
        # Two aggregator processes (HA) publish A and B, alternately,
        # while a scheduler reads: a read is A, B or nothing (chunks of a
        # generation deleted meanwhile), never a mix.
        keys = test_aggregate.hosts(5000)
        now = time.time()
        work = self.useFixture(fixtures.TempDir()).path
        payloads, files = [], []
        for seed in (1, 2):
            payloads.append(aggregate.encode(
                test_aggregate.valid_batch(keys, seed=seed),
                self.store.keyring, now))
            files.append(os.path.join(work, '%d.mmva' % seed))
            with open(files[-1], 'wb') as handle:
                handle.write(payloads[-1])
        self.assertEqual(len(payloads[0]), len(payloads[1]))
        self.assertEqual(3, -(-len(payloads[0]) //
                              memcached.AGGREGATE_CHUNK_BYTES))
        for order in (files, files[::-1]):
            writer = subprocess.Popen(
                [sys.executable, '-c', _AGGREGATE_WRITER,
                 base.TEST_SIGNING_KEY, self.memcached.server,
                 'agg%d' % self.memcached.port]
                + order)
            self.addCleanup(writer.wait)
            self.addCleanup(writer.kill)
        reader = loader.get_store(self.conf)
        seen = {'A': 0, 'B': 0, None: 0, 'mixed': 0}
        deadline = time.monotonic() + 20
        while min(seen['A'], seen['B']) < 20 and time.monotonic() < deadline:
            payload = reader.read_aggregate()
            if payload is None:
                seen[None] += 1
            elif payload == payloads[0]:
                seen['A'] += 1
            elif payload == payloads[1]:
                seen['B'] += 1
            else:  # (never compare megabytes in a failure message)
                seen['mixed'] += 1
        self.assertEqual(0, seen['mixed'], seen)
        self.assertGreaterEqual(min(seen['A'], seen['B']), 20, seen)

    # An aggregator's batch keeps each vanished node's last good sample
    # for forget_after, as every refresh does: it may hold more than
    # max_hosts rows, and schedulers must read it.
    def test_aggregate_with_vanished_nodes_is_read(self):
        self.flags('multimodal_virt_store', max_hosts=5)
        store = loader.get_store(self.conf)
        for i in range(5):
            store.put(samples.host_sample('old-%d' % i, io_us=100))
        publisher = aggregator.Aggregator(self.conf)
        publisher.run_once()
        retain = store_reader.retain_seconds(self.conf)
        direct = store_reader.StoreReader(self.conf)
        self.flags('multimodal_virt_store', aggregate_max_age=0)
        self.assertEqual(5, len(direct.read(time.time(), retain)))
        for i in range(5):  # five nodes replaced by five others
            store.delete('old-%d' % i)
            store.put(samples.host_sample('new-%d' % i, io_us=100))
        self.assertEqual(10, publisher.run_once()['nodes'])
        # A scheduler reading every sample keeps the vanished ones too.
        self.assertEqual(10, len(direct.read(time.time(), retain)))
        self.flags('multimodal_virt_store', aggregate_max_age=15)
        reader = store_reader.StoreReader(self.conf)
        batch = reader.read(time.time(), retain)
        self.assertTrue(reader.from_aggregate, 'the aggregate was refused')
        self.assertEqual(10, len(batch))


class MemcachedTlsTest(base.TestCase):
    """The TLS options reach a real memcached started with ``-Z``."""

    def setUp(self):
        super().setUp()
        requirements.require(self, shutil.which('memcached'),
                             'memcached binary not installed')
        requirements.require(self, shutil.which('openssl'),
                             'openssl binary not installed')
        work = self.useFixture(fixtures.TempDir()).path
        self.cert = os.path.join(work, 'cert.pem')
        key = os.path.join(work, 'key.pem')
        subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
             '-keyout', key, '-out', self.cert, '-days', '1',
             '-subj', '/CN=127.0.0.1', '-addext',
             'subjectAltName=IP:127.0.0.1'],
            check=True, capture_output=True)
        os.chmod(key, 0o644)  # memcached drops to "nobody"
        os.chmod(work, 0o755)
        self.memcached = self.useFixture(mmv_fixtures.MemcachedFixture(
            extra_args=['-Z', '-o', 'ssl_chain_cert=%s,ssl_key=%s'
                        % (self.cert, key)]))
        self.flags('multimodal_virt_store', driver='memcached',
                   memcached_servers=[self.memcached.server],
                   key_prefix='tls', socket_timeout=2.0)

    def test_round_trip_over_tls(self):
        self.flags('multimodal_virt_store', memcached_tls_enabled=True,
                   memcached_tls_cafile=self.cert)
        store = loader.get_store(self.conf)
        sample = samples.host_sample('a', io_us=50)
        store.put(sample)
        self.assertEqual({'a': sample}, store.get_all())

    def test_untrusted_server_certificate_refused(self):
        self.flags('multimodal_virt_store', memcached_tls_enabled=True)
        store = loader.get_store(self.conf)  # system CAs: not ours
        self.assertRaises(exception.StoreUnavailable, store.put,
                          samples.host_sample('a'))

    def test_plaintext_client_does_not_get_a_sample(self):
        store = loader.get_store(self.conf)
        self.assertRaises(exception.StoreUnavailable, store.put,
                          samples.host_sample('a'))
