"""Hostile writers of the stats store, against the real filter and weigher.

Anyone who can write the store directory or reach memcached may be
hostile. Each case below plants something in a real file store or a real
memcached, then runs LatencyFilter and LatencyWeigher (real plugins, real
store, the scheduler's bulk read) and asserts:

* no exception comes out of the filter or the weigher, and nothing hangs
  (a 30 s timeout per test);
* no code runs (pickle payloads would create a marker file);
* the honest hosts' pass/fail, weights and order are unchanged;
* the hostile target gains nothing: ``slow`` (over the flavor SLO) still
  fails and weighs no better, ``evil`` (a name nobody publishes) stays
  without a sample;
* each rejection is logged exactly once, even over repeated refreshes.

The aggregate that ``multimodal-virt-aggregator`` publishes is planted the
same way (:class:`AggregateCases`): a hostile or unusable aggregate must
leave the ranking exactly as a read of every sample makes it, and a valid
one must be what the refresh reads.
"""

import dataclasses
import json
import os
import pickle
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time

import fixtures
from nova import objects

from multimodal_virt.metrics import aggregate
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import histogram
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import signing
from multimodal_virt.metrics import vocabulary
from multimodal_virt.scheduler import aggregator
from multimodal_virt.scheduler import latency_filter
from multimodal_virt.scheduler import latency_weigher
from multimodal_virt.scheduler import provider as provider_mod
from multimodal_virt.stores import base as store_base
from multimodal_virt.stores import file as file_store
from multimodal_virt.stores import loader
from multimodal_virt.stores import memcached as memcached_store
from tests import base
from tests.functional import fixtures as mmv_fixtures
from tests.functional import requirements
from tests.functional import samples
from tests.unit.metrics import test_aggregate

SLO = {vocabulary.slo_key('io', 'p99'): '2000'}
HONEST = (('fast', 100), ('mid', 400), ('mid2', 800), ('slow', 3000))
HOSTS = tuple(h for h, _ in HONEST) + ('evil',)
OTHER_KEY = 'another-signing-key-0123456789abcdef'
NMETRICS = len(vocabulary.LATENCY_METRICS)


@dataclasses.dataclass
class FakeHostState:
    host: str
    nodename: str = None
    num_instances: int = 0
    aggregates: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        self.nodename = self.nodename or self.host


class _Evil(object):
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def _keyring(*keys, unsigned=False):
    return signing.Keyring(list(keys), allow_unsigned=unsigned)


def _signed(host, io_us=50, keyring=None, age=0.0, **fields):
    s = samples.host_sample(host, io_us=io_us, age=age)
    if fields:
        s = dataclasses.replace(s, **fields)
    return codec.encode(s, keyring or _keyring(base.TEST_SIGNING_KEY))


def _resign(payload):
    keyring = _keyring(base.TEST_SIGNING_KEY)
    body = payload[:-codec.TAG_BYTES]
    return body + keyring.tag(body)


def _patched(offset, fmt, value, resign=False):
    def build(test):
        data = bytearray(_signed('slow'))
        struct.pack_into(fmt, data, offset, value)
        return _resign(bytes(data)) if resign else bytes(data)
    return build


def _flip(offset):
    def build(test):
        data = bytearray(_signed('slow'))
        data[offset if offset >= 0 else len(data) + offset] ^= 0x5A
        return bytes(data)
    return build


def _record(metric_index, field):
    start = codec.HEADER_BYTES + NMETRICS * codec.NAME_BYTES
    return (start + metric_index * codec.RECORD_BYTES +
            codec.RECORD_DTYPE.fields[field][1])


IO = vocabulary.LATENCY_METRICS.index('io')
_HDR = {name: codec.HEADER_DTYPE.fields[name][1]
        for name in codec.HEADER_DTYPE.names}


def _pickle(protocol):
    return lambda test: pickle.dumps(_Evil(test.marker), protocol=protocol)


def _deep_json(test):
    return b'{"version": 1, "host": "slow", "x": ' + b'[' * 2000 + b']' * 2000


def _truncated(size):
    return lambda test: _signed('slow')[:size]


def _all_max_buckets(test):
    data = bytearray(_signed('slow', io_us=3000))
    offset = _record(IO, 'buckets')
    for i in range(codec.NBUCKETS):
        struct.pack_into('<I', data, offset + 4 * i, codec.MAX_BUCKET_COUNT)
    struct.pack_into('<Q', data, _record(IO, 'count'),
                     codec.MAX_BUCKET_COUNT * codec.NBUCKETS)
    return _resign(bytes(data))


