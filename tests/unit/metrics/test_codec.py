"""Sample format v2: round trip, signing, bulk decode and its bounds."""

import dataclasses
import hmac
import struct
from unittest import mock

import numpy as np

from multimodal_virt import exception
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import histogram
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import signing
from multimodal_virt.metrics import vocabulary
from multimodal_virt.scheduler import slo
from multimodal_virt.scheduler import snapshot
from tests import base
from tests.functional import samples

NOW = 1.7e9
KEY = 'k' * 32


def _sample(host, io_us=100, age=0.0, **kwargs):
    s = samples.host_sample(host, io_us=io_us, gpu_us=None)
    return dataclasses.replace(s, timestamp=NOW - age, **kwargs)


def _field_offset(nmetrics, metric_index, field):
    base_ = codec.HEADER_BYTES + nmetrics * codec.NAME_BYTES
    return (base_ + metric_index * codec.RECORD_BYTES +
            codec.RECORD_DTYPE.fields[field][1])


def _resign(payload, keyring):
    body = payload[:-codec.TAG_BYTES]
    return body + keyring.tag(body)


class CodecRoundTripTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.keyring = signing.Keyring([KEY])

    def test_every_field_round_trips(self):
        io = histogram.LatencyHistogram.from_values([5, 90, 4000])
        full = _sample(
            'cmp-1', nodename='node-7', gpu_cmd=io,
            metric_sources={'gpu_cmd': 'procfs'},
            device_io={'vda': io, 'other': io}, dropped={'io_hist': 3},
            gpu_busy={'0000:03:00.1': 0.25}, vm_exits_by_instance={
                'f0e1': 12.5}, events=('block_rq_issue',))
        payload = codec.encode(full, self.keyring)
        self.assertEqual(full, codec.decode_one(payload, 'cmp-1+node-7',
                                                self.keyring, now=NOW))

    def test_unobservable_metric_carries_no_events(self):
        gpu = histogram.LatencyHistogram.from_values([5, 7])
        s = _sample('a', gpu_cmd=gpu, observable={'gpu_cmd': False})
        decoded = codec.decode_one(codec.encode(s, self.keyring), 'a',
                                   self.keyring, now=NOW)
        self.assertIsNone(decoded.gpu_cmd)
        self.assertEqual({'gpu_cmd': False}, decoded.observable)
        batch = codec.BatchDecoder(self.keyring).decode(
            {'a': codec.encode(s, self.keyring)}, NOW)
        self.assertFalse(batch.observable['gpu_cmd'][0])
        snap = snapshot.LatencySnapshot(batch, snapshot.ScoringPolicy(), NOW)
        self.assertIsNone(snap.value(0, 'gpu_cmd', 'p99'))

    def test_latency_ceiling_and_count_cap(self):
        huge = histogram.LatencyHistogram(tuple([0] * 63 + [2 ** 40]))
        s = _sample('a', io=huge)
        batch = codec.BatchDecoder(self.keyring).decode(
            {'a': codec.encode(s, self.keyring)}, NOW)
        self.assertEqual(codec.MAX_BUCKET_COUNT,
                         batch.buckets['io'][0, codec.NBUCKETS - 1])
        snap = snapshot.LatencySnapshot(batch, snapshot.ScoringPolicy(), NOW)
        self.assertLessEqual(snap.value(0, 'io', 'p99'), codec.CEILING_US)

    def test_size_is_compact(self):
        payload = codec.encode(_sample('a'), self.keyring)
        # Fixed part plus host name, extras and tag: a few hundred bytes.
        self.assertLess(len(payload), codec.core_bytes(
            len(vocabulary.LATENCY_METRICS)) + 400)

    def test_new_vocabulary_metric_flows_through_unchanged_code(self):
        @dataclasses.dataclass(frozen=True)
        class WithGpuNext(sample_mod.HostSample):
            gpu_next: histogram.LatencyHistogram = None

        metrics = vocabulary.LATENCY_METRICS + ('gpu_next',)
        exec_hist = histogram.LatencyHistogram.from_values([3000] * 50)
        base_ = _sample('a')
        s = WithGpuNext(**{f.name: getattr(base_, f.name)
                           for f in dataclasses.fields(base_)},
                        gpu_next=exec_hist)
        with mock.patch.object(vocabulary, 'LATENCY_METRICS', metrics):
            payload = codec.encode(s, self.keyring)
            old = codec.encode(_sample('b'), self.keyring,
                               metrics=metrics[:2])
            batch = codec.BatchDecoder(self.keyring).decode(
                {'a': payload, 'b': old}, NOW)
            snap = snapshot.LatencySnapshot(
                batch, snapshot.ScoringPolicy(
                    metric_weights={'gpu_next': 2.0}), NOW)
        self.assertEqual(['a', 'b'], batch.keys)
        self.assertAlmostEqual(exec_hist.percentile(0.99),
                               snap.value(0, 'gpu_next', 'p99'))
        self.assertIsNone(snap.value(1, 'gpu_next', 'p99'))
        self.assertAlmostEqual(
            snap.value(0, 'io', 'p99') + 2.0 * snap.value(0, 'gpu_next',
                                                          'p99'),
            snap.scores[0])


