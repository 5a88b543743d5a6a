"""Aggregate format: exact round trip, every refusal, rows dropped alone."""

import dataclasses
import struct

import numpy as np

from multimodal_virt import exception
from multimodal_virt.metrics import aggregate
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import signing
from multimodal_virt.metrics import vocabulary
from tests import base
from tests.functional import samples

NOW = 1.7e9
KEY = 'k' * 32
OLD_KEY = 'o' * 32
OTHER_KEY = 'x' * 32
METRICS = vocabulary.LATENCY_METRICS
NPCT = len(vocabulary.PERCENTILE_NAMES)
# Header fields (see aggregate._HEADER: '<4sBBBB4sdII4x').
VERSION_AT, NBUCKETS_AT, NMETRICS_AT, FLAGS_AT = 4, 5, 6, 7
KEY_ID_AT, CREATED_AT, ROWS_AT, KEYS_LEN_AT = 8, 12, 20, 24
SPANS_AT = aggregate.HEADER_BYTES + len(METRICS) * aggregate.NAME_BYTES
SPANS_AT += -SPANS_AT % 8


def _keyring(*keys, unsigned=False):
    return signing.Keyring(list(keys) or [KEY], allow_unsigned=unsigned)


def valid_batch(keys, seed=0, first=2, end=20, extra_metrics=()):
    """A valid batch with distinct values in every field of every row.

    Buckets of each metric fill columns ``first`` to ``end`` (exclusive);
    a row whose metric is not measured carries no events there.
    """
    rng = np.random.default_rng(seed)
    rows = len(keys)
    buckets, sources, observable, minimums = {}, {}, {}, {}
    for metric in METRICS + tuple(extra_metrics):
        counts = np.zeros((rows, codec.NBUCKETS), np.uint32)
        counts[:, first:end] = rng.integers(0, 2 ** 32, (rows, end - first),
                                            dtype=np.uint32)
        source = rng.integers(0, 3, rows).astype(np.uint8)
        seen = rng.integers(0, 2, rows).astype(bool)
        if rows:  # the first row measures every metric: spans are known
            source[0], seen[0] = 1, True
        counts[(source == 0) | ~seen] = 0
        buckets[metric] = counts
        sources[metric] = source
        observable[metric] = seen
        minimums[metric] = rng.integers(0, 2 ** 16, (rows, NPCT),
                                        dtype=np.uint16)
    return codec.SampleBatch(
        list(keys), NOW - rng.uniform(0, 100, rows),
        rng.uniform(0.5, 60, rows), buckets, sources, observable,
        min_events=minimums)


def hosts(count, prefix='compute'):
    return ['%s-%04d' % (prefix, i) for i in range(count)]


def _resign(payload, keyring=None):
    body = payload[:-aggregate.TAG_BYTES]
    return body + (keyring or _keyring()).tag(body)


def _patched(payload, offset, fmt, *values):
    """``payload`` with fields packed at ``offset``, signed again (the
    checks after the MAC see it; those before it do anyway)."""
    data = bytearray(payload)
    struct.pack_into(fmt, data, offset, *values)
    return _resign(bytes(data))


def _decode(payload, keyring=None, now=NOW, max_size=None, max_rows=1000):
    return aggregate.decode(
        payload, keyring or _keyring(), now,
        aggregate.max_bytes(max_rows) if max_size is None else max_size,
        max_rows)


class BatchAssertions(object):

    def assertBatchEqual(self, expected, actual, metrics=METRICS):
        self.assertEqual(list(expected.keys), list(actual.keys))
        np.testing.assert_array_equal(expected.timestamps, actual.timestamps)
        np.testing.assert_array_equal(expected.windows, actual.windows)
        self.assertEqual(set(METRICS), set(actual.buckets))
        for metric in metrics:
            for field, dtype in (('buckets', np.uint32),
                                 ('sources', np.uint8),
                                 ('observable', bool),
                                 ('min_events', np.uint16)):
                want = getattr(expected, field)[metric]
                got = getattr(actual, field)[metric]
                self.assertEqual(np.dtype(dtype), got.dtype, field)
                np.testing.assert_array_equal(
                    want, got, err_msg='%s of %s' % (field, metric))

    def assertRefused(self, reason, payload, **kwargs):
        err = self.assertRaises(exception.InvalidSample, _decode, payload,
                                **kwargs)
        self.assertIn(reason, str(err))
        return err