def _outlier(test):
    huge = histogram.LatencyHistogram(tuple([0] * 63 + [2 ** 40]))
    return _signed('slow', io=huge)


def _dup_names(test):
    data = bytearray(_signed('slow'))
    first = data[codec.HEADER_BYTES:codec.HEADER_BYTES + codec.NAME_BYTES]
    data[codec.HEADER_BYTES + codec.NAME_BYTES:
         codec.HEADER_BYTES + 2 * codec.NAME_BYTES] = first
    return _resign(bytes(data))


def _host_swapped(test):
    return _signed('fast').replace(b'\x04fast', b'\x04slow', 1)


# (name, key written, payload builder, rejections logged, target)
PAYLOAD_CASES = [
    ('pickle_p%d' % p, 'slow', _pickle(p), 1) for p in range(6)
] + [
    ('pickle_new_key', 'evil', _pickle(4), 1),
    ('v1_json_claiming_fast', 'slow', lambda t: json.dumps(
        samples.host_sample('slow', io_us=10).to_dict()).encode(), 1),
    ('json_nested_2000_deep', 'slow', _deep_json, 1),
    ('json_count_over_float64', 'slow',
     lambda t: b'{"version":1,"io":{"buckets":[1' + b'0' * 400 + b']}}', 1),
    ('json_nan', 'slow', lambda t: b'{"version":1,"timestamp":NaN}', 1),
    ('garbage_bytes', 'slow', lambda t: os.urandom(600), 1),
    ('oversized', 'slow', lambda t: b'MMVS' + b'\0' * 70000, 1),
    ('unsigned_claiming_fast', 'slow', lambda t: _signed(
        'slow', io_us=10, keyring=_keyring(unsigned=True)), 1),
    ('unsigned_new_host', 'evil', lambda t: _signed(
        'evil', io_us=1, keyring=_keyring(unsigned=True)), 1),
    ('unknown_key', 'slow', lambda t: _signed(
        'slow', io_us=10, keyring=_keyring(OTHER_KEY)), 1),
    ('known_key_id_wrong_mac', 'slow', lambda t: _signed(
        'slow', io_us=10)[:-codec.TAG_BYTES] + _signed(
        'slow', io_us=10, keyring=_keyring(OTHER_KEY))[-codec.TAG_BYTES:],
     1),
    ('zero_tag', 'slow', lambda t: _signed(
        'slow', io_us=10)[:-codec.TAG_BYTES] + b'\0' * codec.TAG_BYTES, 1),
    ('replay_of_own_older_sample', 'slow',
     lambda t: _signed('slow', io_us=10, age=30), 1),
    ('other_hosts_sample_copied', 'slow', lambda t: _signed('fast'), 1),
    ('other_hosts_sample_copied_to_new_key', 'evil',
     lambda t: _signed('fast'), 1),
    ('host_bytes_swapped', 'slow', _host_swapped, 1),
    ('node_sample_under_host_key', 'slow', lambda t: _signed(
        'slow', io_us=10, nodename='slow-node'), 1),
] + [
    ('truncated_%d' % size, 'slow', _truncated(size), 1)
    for size in (0, 1, 4, 35, 36, 37, 68, 300, 566)
] + [
    ('flip_%s' % name, 'slow', _flip(offset), 1)
    for name, offset in (
        ('magic', 0), ('version', 4), ('nmetrics', 5), ('nbuckets', 6),
        ('flags', 7), ('host_len', 8), ('node_len', 9), ('extras_len', 12),
        ('key_id', 16), ('timestamp', 27), ('window', 35),
        ('name', codec.HEADER_BYTES + 1), ('source', _record(IO, 'source')),
        ('count', _record(IO, 'count')),
        ('bucket', _record(IO, 'buckets') + 4 * 6),
        ('host', codec.core_bytes(NMETRICS) + 1), ('extras', -40),
        ('tag', -1))
] + [
    # A collector holding the key but sending nonsense (bug or theft):
    # bounds are checked after the MAC, in bulk.
    ('signed_%s' % name, 'slow', builder, 1)
    for name, builder in (
        ('count_mismatch', _patched(_record(IO, 'count'), '<Q', 1, True)),
        ('bad_source', _patched(_record(IO, 'source'), '<B', 9, True)),
        ('bad_observable', _patched(_record(IO, 'observable'), '<B', 7,
                                    True)),
        ('events_when_unobservable', _patched(_record(IO, 'observable'),
                                              '<B', 0, True)),
        ('nan_timestamp', _patched(_HDR['timestamp'], '<d', float('nan'),
                                   True)),
        ('inf_timestamp', _patched(_HDR['timestamp'], '<d', float('inf'),
                                   True)),
        ('negative_timestamp', _patched(_HDR['timestamp'], '<d', -5.0,
                                        True)),
        ('future_timestamp', _patched(_HDR['timestamp'], '<d',
                                      time.time() + 86400, True)),
        ('zero_window', _patched(_HDR['window'], '<d', 0.0, True)),
        ('nan_window', _patched(_HDR['window'], '<d', float('nan'), True)),
        ('huge_window', _patched(_HDR['window'], '<d', 1e300, True)),
        ('bucket_count_31', _patched(_HDR['nbuckets'], '<B', 31, True)),
        ('flags_set', _patched(_HDR['flags'], '<B', 1, True)),
        ('version_3', _patched(_HDR['version'], '<B', 3, True)),
        ('duplicate_metric_names', _dup_names),
    )
] + [
    # Schema-valid extremes a signed collector can send: accepted, bounded.
    ('signed_all_buckets_at_cap', 'slow', _all_max_buckets, 0),
    ('signed_outlier_2_pow_40_us', 'slow', _outlier, 0),
]