class InsufficientEventsTest(base.TestCase):
    """A percentile resting on fewer events than the collector's minimum."""

    def test_reads_as_not_measured_and_cannot_break_an_slo(self):
        keyring = signing.Keyring([KEY])
        minimums = {'p50': 20, 'p95': 100, 'p99': 300}
        quiet = dataclasses.replace(
            _sample('quiet', io=histogram.LatencyHistogram.from_values(
                [50] * 49 + [40000])), min_events=minimums)
        busy = dataclasses.replace(
            _sample('busy', io=histogram.LatencyHistogram.from_values(
                [900] * 500)), min_events=minimums)
        batch = codec.BatchDecoder(keyring).decode(
            {s.key: codec.encode(s, keyring) for s in (quiet, busy)}, NOW)
        self.assertEqual(list(minimums.values()),
                         batch.min_events['io'][0].tolist())
        snap = snapshot.LatencySnapshot(batch, snapshot.ScoringPolicy(), NOW)
        row = snap.row('quiet')
        # 50 events: p50 stands, p95 and p99 are insufficient.
        self.assertIsNotNone(snap.value(row, 'io', 'p50'))
        self.assertIsNone(snap.value(row, 'io', 'p95'))
        self.assertIsNone(snap.value(row, 'io', 'p99'))
        self.assertIsNotNone(snap.value(snap.row('busy'), 'io', 'p99'))
        # Neutral in the blend: the median of the measured hosts.
        self.assertEqual(snap.scores[snap.row('busy')], snap.scores[row])
        tight = slo.Slo('io', 'p99', 1)
        self.assertEqual([], slo.violations(snap, row, (tight,)))
        self.assertEqual(tight, slo.violations(
            snap, snap.row('busy'), (tight,))[0][0])

    def test_without_minimums_every_percentile_stands(self):
        keyring = signing.Keyring([KEY])
        few = _sample('few', io=histogram.LatencyHistogram.from_values([50]))
        batch = codec.BatchDecoder(keyring).decode(
            {'few': codec.encode(few, keyring)}, NOW)
        snap = snapshot.LatencySnapshot(batch, snapshot.ScoringPolicy(), NOW)
        self.assertIsNotNone(snap.value(0, 'io', 'p99'))