class RoundTripTest(BatchAssertions, base.TestCase):

    def test_round_trip_equals_the_batch(self):
        batch = valid_batch(hosts(50) + ['host-a+node-1', 'h:1.example_org'])
        created, decoded = _decode(aggregate.encode(batch, _keyring(), NOW))
        self.assertEqual(NOW, created)
        self.assertBatchEqual(batch, decoded)
        self.assertEqual({}, decoded.rejected)

    def test_round_trip_of_a_decoded_refresh(self):
        # What the aggregator really publishes: a BatchDecoder's batch.
        keyring = _keyring()
        payloads = {}
        for i, host in enumerate(hosts(20)):
            s = dataclasses.replace(
                samples.host_sample(host, io_us=10 * (i + 1), gpu_us=i * 30,
                                    gpu_exec_us=5 + i),
                timestamp=NOW - i, min_events={'p99': 5 + i})
            payloads[host] = codec.encode(s, keyring)
        batch = codec.BatchDecoder(keyring).decode(payloads, NOW)
        self.assertEqual(20, len(batch))
        _, decoded = _decode(aggregate.encode(batch, keyring, NOW))
        self.assertBatchEqual(batch, decoded)

    def test_empty_batch(self):
        created, decoded = _decode(aggregate.encode(
            codec.SampleBatch.empty(), _keyring(), NOW - 1))
        self.assertEqual(NOW - 1, created)
        self.assertEqual([], decoded.keys)
        self.assertEqual((0, codec.NBUCKETS), decoded.buckets['io'].shape)
        self.assertEqual({}, decoded.rejected)

    def test_spans_trimmed_to_the_buckets_used(self):
        keys = hosts(10)
        narrow = aggregate.encode(valid_batch(keys, first=4, end=6), _keyring(),
                                  NOW)
        wide = aggregate.encode(valid_batch(keys, first=4, end=32), _keyring(),
                                NOW)
        # 26 more u32 columns per row and metric, each section 8-aligned.
        self.assertEqual(len(METRICS) * 26 * 4 * len(keys),
                         len(wide) - len(narrow))
        spans = list(narrow[SPANS_AT:SPANS_AT + 2 * len(METRICS)])
        self.assertEqual([4, 6] * len(METRICS), spans)
        self.assertBatchEqual(valid_batch(keys, first=4, end=6),
                              _decode(narrow)[1])
        self.assertBatchEqual(valid_batch(keys, first=4, end=32),
                              _decode(wide)[1])

    def test_metric_without_events_carries_no_column(self):
        batch = valid_batch(hosts(5))
        for metric in METRICS:
            batch.buckets[metric][:] = 0
        payload = aggregate.encode(batch, _keyring(), NOW)
        self.assertEqual([0, 0] * len(METRICS),
                         list(payload[SPANS_AT:SPANS_AT + 2 * len(METRICS)]))
        self.assertBatchEqual(batch, _decode(payload)[1])

    def test_metric_missing_reads_as_zeros_and_observable(self):
        # An older aggregator that only knew "io".
        batch = valid_batch(hosts(8))
        _, decoded = _decode(aggregate.encode(batch, _keyring(), NOW,
                                              metrics=('io',)))
        self.assertBatchEqual(batch, decoded, metrics=('io',))
        for metric in set(METRICS) - {'io'}:
            self.assertFalse(decoded.buckets[metric].any(), metric)
            self.assertFalse(decoded.sources[metric].any(), metric)
            self.assertTrue(decoded.observable[metric].all(), metric)
            self.assertFalse(decoded.min_events[metric].any(), metric)

    def test_unknown_metric_names_ignored(self):
        # A newer aggregator with a metric this reader does not know.
        batch = valid_batch(hosts(8), extra_metrics=('gpu_future',))
        payload = aggregate.encode(batch, _keyring(), NOW,
                                   metrics=METRICS + ('gpu_future',))
        _, decoded = _decode(payload)
        self.assertBatchEqual(batch, decoded)
        self.assertNotIn('gpu_future', decoded.buckets)
        self.assertEqual({}, decoded.rejected)

    def test_largest_batch_within_max_bytes(self):
        # Longest keys, every bucket of every metric used: the bound holds.
        rows = 40
        longest = ['%03d' % i + 'h' * (sample_mod.MAX_HOST_LENGTH - 3) +
                   '+' + 'n' * sample_mod.MAX_HOST_LENGTH
                   for i in range(rows)]
        batch = valid_batch(longest, first=0, end=codec.NBUCKETS)
        payload = aggregate.encode(batch, _keyring(), NOW)
        self.assertLessEqual(len(payload), aggregate.max_bytes(rows))
        self.assertBatchEqual(batch, _decode(payload, max_rows=rows)[1])

    def test_key_rotation(self):
        batch = valid_batch(hosts(3))
        old = aggregate.encode(batch, _keyring(OLD_KEY), NOW)
        # The old key is still listed after the new one: verifies.
        self.assertBatchEqual(batch,
                              _decode(old, _keyring(KEY, OLD_KEY))[1])
        # Removed: refused, naming the key id.
        err = self.assertRefused('signed with an unknown key', old,
                                 keyring=_keyring(KEY))
        self.assertIn(signing.key_id(OLD_KEY.encode()).hex(), str(err))
        new = aggregate.encode(batch, _keyring(KEY, OLD_KEY), NOW)
        self.assertBatchEqual(batch, _decode(new, _keyring(KEY))[1])

    def test_unsigned_accepted_only_when_allowed(self):
        batch = valid_batch(hosts(3))
        unsigned = aggregate.encode(batch, signing.Keyring(
            [], allow_unsigned=True), NOW)
        self.assertEqual(b'\0' * aggregate.TAG_BYTES,
                         unsigned[-aggregate.TAG_BYTES:])
        self.assertRefused('unsigned sample (allow_unsigned is false)',
                           unsigned)
        self.assertBatchEqual(batch, _decode(
            unsigned, _keyring(KEY, unsigned=True))[1])