class HostileStoreBase(object):
    """Plants hostile entries; subclasses say how to write raw entries."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(30, gentle=True))
        self.marker = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                   'code-ran')
        self.store = self._make_store()
        for host, io_us in HONEST:
            self.store.put(samples.host_sample(host, io_us=io_us))
        objects.register_all()
        self.provider = self._provider()
        self.filter = latency_filter.LatencyFilter(self.conf, self.provider)
        self.weigher = latency_weigher.LatencyWeigher(self.conf,
                                                      self.provider)
        self.before = self._judge()
        self.before_snapshot = self.provider.snapshot()
        self.assertEqual(['fast', 'mid', 'mid2', 'evil'], self.before[0])
        self.logger = self.useFixture(fixtures.FakeLogger())

    def _provider(self):
        """The scheduler's provider over this store (refreshed here)."""
        return provider_mod.SnapshotProvider(self.conf, store=self.store)

    def _judge(self):
        """One refresh, then one scheduling request (its own snapshot)."""
        self.provider.refresh()
        spec = objects.RequestSpec(flavor=objects.Flavor(
            name='slo', flavorid='slo', extra_specs=dict(SLO)))
        states = [FakeHostState(h) for h in HOSTS]
        passing = [s.host for s in self.filter.filter_all(states, spec)]
        wrapped = [type('W', (), {'obj': s}) for s in states]
        weights = self.weigher.weigh_objects(wrapped, spec)
        return passing, dict(zip(HOSTS, weights))

    def assertNothingGained(self, rejections, marker):
        for _ in range(3):  # repeated refreshes: still one log line
            passing, weights = self._judge()
        before_passing, before_weights = self.before
        self.assertFalse(os.path.exists(self.marker), 'code ran')
        self.assertEqual(before_passing, passing)
        honest = [h for h, _ in HONEST if h != 'slow']
        for host in honest:
            self.assertAlmostEqual(before_weights[host], weights[host])
        self.assertEqual(sorted(honest, key=before_weights.get),
                         sorted(honest, key=weights.get))
        self.assertLessEqual(weights['slow'], before_weights['slow'] + 1e-9)
        self.assertLessEqual(weights['evil'], before_weights['evil'] + 1e-9)
        self.assertIsNone(self.provider.snapshot().row('evil'))
        lines = [line for line in self.logger.output.splitlines() if line]
        self.assertEqual(rejections, len(lines), lines)
        if rejections:
            self.assertIn(marker, lines[0])


#: What the hostile aggregates claim: ``slow`` (really 3,000 µs, over the
#: SLO) and ``evil`` (publishes nothing) as the fastest hosts.
FORGED_IO_US = {'fast': 100, 'mid': 400, 'mid2': 800, 'slow': 5, 'evil': 1}


def _aggregate(io_us=None, keyring=None, age=0.0):
    """A signed aggregate listing ``{host: io_us}``, ``age`` s old."""
    rows = {host: samples.host_sample(host, io_us=us, age=age)
            for host, us in (io_us or FORGED_IO_US).items()}
    return aggregate.encode(codec.SampleBatch.from_samples(rows),
                            keyring or _keyring(base.TEST_SIGNING_KEY),
                            time.time() - age)