class SigningTest(base.TestCase):

    def test_pre_keyed_mac_is_rfc2104_hmac_sha256(self):
        for key in (b'k' * 16, b'x' * 64, b'long' * 40):
            mac = signing._Mac(key)
            for body in (b'', b'a', bytes(range(256)) * 3):
                self.assertEqual(hmac.digest(key, body, 'sha256'), mac(body))

    def test_no_key_refused_with_clear_message(self):
        err = self.assertRaises(exception.StoreError, signing.Keyring, [])
        self.assertIn('signing_keys', str(err))
        self.assertIn('allow_unsigned', str(err))

    def test_short_and_duplicate_keys_refused(self):
        self.assertRaises(exception.StoreError, signing.Keyring, ['short'])
        self.assertRaises(exception.StoreError, signing.Keyring, [KEY, KEY])

    def test_rotation_first_signs_all_verify(self):
        old, new = signing.Keyring([KEY]), signing.Keyring(['n' * 32, KEY])
        s = _sample('a')
        for writer in (old, new):
            payload = codec.encode(s, writer)
            self.assertEqual(s, codec.decode_one(payload, 'a', new, now=NOW))
        self.assertRaises(exception.InvalidSample, codec.decode_one,
                          codec.encode(s, new), 'a', old, now=NOW)

    def test_unsigned_only_when_allowed(self):
        unsigned = signing.Keyring([], allow_unsigned=True)
        self.assertFalse(unsigned.signs)
        payload = codec.encode(_sample('a'), unsigned)
        self.assertEqual('a', codec.decode_one(payload, 'a', unsigned,
                                               now=NOW).host)
        err = self.assertRaises(exception.InvalidSample, codec.decode_one,
                                payload, 'a', signing.Keyring([KEY]),
                                now=NOW)
        self.assertIn('unsigned', str(err))

    def test_host_name_is_bound_by_the_mac(self):
        keyring = signing.Keyring([KEY])
        payload = codec.encode(_sample('a'), keyring)
        err = self.assertRaises(exception.InvalidSample, codec.decode_one,
                                payload, 'b', keyring, now=NOW)
        self.assertIn('not the key', str(err))
        forged = payload.replace(b'\x01a', b'\x01b', 1)  # host_len, host
        self.assertRaises(exception.InvalidSample, codec.decode_one,
                          forged, 'b', keyring, now=NOW)


class BatchDecoderTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.keyring = signing.Keyring([KEY])
        self.decoder = codec.BatchDecoder(self.keyring)

    def _payloads(self, **latencies):
        return {h: codec.encode(_sample(h, io_us=v), self.keyring)
                for h, v in latencies.items()}

    def test_matches_per_sample_scoring(self):
        payloads = self._payloads(a=100, b=900, c=4000)
        batch = self.decoder.decode(payloads, NOW)
        samples_ = {k: codec.decode_one(p, k, self.keyring, now=NOW)
                    for k, p in payloads.items()}
        policy = snapshot.ScoringPolicy()
        fast = snapshot.LatencySnapshot(batch, policy, NOW)
        slow = snapshot.LatencySnapshot(samples_, policy, NOW)
        self.assertEqual(slow.index, fast.index)
        self.assertEqual(slow.scores, fast.scores)
        for metric in vocabulary.LATENCY_METRICS:
            for name in vocabulary.PERCENTILE_NAMES:
                self.assertEqual(
                    [slow.value(r, metric, name) for r in range(3)],
                    [fast.value(r, metric, name) for r in range(3)])

    def test_bad_rows_rejected_others_kept(self):
        payloads = self._payloads(a=100, b=900, c=4000)
        nmetrics = len(vocabulary.LATENCY_METRICS)
        bad = bytearray(payloads['b'])
        struct.pack_into('<Q', bad, _field_offset(nmetrics, 1, 'count'), 7)
        payloads['b'] = _resign(bytes(bad), self.keyring)
        batch = self.decoder.decode(payloads, NOW)
        self.assertEqual(['a', 'c'], batch.keys)
        self.assertIn('count', batch.rejected['b'])

    def test_refused_update_keeps_last_good_sample(self):
        first = self._payloads(a=100, b=5000)
        self.decoder.decode(first, NOW)
        tampered = dict(first, b=first['b'][:-1] + b'\0')
        batch = self.decoder.decode(tampered, NOW + 10)
        self.assertEqual(['a', 'b'], batch.keys)
        self.assertEqual('bad signature', batch.rejected['b'])
        self.assertEqual(NOW, batch.timestamps[1])

    def test_replay_of_older_sample_refused(self):
        old = codec.encode(_sample('a', io_us=50, age=100), self.keyring)
        new = codec.encode(_sample('a', io_us=5000), self.keyring)
        self.decoder.decode({'a': new}, NOW)
        batch = self.decoder.decode({'a': old}, NOW + 1)
        self.assertIn('replay', batch.rejected['a'])
        self.assertEqual([NOW], batch.timestamps.tolist())

    def test_vanished_key_kept_until_retention(self):
        self.decoder.retain_s = 100.0
        self.decoder.decode(self._payloads(a=100, b=200), NOW)
        self.assertEqual(['a', 'b'],
                         self.decoder.decode(self._payloads(a=100),
                                             NOW + 50).keys)
        self.assertEqual(['a'], self.decoder.decode(self._payloads(a=100),
                                                    NOW + 150).keys)

    def test_key_vanishing_while_another_appears_is_kept(self):
        self.decoder.decode(self._payloads(a=100, b=200), NOW)
        batch = self.decoder.decode(self._payloads(a=100, c=300), NOW + 5)
        self.assertEqual({'a', 'b', 'c'}, set(batch.keys))
        self.assertEqual({}, batch.rejected)

    def test_unchanged_payload_not_verified_again(self):
        payloads = self._payloads(a=100)
        self.decoder.decode(payloads, NOW)
        with mock.patch.object(codec, 'check_frame') as check:
            batch = self.decoder.decode(payloads, NOW + 1)
        check.assert_not_called()
        self.assertEqual(['a'], batch.keys)

    def test_empty(self):
        batch = self.decoder.decode({}, NOW)
        self.assertEqual(0, len(batch))
        snap = snapshot.LatencySnapshot(batch, snapshot.ScoringPolicy(), NOW)
        self.assertEqual(0, len(snap))

    def test_outlier_cannot_squeeze_the_others(self):
        payloads = self._payloads(a=100, b=200, c=400, d=800)
        payloads['evil'] = codec.encode(
            _sample('evil', io=histogram.LatencyHistogram(
                tuple([0] * 40 + [10 ** 6]))), self.keyring)
        snap = snapshot.LatencySnapshot(self.decoder.decode(payloads, NOW),
                                        snapshot.ScoringPolicy(), NOW)
        scores = dict(zip(snap.index, snap.scores))
        self.assertEqual(max(scores.values()), scores['evil'])
        spread = scores['d'] - scores['a']
        # Nova normalises between min and max: the honest spread keeps a
        # sizeable share of the range.
        self.assertGreater(spread / (scores['evil'] - scores['a']), 0.2)
        self.assertTrue(np.isfinite(snap.scores).all())


class MetricWeightsTest(base.TestCase):

    def test_defaults_equal_today(self):
        policy = snapshot.ScoringPolicy.from_conf(
            self.conf.multimodal_virt_scheduler)
        self.assertEqual(vocabulary.DEFAULT_WEIGHTS, policy.weights())
        # gpu_cmd carries gpu_submit's histogram: counted once.
        self.assertEqual(0.0, policy.weights()['gpu_cmd'])

    def test_deprecated_aliases_feed_metric_weights(self):
        self.flags('multimodal_virt_scheduler', gpu_cmd_weight=0.0,
                   io_weight=3.0, metric_weights={'io': 2.0})
        policy = snapshot.ScoringPolicy.from_conf(
            self.conf.multimodal_virt_scheduler)
        # The deprecated gpu_cmd weight sets the metric it stands for.
        self.assertEqual(dict(vocabulary.DEFAULT_WEIGHTS, gpu_submit=0.0,
                              io=2.0), policy.weights())

    def test_unknown_metric_refused(self):
        self.assertRaises(ValueError, self.flags, 'multimodal_virt_scheduler',
                          metric_weights={'cpu': 1.0})
        self.assertRaises(ValueError, snapshot.ScoringPolicy(
            metric_weights={'cpu': 1.0}).weights)