class RefusalTest(BatchAssertions, base.TestCase):
    """Whole-aggregate refusals, each with its reason."""

    def setUp(self):
        super().setUp()
        self.batch = valid_batch(hosts(6))
        self.payload = aggregate.encode(self.batch, _keyring(), NOW)

    def _with_keys(self, keys):
        return aggregate.encode(valid_batch(keys), _keyring(), NOW)

    def test_the_reference_payload_is_accepted(self):
        self.assertBatchEqual(self.batch, _decode(self.payload)[1])

    def test_not_bytes(self):
        self.assertRefused('is bytearray, not bytes',
                           bytearray(self.payload))

    def test_truncated(self):
        for size in (0, 1, 4, aggregate.HEADER_BYTES,
                     aggregate.HEADER_BYTES + aggregate.TAG_BYTES - 1):
            self.assertRefused('is truncated (%d bytes)' % size,
                               self.payload[:size])

    def test_cut_anywhere_after_the_header(self):
        for size in range(SPANS_AT + 16, len(self.payload), 97):
            self.assertRefused('does not match its header',
                               self.payload[:size])

    def test_bytes_appended(self):
        self.assertRefused('does not match its header',
                           self.payload + b'\0' * 8)

    def test_bad_magic(self):
        self.assertRefused('has a bad magic',
                           b'MMVS' + self.payload[4:])

    def test_version(self):
        self.assertRefused('unsupported version 2', _patched(
            self.payload, VERSION_AT, '<B', 2))

    def test_bucket_count(self):
        self.assertRefused('has 31 buckets', _patched(
            self.payload, NBUCKETS_AT, '<B', 31))

    def test_flags(self):
        self.assertRefused('flags 1', _patched(self.payload, FLAGS_AT,
                                               '<B', 1))

    def test_too_many_metrics(self):
        self.assertRefused('has 33 metrics, at most 32', _patched(
            self.payload, NMETRICS_AT, '<B', codec.MAX_METRICS + 1))

    def test_rows_over_max_rows(self):
        self.assertRefused('has 6 nodes, over the 5', self.payload,
                           max_rows=5)
        self.assertBatchEqual(self.batch,
                              _decode(self.payload, max_rows=6)[1])

    def test_rows_in_the_header_over_max_rows(self):
        self.assertRefused('has 4294967295 nodes, over the 1000', _patched(
            self.payload, ROWS_AT, '<I', 2 ** 32 - 1))

    def test_size_over_max_size(self):
        size = len(self.payload)
        self.assertRefused('is %d bytes, over the %d byte limit'
                           % (size, size - 1), self.payload,
                           max_size=size - 1)
        self.assertBatchEqual(self.batch,
                              _decode(self.payload, max_size=size)[1])

    def test_bad_spans(self):
        for first, end in ((10, 5), (0, codec.NBUCKETS + 1), (0, 255),
                           (40, 40)):
            self.assertRefused('has bad bucket spans', _patched(
                self.payload, SPANS_AT, '<BB', first, end))

    def test_rows_or_keys_length_mismatch(self):
        self.assertRefused('does not match its header', _patched(
            self.payload, ROWS_AT, '<I', 7))
        self.assertRefused('does not match its header', _patched(
            self.payload, KEYS_LEN_AT, '<I', 200))

    def test_unknown_key_id(self):
        self.assertRefused('signed with an unknown key', aggregate.encode(
            self.batch, _keyring(OTHER_KEY), NOW))
        self.assertRefused('signed with an unknown key 01020304', _patched(
            self.payload, KEY_ID_AT, '4s', b'\1\2\3\4'))

    def test_known_key_id_wrong_key(self):
        forged = aggregate.encode(self.batch, _keyring(OTHER_KEY), NOW)
        forged = (forged[:KEY_ID_AT] + signing.key_id(KEY.encode()) +
                  forged[KEY_ID_AT + 4:])
        self.assertRefused('bad signature', forged)

    def test_zero_tag(self):
        self.assertRefused('bad signature', self.payload[
            :-aggregate.TAG_BYTES] + b'\0' * aggregate.TAG_BYTES)

    def test_one_flipped_bit_anywhere_is_refused(self):
        refused_by_mac = 0
        for offset in range(len(self.payload)):
            data = bytearray(self.payload)
            data[offset] ^= 1 << (offset % 8)
            err = self.assertRaises(exception.InvalidSample, _decode,
                                    bytes(data))
            refused_by_mac += 'bad signature' in str(err)
        # Past the header and spans, only the MAC can see a flip.
        self.assertGreater(refused_by_mac,
                           len(self.payload) - SPANS_AT - 2 * len(METRICS))

    def test_creation_time_in_the_future(self):
        later = NOW + sample_mod.MAX_CLOCK_SKEW + 1
        self.assertRefused('creation time', _patched(
            self.payload, CREATED_AT, '<d', later))
        within = NOW + sample_mod.MAX_CLOCK_SKEW - 1
        created, _ = _decode(_patched(self.payload, CREATED_AT, '<d',
                                      within))
        self.assertEqual(within, created)

    def test_creation_time_not_finite(self):
        for value in (float('nan'), float('inf'), float('-inf')):
            self.assertRefused('creation time', _patched(
                self.payload, CREATED_AT, '<d', value))

    def test_duplicate_metric_names(self):
        data = bytearray(self.payload)
        start = aggregate.HEADER_BYTES
        data[start + aggregate.NAME_BYTES:start + 2 * aggregate.NAME_BYTES] = (
            data[start:start + aggregate.NAME_BYTES])
        self.assertRefused('has duplicate metric names', _resign(bytes(data)))

    def test_non_ascii_keys(self):
        payload = self._with_keys(['fast', 'slow'])
        at = payload.index(b'fast\nslow')
        self.assertRefused('has non-ASCII keys', _resign(
            payload[:at + 1] + b'\xd0' + payload[at + 2:]))

    def test_invalid_keys(self):
        for bad in ('../x', '.hidden', 'a/b', 'fast slow', 'tab\tx',
                    'a+b+c', 'empty+', '+node', '-dash', 'ctl\x01',
                    'x' * (sample_mod.MAX_HOST_LENGTH + 1)):
            self.assertRefused('has an invalid store key',
                               self._with_keys(['good', bad]))

    def test_empty_key(self):
        self.assertRefused('has an invalid store key',
                           self._with_keys(['good', '']))

    def test_duplicate_keys(self):
        self.assertRefused('has 2 keys (1 unique) for 2 nodes',
                           self._with_keys(['same', 'same']))

    def test_keys_count_mismatch(self):
        # Three names for two rows: a key hiding a newline.
        self.assertRefused('has 3 keys (3 unique) for 2 nodes',
                           self._with_keys(['a\nb', 'c']))