#: A nova-scheduler refresh in a child process: argv is the signing key,
#: the file store's path, aggregate_max_age, then the hosts to score.
_REFRESH_SCRIPT = """
import json, logging, sys
from oslo_config import cfg
from multimodal_virt import conf
from multimodal_virt.scheduler import provider
logging.basicConfig(level=logging.WARNING, format='%(message)s')
c = cfg.ConfigOpts()
conf.register_opts(c)
c([], default_config_files=[])
c.set_override('signing_keys', [sys.argv[1]], 'multimodal_virt_store')
c.set_override('file_path', sys.argv[2], 'multimodal_virt_store')
c.set_override('aggregate_max_age', float(sys.argv[3]),
               'multimodal_virt_store')
c.set_override('refresh_worker', False, 'multimodal_virt_scheduler')
p = provider.SnapshotProvider(c)
for _ in range(3):
    snap = p.refresh()
print(json.dumps({'from_aggregate': p._reader.from_aggregate,
                  'scores': {h: snap.base_score(h) for h in sys.argv[4:]}}))
"""


#: An aggregator writing two aggregates alternately into a file store
#: until killed: argv is the signing key, the store's path, the two files.
_AGGREGATE_WRITER = """
import sys
from oslo_config import cfg
from multimodal_virt import conf
from multimodal_virt.stores import file
c = cfg.ConfigOpts()
conf.register_opts(c)
c([], default_config_files=[])
c.set_override('signing_keys', [sys.argv[1]], 'multimodal_virt_store')
c.set_override('file_path', sys.argv[2], 'multimodal_virt_store')
store = file.FileStore(c)
payloads = [open(path, 'rb').read() for path in sys.argv[3:5]]
written = 0
while True:
    store.write_aggregate(payloads[written % 2])
    written += 1
"""


class AggregateCases(object):
    """The aggregate of every store, planted by a hostile writer.

    Subclasses say how to write a raw aggregate
    (``raw_write_aggregate(payload)``).
    """

    SWITCHED = 'Latency refreshes now read the aggregate'

    def assertAggregateIgnored(self, rejections, marker):
        """Ranking exactly as from every sample; ``rejections`` lines."""
        self.assertNothingGained(rejections, marker)
        self.assertNotIn(self.SWITCHED, self.logger.output)
        self.assertIsNone(self.provider.snapshot().row('evil'))

    def test_aggregate_forged_with_another_key(self):
        self.raw_write_aggregate(_aggregate(keyring=_keyring(OTHER_KEY)))
        self.assertAggregateIgnored(1, 'signed with an unknown key')

    def test_aggregate_unsigned(self):
        self.raw_write_aggregate(_aggregate(keyring=_keyring(unsigned=True)))
        self.assertAggregateIgnored(1, 'unsigned sample')

    def test_aggregate_replayed_after_aggregate_max_age(self):
        # A genuine aggregate from a minute ago, when "slow" was fast.
        self.raw_write_aggregate(_aggregate(age=60.0))
        self.assertAggregateIgnored(1, 'more than aggregate_max_age')

    def test_aggregate_garbage(self):
        self.raw_write_aggregate(os.urandom(5000))
        self.assertAggregateIgnored(1, 'Ignoring the aggregate')

    def test_aggregate_truncated(self):
        self.raw_write_aggregate(_aggregate()[:-1])
        self.assertAggregateIgnored(1, 'does not match its header')

    def test_valid_aggregate_is_read_instead_of_the_samples(self):
        direct = self.provider.snapshot()
        aggregator.Aggregator(self.conf).run_once()
        # Every sample gone but "fast", now over the SLO: a read of every
        # sample would fail "fast"; the aggregate still says 100 us.
        for host, _ in HONEST:
            self.store.delete(host)
        self.store.put(samples.host_sample('fast', io_us=5000))
        self.assertNothingGained(1, self.SWITCHED)
        used = self.provider.snapshot()
        for host in HOSTS:
            self.assertEqual(direct.get(host), used.get(host), host)
        self.assertEqual({}, used.rejected)
        # The same store read sample by sample: "fast" fails now.
        self.flags('multimodal_virt_store', aggregate_max_age=0)
        self.assertNotIn('fast', self._judge()[0])

    def _aggregate_with_a_future_row(self):
        batch = codec.SampleBatch.from_samples(
            {host: samples.host_sample(host, io_us=us)
             for host, us in HONEST})
        batch.timestamps[batch.keys.index('slow')] = (
            time.time() + 2 * sample_mod.MAX_CLOCK_SKEW)
        return aggregate.encode(batch, _keyring(base.TEST_SIGNING_KEY),
                                time.time())

    def test_aggregate_with_a_row_refused_here_is_ignored(self):
        # Signed by a key holder (an aggregator whose clock runs ahead of
        # this scheduler's): the whole aggregate is ignored, so "slow"
        # keeps its last good sample instead of reading as a node without
        # one (which passes every SLO with the default missing policy).
        self.raw_write_aggregate(self._aggregate_with_a_future_row())
        self.assertAggregateIgnored(
            1, "1 of its rows are refused here, e.g. 'slow'")

    def test_sample_replayed_once_the_aggregate_is_spoiled(self):
        # Refreshes that read the aggregate tell the store's decoder which
        # samples they saw: when a store writer then spoils the aggregate,
        # the read of every sample refuses a replay of an older one.
        # "slow" really was fast for one window: its collector signed it.
        fast_window = _signed('slow', io_us=10)
        self.raw_write('slow', fast_window)
        publisher = aggregator.Aggregator(self.conf)
        publisher.run_once()
        self.assertIn('slow', self._judge()[0])  # genuine, from the aggregate
        time.sleep(0.01)
        self.store.put(samples.host_sample('slow', io_us=3000))
        publisher.run_once()
        self.assertNotIn('slow', self._judge()[0])
        # The attacker replays the fast window and spoils the aggregate.
        self.raw_write('slow', fast_window)
        self.raw_write_aggregate(os.urandom(5000))
        self.assertNotIn('slow', self._judge()[0],
                         'a replayed older sample was accepted')


def _payload_test(key, builder, rejections):
    def test(self):
        self.raw_write(key, builder(self))
        self.assertNothingGained(rejections, key)
    return test


def _add_payload_cases(cls):
    for name, key, builder, rejections in PAYLOAD_CASES:
        setattr(cls, 'test_' + name, _payload_test(key, builder, rejections))
    return cls


@_add_payload_cases
class FileStoreHostileTest(AggregateCases, HostileStoreBase, base.TestCase):

    def _make_store(self):
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'stats')
        self.flags('multimodal_virt_store', driver='file',
                   file_path=self.path)
        return loader.get_store(self.conf)

    def _entry(self, name):
        return os.path.join(self.path, name + file_store.SUFFIX)

    def raw_write(self, name, payload):
        with open(self._entry(name), 'wb') as handle:
            handle.write(payload)

    def _replace(self, name, make):
        entry = self._entry(name)
        if os.path.lexists(entry):
            os.unlink(entry)
        make(entry)

    def test_fifo_in_place_of_a_sample_never_hangs(self):
        self._replace('slow', os.mkfifo)
        self.assertNothingGained(1, 'slow.sample')

    def test_fifo_new_name(self):
        self._replace('evil', os.mkfifo)
        self.assertNothingGained(1, 'evil.sample')

    def test_symlink_to_a_good_sample(self):
        self._replace('slow', lambda e: os.symlink(self._entry('fast'), e))
        self.assertNothingGained(1, 'slow.sample')

    def test_symlink_loop(self):
        self._replace('evil', lambda e: os.symlink(e, e))
        self.assertNothingGained(1, 'evil.sample')

    def test_symlink_to_dev_zero(self):
        self._replace('evil', lambda e: os.symlink('/dev/zero', e))
        self.assertNothingGained(1, 'evil.sample')

    def test_dangling_symlink(self):
        self._replace('slow', lambda e: os.symlink('/nonexistent', e))
        self.assertNothingGained(1, 'slow.sample')

    def test_directory_named_like_a_sample(self):
        self._replace('slow', os.mkdir)
        self.assertNothingGained(1, 'slow.sample')

    def test_character_device(self):
        self._replace('evil', lambda e: os.mknod(
            e, stat.S_IFCHR | 0o644, os.makedev(1, 5)))  # /dev/zero
        self.assertNothingGained(1, 'evil.sample')

    def test_unix_socket(self):
        server = socket.socket(socket.AF_UNIX)
        self.addCleanup(server.close)
        self._replace('evil', server.bind)
        self.assertNothingGained(1, 'evil.sample')

    def test_sample_deleted_keeps_last_good(self):
        os.unlink(self._entry('slow'))
        self.assertNothingGained(0, '')

    def test_v1_file_beside_v2(self):
        with open(os.path.join(self.path, 'slow.json'), 'wb') as handle:
            handle.write(samples.host_sample('slow', io_us=10).to_json())
        self.assertNothingGained(1, 'v1 sample')

    def test_hidden_and_temporary_files_ignored(self):
        self.raw_write('.slow', _signed('slow', io_us=10))
        self.assertNothingGained(0, '')

    # The aggregate file: opened and checked with the same care.

    def _aggregate_file(self):
        return os.path.join(self.path, file_store.AGGREGATE_NAME)

    def raw_write_aggregate(self, payload):
        with open(self._aggregate_file(), 'wb') as handle:
            handle.write(payload)

    def test_aggregate_fifo_never_hangs(self):
        os.mkfifo(self._aggregate_file())
        self.assertAggregateIgnored(1, 'aggregate.mmva')
        self.assertIn('not a regular file', self.logger.output)

    def test_aggregate_symlink_to_a_valid_aggregate(self):
        elsewhere = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'genuine.mmva')
        with open(elsewhere, 'wb') as handle:
            handle.write(_aggregate())
        os.symlink(elsewhere, self._aggregate_file())
        self.assertAggregateIgnored(1, 'aggregate.mmva')

    def test_aggregate_symlink_to_dev_zero(self):
        os.symlink('/dev/zero', self._aggregate_file())
        self.assertAggregateIgnored(1, 'aggregate.mmva')

    def test_aggregate_directory(self):
        os.mkdir(self._aggregate_file())
        self.assertAggregateIgnored(1, 'aggregate.mmva')
        self.assertIn('not a regular file', self.logger.output)

    def test_aggregate_over_the_size_bound_is_not_read(self):
        # Sparse: the bound is checked on fstat, before reading a byte.
        with open(self._aggregate_file(), 'wb') as handle:
            handle.truncate(self.store.max_aggregate_bytes + 1)
        self.assertAggregateIgnored(1, 'aggregate.mmva')
        self.assertIn('over the %d byte limit'
                      % self.store.max_aggregate_bytes, self.logger.output)

    def test_aggregate_replaced_while_read_is_never_torn(self):
        # An aggregator process replaces the file (temporary file and
        # rename) again and again while a refresh reads it: every read is
        # one whole aggregate, A or B.
        keys = test_aggregate.hosts(3000)
        work = self.useFixture(fixtures.TempDir()).path
        payloads, files = [], []
        for seed in (1, 2):
            payloads.append(aggregate.encode(
                test_aggregate.valid_batch(keys, seed=seed),
                self.store.keyring, time.time()))
            files.append(os.path.join(work, '%d.mmva' % seed))
            with open(files[-1], 'wb') as handle:
                handle.write(payloads[-1])
        self.assertEqual(len(payloads[0]), len(payloads[1]))
        writer = subprocess.Popen(
            [sys.executable, '-c', _AGGREGATE_WRITER, base.TEST_SIGNING_KEY,
             self.path] + files)
        self.addCleanup(writer.wait)
        self.addCleanup(writer.kill)
        seen = [0, 0]
        torn = 0
        deadline = time.monotonic() + 10
        while min(seen) < 20 and time.monotonic() < deadline:
            payload = self.store.read_aggregate()
            if payload in payloads:
                seen[payloads.index(payload)] += 1
            elif payload is not None:  # None: not written yet
                torn += 1
        self.assertEqual(0, torn, 'reads torn (A, B: %s)' % seen)
        self.assertGreaterEqual(min(seen), 20, 'A and B both read')

    def test_world_writable_directory_refused_with_an_aggregate(self):
        # read_aggregate checks the directory as read_all does.
        aggregator.Aggregator(self.conf).run_once()
        os.chmod(self.path, 0o777)
        self.assertNothingGained(1, 'group- or world-writable')

    def _refresh_without_dac_override(self, max_age):
        """Three refreshes of a nova-scheduler process that, like one run
        as the nova user, cannot read a mode 000 file: this root test
        process without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.

        :returns: ``({'from_aggregate', 'scores'}, stderr lines)``.
        """
        requirements.require(self, shutil.which('setpriv'),
                             'setpriv (util-linux) not installed')
        drop = '-dac_override,-dac_read_search'
        child = subprocess.run(
            ['setpriv', '--bounding-set', drop, '--inh-caps', drop,
             sys.executable, '-c', _REFRESH_SCRIPT, base.TEST_SIGNING_KEY,
             self.path, str(max_age)] + list(HOSTS),
            capture_output=True, text=True, timeout=60)
        self.assertEqual(0, child.returncode, child.stderr[-2000:])
        return json.loads(child.stdout), child.stderr.splitlines()

    def test_aggregate_unreadable(self):
        self.raw_write_aggregate(_aggregate())  # genuine: would be used
        if os.geteuid() != 0:
            os.chmod(self._aggregate_file(), 0)
            self.assertAggregateIgnored(1, 'aggregate.mmva')
            return
        # Root reads a mode 000 file; a process without the two
        # capabilities gets EACCES as the nova user would.
        readable, _ = self._refresh_without_dac_override(15)
        self.assertTrue(readable['from_aggregate'])
        os.chmod(self._aggregate_file(), 0)
        unreadable, stderr = self._refresh_without_dac_override(15)
        direct, _ = self._refresh_without_dac_override(0)
        self.assertFalse(unreadable['from_aggregate'])
        self.assertFalse(direct['from_aggregate'])
        self.assertNotEqual(readable['scores']['slow'],
                            unreadable['scores']['slow'])
        before = self.provider.snapshot()
        for host in HOSTS:
            self.assertAlmostEqual(direct['scores'][host],
                                   unreadable['scores'][host])
            self.assertAlmostEqual(before.base_score(host),
                                   unreadable['scores'][host])
        lines = [line for line in stderr if 'aggregate.mmva' in line]
        self.assertEqual(1, len(lines), stderr)
        self.assertIn('Permission denied', lines[0])