class RowRejectionTest(BatchAssertions, base.TestCase):
    """A bad row is dropped into ``rejected``; every other row stays."""

    KEYS = hosts(5)
    BAD = 2

    def _check(self, reason, spoil):
        batch = valid_batch(self.KEYS, seed=7)
        bad_key = self.KEYS[self.BAD]
        spoil(batch, self.BAD)
        _, decoded = _decode(aggregate.encode(batch, _keyring(), NOW))
        self.assertEqual([bad_key], list(decoded.rejected))
        self.assertIn(reason, decoded.rejected[bad_key])
        keep = [row for row in range(len(self.KEYS)) if row != self.BAD]
        expected = valid_batch(self.KEYS, seed=7)
        expected = codec.SampleBatch(
            [self.KEYS[row] for row in keep], expected.timestamps[keep],
            expected.windows[keep],
            {m: a[keep] for m, a in expected.buckets.items()},
            {m: a[keep] for m, a in expected.sources.items()},
            {m: a[keep] for m, a in expected.observable.items()},
            min_events={m: a[keep] for m, a in expected.min_events.items()})
        self.assertBatchEqual(expected, decoded)

    def _set(self, field, value, metric=None):
        def spoil(batch, row):
            array = getattr(batch, field)
            (array[metric] if metric else array)[row] = value
        return spoil

    def test_nan_timestamp(self):
        self._check('timestamp is not a finite time',
                    self._set('timestamps', float('nan')))

    def test_negative_timestamp(self):
        self._check('timestamp is not a finite time',
                    self._set('timestamps', -1.0))

    def test_future_timestamp(self):
        self._check('in the future', self._set(
            'timestamps', NOW + sample_mod.MAX_CLOCK_SKEW + 10))

    def test_bad_windows(self):
        for window in (0.0, -3.0, float('nan'), float('inf'),
                       codec.MAX_WINDOW_S * 2):
            self._check('window is not in', self._set('windows', window))

    def test_unknown_source(self):
        self._check('unknown metric source',
                    self._set('sources', 7, metric='gpu_exec'))

    def test_events_on_an_unmeasured_metric(self):
        def spoil(batch, row):
            batch.sources['io'][row] = 0
            batch.buckets['io'][row, 5] = 9
        self._check('events reported for a metric that is not measured',
                    spoil)

    def test_events_on_an_unobservable_metric(self):
        def spoil(batch, row):
            batch.sources['io'][row] = 1
            batch.observable['io'][row] = False
            batch.buckets['io'][row, 5] = 9
        self._check('events reported for a metric that is not measured',
                    spoil)

    def test_observable_flag_not_boolean(self):
        payload = aggregate.encode(valid_batch(self.KEYS, seed=7), _keyring(), NOW)
        keys_len = struct.unpack_from('<I', payload, KEYS_LEN_AT)[0]
        rows = len(self.KEYS)
        observable_at = (SPANS_AT + 16 + keys_len + (-keys_len % 8) +
                         16 * rows + rows + (-rows % 8))
        spoiled = _patched(payload, observable_at + self.BAD, '<B', 2)
        _, decoded = _decode(spoiled)
        self.assertIn('observable flag is not 0 or 1',
                      decoded.rejected[self.KEYS[self.BAD]])
        self.assertEqual(len(self.KEYS) - 1, len(decoded))

    def test_every_row_bad(self):
        batch = valid_batch(self.KEYS)
        batch.timestamps[:] = float('nan')
        _, decoded = _decode(aggregate.encode(batch, _keyring(), NOW))
        self.assertEqual([], decoded.keys)
        self.assertEqual(set(self.KEYS), set(decoded.rejected))
        self.assertEqual((0, codec.NBUCKETS), decoded.buckets['io'].shape)