class FileStoreHostileWorkerTest(FileStoreHostileTest):
    """Every file store case again, read by the refresh worker process.

    nova-scheduler's default (``refresh_worker``): the store is read and
    every entry judged in a child process; its warnings are logged by the
    scheduler process, once per rejection as in-process.
    """

    def _provider(self):
        self.flags('multimodal_virt_scheduler', refresh_worker=True)
        provider = provider_mod.SnapshotProvider(self.conf)
        self.addCleanup(provider.close)
        return provider

    def assertNothingGained(self, rejections, marker):
        super().assertNothingGained(rejections, marker)
        self.assertIsNotNone(self.provider._refresh_worker.pid)


def _file_name_trick(name):
    def test(self):
        self.raw_write(name, _signed('fast'))
        self.assertNothingGained(1, repr(name)[1:-1][:10])
    return test


def _memcached_name_trick(name):
    def test(self):
        self.raw_write(name, _signed('fast'))
        self.assertNothingGained(1, name[:20] if store_base.valid_key(name)
                                 else 'invalid names')
    return test


NAME_TRICKS = {
    'space': 'fast slow',
    'non_ascii': 'f\u0430st',  # Cyrillic a
    'two_separators': 'a+b+c',
    'leading_dash': '-fast',
    'empty_node': 'fast+',
    'longest_valid': 'x' * 240,
    'newline': 'fast\nslow',
    'control_char': 'fa\x01st',
}
for _name, _value in NAME_TRICKS.items():
    setattr(FileStoreHostileTest, 'test_name_trick_' + _name,
            _file_name_trick(_value))


@_add_payload_cases
class MemcachedHostileTest(AggregateCases, HostileStoreBase, base.TestCase):

    def _make_store(self):
        requirements.require(self, shutil.which('memcached'),
                             'memcached binary not installed')
        # Items up to 8 MiB, so an index of 200,000 names can be planted.
        self.memcached = self.useFixture(mmv_fixtures.MemcachedFixture(
            extra_args=['-m', '64', '-I', '8m']))
        self.flags('multimodal_virt_store', driver='memcached',
                   memcached_servers=[self.memcached.server],
                   key_prefix='hostile', max_hosts=640)
        return loader.get_store(self.conf)

    def _raw(self, command):
        with socket.create_connection(
                ('127.0.0.1', self.memcached.port)) as conn:
            conn.sendall(command)
            reply = conn.recv(4096)
        return reply

    def _set(self, key, value, flags=0):
        self.assertEqual(b'STORED\r\n', self._raw(
            b'set %s %d 0 %d\r\n%s\r\n' % (key.encode(), flags, len(value),
                                           value)))

    def raw_write(self, name, payload):
        """What an attacker on the memcached port can do, bypassing us."""
        client = self.store._client
        if store_base.valid_key(name):
            key = self.store.sample_key(name)
            shard = self.store.shard_key(name)
        else:
            key = 'hostile:junk'
            shard = self.store._shard_keys[0]
        self._set(key, payload, flags=1)  # pymemcache's pickle flag
        index = client.get(shard) or b''
        client.set(shard, index + b'\n' + name.encode('utf-8'))

    def test_huge_index_bounded(self):
        shard = self.store.shard_key('slow')
        names = b'\n'.join(b'bogus-%06d' % i for i in range(200000))
        self._set(shard, names + b'\nslow')
        started = time.monotonic()
        self.assertNothingGained(2, shard)
        self.assertLess(time.monotonic() - started, 10.0)

    def test_index_shard_garbage(self):
        self._set(self.store._shard_keys[0], os.urandom(5000))
        self.assertNothingGained(1, 'invalid names')

    def test_index_deleted_keeps_last_good(self):
        for shard in self.store._shard_keys:
            self._raw(b'delete %s\r\n' % shard.encode())
        self.assertNothingGained(0, '')

    def test_flush_all_keeps_last_good(self):
        self._raw(b'flush_all\r\n')
        self.assertNothingGained(0, '')

    # The aggregate: a head naming a generation, then its chunks.

    def _head(self, generation, chunks, size, flags=0):
        self._set(self.store._aggregate_key,
                  b'%s %d %d' % (generation.encode(), chunks, size), flags)

    def raw_write_aggregate(self, payload, flags=0, head=None):
        """Chunks then head, as the aggregator writes them, bypassing it."""
        generation = os.urandom(8).hex()
        step = memcached_store.AGGREGATE_CHUNK_BYTES
        parts = [payload[i:i + step] for i in range(0, len(payload), step)]
        for key, part in zip(self.store._chunk_keys(generation, len(parts)),
                             parts):
            self._set(key, part, flags)
        self._head(generation, len(parts), len(payload))
        return generation

    def test_aggregate_head_garbage(self):
        self._set(self.store._aggregate_key, os.urandom(100))
        self.assertAggregateIgnored(1, 'memcached aggregate head')

    def test_aggregate_head_naming_too_many_chunks(self):
        generation = self.raw_write_aggregate(
            _aggregate(keyring=_keyring(OTHER_KEY)))
        self._head(generation, 999999, 1000)
        self.assertAggregateIgnored(1, 'memcached aggregate head')

    def test_aggregate_head_naming_too_many_bytes(self):
        limit = self.store.max_aggregate_bytes
        step = memcached_store.AGGREGATE_CHUNK_BYTES
        for size in (limit + 1, 10 ** 12 - 1):
            self._head('0' * 16, -(-size // step), size)
            self.assertAggregateIgnored(1, 'memcached aggregate head')

    def test_aggregate_head_with_pickle_flag(self):
        self._set(self.store._aggregate_key,
                  pickle.dumps(_Evil(self.marker)), flags=1)
        self.assertAggregateIgnored(1, 'memcached aggregate head')

    def test_aggregate_chunk_with_pickle_flag(self):
        self.raw_write_aggregate(pickle.dumps(_Evil(self.marker)), flags=1)
        self.assertAggregateIgnored(1, 'has a bad magic')

    def test_aggregate_forged_over_several_chunks(self):
        # A forged aggregate of 1,200 long-named nodes, every bucket used
        # (two chunks, within the readers' bounds): every chunk read and
        # joined, then refused on its MAC.
        keys = ['slow', 'evil'] + [
            'ghost-%04d-%s+%s' % (i, 'h' * 200, 'n' * 250)
            for i in range(1198)]
        forged = aggregate.encode(
            test_aggregate.valid_batch(keys, first=0, end=codec.NBUCKETS),
            _keyring(OTHER_KEY), time.time())
        self.assertGreater(len(forged), memcached_store.AGGREGATE_CHUNK_BYTES)
        self.assertLess(len(forged), self.store.max_aggregate_bytes)
        self.raw_write_aggregate(forged)
        self.assertAggregateIgnored(1, 'signed with an unknown key')

    def _missing_chunk(self):
        payload = _aggregate()  # genuine, but one chunk of two is gone
        generation = self.raw_write_aggregate(payload + os.urandom(
            memcached_store.AGGREGATE_CHUNK_BYTES))
        self._raw(b'delete %s\r\n'
                  % self.store._chunk_keys(generation, 2)[1].encode())

    def _chunk_of_wrong_size(self):
        payload = _aggregate()  # genuine, but its chunk is 8 bytes longer
        generation = self.raw_write_aggregate(payload)
        self._set(self.store._chunk_keys(generation, 1)[0],
                  payload + b'\0' * 8)

    def test_aggregate_chunk_missing(self):
        self._missing_chunk()
        self.assertAggregateIgnored(1, '1 of its 2 chunks are missing')

    def test_aggregate_chunk_of_the_wrong_size(self):
        self._chunk_of_wrong_size()
        self.assertAggregateIgnored(1, 'Ignoring the memcached aggregate')


for _name, _value in NAME_TRICKS.items():
    if '\n' in _value:
        continue  # one index line per name: a newline makes two names
    setattr(MemcachedHostileTest, 'test_name_trick_' + _name,
            _memcached_name_trick(_value))
