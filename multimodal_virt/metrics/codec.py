"""Sample format v2: compact, bounded, signed bytes, decoded in bulk.

Layout (little endian, no padding)::

    header   36 bytes  magic "MMVS", version 2, metric count n, bucket count
                       (always NBUCKETS), flags (0), host length, node length
                       (0: same as host), 2 reserved, extras length (u32),
                       key id (4 bytes), timestamp (f64, end of the window,
                       epoch seconds), window (f64 seconds)
    names    n x 16    metric names (ASCII, NUL padded)
    records  n x 144   source (u8: 0 none, 1 ebpf, 2 procfs), observable (u8),
                       minimum events for p50/p95/p99 (3 x u16: a
                       percentile of fewer events is insufficient, read as
                       not measured), event count (u64), NBUCKETS x u32
    host, node         ASCII names
    extras             JSON object: rates, per-device I/O, drop counters,
                       GPU busy per VF (read by humans and the compute hook;
                       the scheduler never parses it)
    tag      32 bytes  HMAC-SHA256 over everything before it

Bounded by construction: a fixed number of log2 buckets (the last one holds
every latency at or above its low edge, so percentiles never exceed
:data:`CEILING_US`), unsigned 32-bit counts (no overflow, no NaN, no
negative), and an event count that must equal the bucket sum.

The scheduler decodes a whole refresh with :class:`BatchDecoder`: one HMAC
and a few slices per payload in Python, then every header and histogram of
the refresh validated at once with numpy over the joined bytes.
"""

import functools
import hmac
import json
import struct
import time

import numpy as np

from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import signing
from multimodal_virt.metrics import vocabulary

MAGIC = b'MMVS'
VERSION = 2
NBUCKETS = 32
#: Largest latency a percentile can report: the top of the last bucket.
CEILING_US = float(2 ** NBUCKETS)
MAX_BUCKET_COUNT = 2 ** 32 - 1
MAX_MIN_EVENTS = 2 ** 16 - 1
NAME_BYTES = 16
MAX_METRICS = 32
#: Longest window a sample may cover (seconds).
MAX_WINDOW_S = 86400.0
SOURCE_CODES = {'none': 0, 'ebpf': 1, 'procfs': 2}
SOURCE_NAMES = {code: name for name, code in SOURCE_CODES.items()}
#: Entries a bulk read or verification handles between two calls of its
#: ``pace`` callback (a background refresher lets request threads run).
PACE_EVERY = 256

_HEADER = struct.Struct('<4sBBBBBBHI4sdd')
HEADER_BYTES = _HEADER.size
HEADER_DTYPE = np.dtype([
    ('magic', 'S4'), ('version', 'u1'), ('nmetrics', 'u1'),
    ('nbuckets', 'u1'), ('flags', 'u1'), ('host_len', 'u1'),
    ('node_len', 'u1'), ('reserved', 'u2'), ('extras_len', '<u4'),
    ('key_id', 'V4'), ('timestamp', '<f8'), ('window', '<f8')])
RECORD_DTYPE = np.dtype([
    ('source', 'u1'), ('observable', 'u1'),
    ('min_events', '<u2', (len(vocabulary.PERCENTILE_NAMES),)),
    ('count', '<u8'), ('buckets', '<u4', (NBUCKETS,))])
RECORD_BYTES = RECORD_DTYPE.itemsize
TAG_BYTES = signing.TAG_BYTES
_EXTRA_FIELDS = ('source', 'collector_version', 'vm_exit_rate', 'irq_rate',
                 'gpu_util', 'vm_exits_by_instance', 'events', 'device_io',
                 'dropped', 'gpu_busy', 'gpu_nvidia_rm',
                 'gpu_exec_by_device', 'gpu_exec_by_instance', 'min_events',
                 'effective_window_s', 'metric_sources')
assert HEADER_DTYPE.itemsize == HEADER_BYTES


def core_bytes(nmetrics):
    """Bytes of the fixed part (header, names, records) for n metrics."""
    return HEADER_BYTES + nmetrics * (NAME_BYTES + RECORD_BYTES)


def fold_buckets(buckets):
    """Fit log2 bucket counts into NBUCKETS capped u32 counts."""
    counts = [0] * NBUCKETS
    for index, count in enumerate(buckets):
        slot = min(index, NBUCKETS - 1)
        counts[slot] = min(counts[slot] + count, MAX_BUCKET_COUNT)
    return counts


def _json_default(value):
    if isinstance(value, hist.LatencyHistogram):
        return value.to_dict()
    raise TypeError('cannot serialise %s' % type(value).__name__)


def encode(sample, keyring, metrics=None):
    """Serialise and sign a :class:`~.sample.HostSample` as v2 bytes.

    :param keyring: a :class:`~.signing.Keyring`.
    :param metrics: metric names to carry (default: the vocabulary's).
    """
    metrics = tuple(metrics or vocabulary.LATENCY_METRICS)
    names, records = [], []
    minimums = [min(int(sample.min_events.get(name, 0)), MAX_MIN_EVENTS)
                for name in vocabulary.PERCENTILE_NAMES]
    for metric in metrics:
        observable = bool(sample.observable.get(metric, True))
        histogram = sample.histogram(metric) if observable else None
        counts = fold_buckets(histogram.buckets) if histogram else [0] * NBUCKETS
        source = (sample.metric_source(metric) if histogram is not None
                  else 'none')
        names.append(metric.encode('ascii').ljust(NAME_BYTES, b'\0'))
        records.append(struct.pack('<BB%dHQ%dI' % (len(minimums), NBUCKETS),
                                   SOURCE_CODES[source], observable,
                                   *minimums, sum(counts), *counts))
    host = sample.host.encode('ascii')
    node = (b'' if sample.nodename == sample.host
            else sample.nodename.encode('ascii'))
    data = sample.to_dict()
    # Sources of the records' metrics are in the records; the extras state
    # only the others' (rates).
    data['metric_sources'] = {k: v for k, v in data['metric_sources'].items()
                              if k not in metrics}
    extras = json.dumps({k: data[k] for k in _EXTRA_FIELDS},
                        separators=(',', ':'), allow_nan=False,
                        default=_json_default).encode('utf-8')
    header = _HEADER.pack(MAGIC, VERSION, len(metrics), NBUCKETS, 0,
                          len(host), len(node), 0, len(extras),
                          keyring.signing_id, sample.timestamp,
                          sample.window_s)
    body = b''.join([header] + names + records + [host, node, extras])
    return body + keyring.tag(body)


def check_frame(payload, key, keyring, max_bytes):
    """Check one payload's framing, name and MAC.

    :param key: the store key it was read under (``host`` or
        ``host+node``).
    :returns: ``(timestamp, None)`` or ``(None, reason)``.
    """
    if not isinstance(payload, bytes):
        return None, 'payload is %s, not bytes' % type(payload).__name__
    size = len(payload)
    if size > max_bytes:
        return None, '%d bytes, over the %d byte limit' % (size, max_bytes)
    if size < HEADER_BYTES + TAG_BYTES:
        if payload[:1] == b'{':
            return None, ('a v1 JSON sample from a collector not yet '
                          'upgraded')
        return None, 'truncated (%d bytes)' % size
    (magic, version, nmetrics, _, _, host_len, node_len, _, extras_len,
     key_id, timestamp, _) = _HEADER.unpack_from(payload)
    if magic != MAGIC:
        if payload[:1] == b'{':
            return None, ('a v1 JSON sample from a collector not yet '
                          'upgraded')
        return None, 'not a multimodal-virt sample (bad magic)'
    if version != VERSION:
        return None, 'unsupported sample version %d' % version
    if nmetrics > MAX_METRICS:
        return None, '%d metrics, at most %d' % (nmetrics, MAX_METRICS)
    expected = (core_bytes(nmetrics) + host_len + node_len + extras_len +
                TAG_BYTES)
    if size != expected:
        return None, 'length %d does not match its header (%d)' % (
            size, expected)
    start = core_bytes(nmetrics)
    host = payload[start:start + host_len]
    node = payload[start + host_len:start + host_len + node_len]
    named = host + b'+' + node if node_len else host
    if named != key.encode('ascii', 'replace'):
        return None, 'it names %r, not the key it is stored under' % (
            named.decode('ascii', 'replace')[:80],)
    reason = keyring.check(key_id, payload[:-TAG_BYTES],
                           payload[-TAG_BYTES:])
    if reason:
        return None, reason
    return timestamp, None


def _names(payload, nmetrics):
    raw = payload[HEADER_BYTES:HEADER_BYTES + nmetrics * NAME_BYTES]
    names = []
    for i in range(nmetrics):
        name = raw[i * NAME_BYTES:(i + 1) * NAME_BYTES].rstrip(b'\0')
        names.append(name.decode('ascii', 'replace'))
    if len(set(names)) != len(names):
        raise exception.InvalidSample('duplicate metric names %s' % names)
    return names


def row_checks(timestamps, windows, now, max_skew):
    """``[(bool array, reason)]`` on each row's timestamp and window."""
    return [
        (np.isfinite(timestamps) & (timestamps >= 0),
         'timestamp is not a finite time'),
        (timestamps <= now + max_skew,
         'timestamp is more than %.0f s in the future' % max_skew),
        (np.isfinite(windows) & (windows > 0) & (windows <= MAX_WINDOW_S),
         'window is not in (0, %.0f] s' % MAX_WINDOW_S),
    ]


def record_checks(source, observable, sums, counts=None):
    """``[(bool array, reason)]`` on each row's metric records.

    :param source: ``(rows, metrics)`` source codes.
    :param observable: ``(rows, metrics)`` observable flags.
    :param sums: ``(rows, metrics)`` events in each histogram.
    :param counts: ``(rows, metrics)`` event counts the records state,
        which must equal ``sums`` (formats that state them).
    """
    checks = [
        ((source <= 2).all(axis=1), 'unknown metric source'),
        ((observable <= 1).all(axis=1), 'observable flag is not 0 or 1'),
    ]
    if counts is not None:
        checks.append(((counts == sums).all(axis=1),
                       'event count does not match its histogram'))
    checks.append(
        ((((source != 0) & (observable == 1)) | (sums == 0)).all(axis=1),
         'events reported for a metric that is not measured'))
    return checks


def failed_rows(checks, rows):
    """Apply ``checks``; returns ``(bool array of good rows,
    {row: reason of its first failed check})``."""
    ok = np.ones(rows, dtype=bool)
    reasons = {}
    for passed, reason in checks:
        for row in np.flatnonzero(~passed & ok):
            reasons[int(row)] = reason
        ok &= passed
    return ok, reasons


def _validate(headers, records, now, max_skew):
    """Vectorised checks; returns a bool array and a reason per bad row."""
    checks = [
        (headers['nbuckets'] == NBUCKETS, 'bucket count is not %d'
         % NBUCKETS),
        (headers['flags'] == 0, 'unknown flags'),
    ] + row_checks(headers['timestamp'], headers['window'], now, max_skew)
    if records.shape[1]:
        sums = records['buckets'].sum(axis=2, dtype=np.uint64)
        checks += record_checks(records['source'], records['observable'],
                                sums, records['count'])
    return failed_rows(checks, len(headers))


class SampleBatch(object):
    """Every accepted sample of one refresh, as arrays (row per key).

    :ivar keys: store keys, in read order; ``index`` maps key to row.
    :ivar timestamps: float64 array, end of each sample's window.
    :ivar windows: float64 array of window lengths (seconds).
    :ivar buckets: ``{metric: (rows, NBUCKETS) uint32 array}`` for every
        vocabulary metric (zeros where a host did not carry it).
    :ivar sources: ``{metric: uint8 array}`` (see :data:`SOURCE_CODES`).
    :ivar observable: ``{metric: bool array}``.
    :ivar min_events: ``{metric: (rows, percentiles) uint16 array}``, the
        publisher's minimum event count per percentile (0: none).
    :ivar rejected: ``{key: reason}`` of the payloads refused this refresh.
    """

    def __init__(self, keys, timestamps, windows, buckets, sources,
                 observable, rejected=None, min_events=None):
        self.keys = keys
        self.timestamps = timestamps
        self.windows = windows
        self.buckets = buckets
        self.sources = sources
        self.observable = observable
        self.min_events = min_events or {
            metric: np.zeros((len(keys), len(vocabulary.PERCENTILE_NAMES)),
                             np.uint16) for metric in buckets}
        self.rejected = rejected or {}

    def __len__(self):
        return len(self.keys)

    @functools.cached_property
    def index(self):
        """``{key: row}``, built when first asked (the scheduler's
        snapshot keeps its own, from :attr:`keys`)."""
        return {key: row for row, key in enumerate(self.keys)}

    @classmethod
    def empty(cls):
        return cls.from_samples({})

    @classmethod
    def from_samples(cls, samples):
        """Build from ``{key: HostSample}`` (CLI, demo, tests).

        Histograms are folded exactly as :func:`encode` folds them, so a
        snapshot scores a sample the same whichever way it arrived.
        """
        keys = sorted(samples)
        rows = len(keys)
        metrics = vocabulary.LATENCY_METRICS
        buckets = {m: np.zeros((rows, NBUCKETS), np.uint32) for m in metrics}
        sources = {m: np.zeros(rows, np.uint8) for m in metrics}
        observable = {m: np.ones(rows, bool) for m in metrics}
        least = np.zeros((rows, len(vocabulary.PERCENTILE_NAMES)), np.uint16)
        for row, key in enumerate(keys):
            sample = samples[key]
            least[row] = [min(int(sample.min_events.get(name, 0)),
                              MAX_MIN_EVENTS)
                          for name in vocabulary.PERCENTILE_NAMES]
            for metric in metrics:
                if not sample.observable.get(metric, True):
                    observable[metric][row] = False
                    continue
                histogram = sample.histogram(metric)
                if histogram is not None:
                    buckets[metric][row] = fold_buckets(histogram.buckets)
                    sources[metric][row] = SOURCE_CODES[
                        sample.metric_source(metric)]
        return cls(keys,
                   np.array([samples[k].timestamp for k in keys], float),
                   np.array([samples[k].window_s for k in keys], float),
                   buckets, sources, observable,
                   min_events={m: least for m in metrics})


def paced_chunks(items, pace=None):
    """``items`` (a sequence) in slices of :data:`PACE_EVERY`, calling
    ``pace`` after each slice is handled."""
    for start in range(0, len(items), PACE_EVERY):
        yield items[start:start + PACE_EVERY]
        if pace is not None:
            pace()


def _frame_all(keys, blobs, keyring, max_bytes, pace=None):
    """Framing, name and MAC checks of many payloads at once.

    Headers are checked with numpy over the joined first bytes of every
    payload; only what cannot be vectorised (slicing the name, one HMAC)
    runs per payload. A row failing a vector check gets its exact reason
    from :func:`check_frame`.

    :param pace: called every :data:`PACE_EVERY` payloads.
    :returns: ``(indices of good rows, headers array, {key: reason})``.
    """
    count = len(blobs)
    sizes = np.fromiter(map(len, blobs), np.int64, count)
    heads = np.frombuffer(b''.join(
        [blob[:HEADER_BYTES].ljust(HEADER_BYTES, b'\0') for blob in blobs]),
        HEADER_DTYPE)
    nmetrics = heads['nmetrics'].astype(np.int64)
    start = HEADER_BYTES + nmetrics * (NAME_BYTES + RECORD_BYTES)
    host_len = heads['host_len'].astype(np.int64)
    node_len = heads['node_len'].astype(np.int64)
    expected = (start + host_len + node_len +
                heads['extras_len'].astype(np.int64) + TAG_BYTES)
    plausible = ((sizes <= max_bytes) & (sizes >= HEADER_BYTES + TAG_BYTES)
                 & (heads['magic'] == MAGIC) & (heads['version'] == VERSION)
                 & (nmetrics <= MAX_METRICS) & (sizes == expected))
    rejected = {}
    for row in np.flatnonzero(~plausible).tolist():
        rejected[keys[row]] = check_frame(blobs[row], keys[row], keyring,
                                          max_bytes)[1] or 'malformed'
    rows = np.flatnonzero(plausible)
    key_ids = heads['key_id'].view('<u4')
    columns = (rows.tolist(), start[rows].tolist(), host_len[rows].tolist(),
               node_len[rows].tolist(), key_ids[rows].tolist())
    good = []
    for span in paced_chunks(range(len(rows)), pace):
        chunk = [column[span.start:span.stop] for column in columns]
        good.extend(_verify_chunk(keys, blobs, keyring, max_bytes, *chunk,
                                  rejected=rejected))
    return good, heads, rejected


def _verify_chunk(keys, blobs, keyring, max_bytes, rows, starts, host_lens,
                  node_lens, key_ids, rejected):
    """Name and MAC check of plausible rows; returns the good ones.

    A row that fails gets its exact reason from :func:`check_frame` in
    ``rejected``.
    """
    macs = keyring.macs
    tag_at = -TAG_BYTES
    good = []
    for row, begin, hlen, nlen, kid in zip(rows, starts, host_lens,
                                           node_lens, key_ids):
        blob, key = blobs[row], keys[row]
        named = blob[begin:begin + hlen]
        if nlen:
            named += b'+' + blob[begin + hlen:begin + hlen + nlen]
        if named != key.encode('ascii', 'replace'):
            rejected[key] = check_frame(blob, key, keyring, max_bytes)[1]
            continue
        mac = macs.get(kid)
        if mac is None or not hmac.compare_digest(mac(blob[:tag_at]),
                                                  blob[tag_at:]):
            reason = check_frame(blob, key, keyring, max_bytes)[1]
            if reason:
                rejected[key] = reason
                continue
        good.append(row)
    return good


def _decode_arrays(keys, blobs, now, max_skew):
    """Decode framed payloads (already MAC-checked) into arrays.

    Payloads are grouped by their metric-name table (in practice one
    group, two while collectors of two releases coexist); each group is
    one ``frombuffer`` over the joined fixed parts and one vectorised
    validation.

    :param keys: store keys, parallel to ``blobs``.
    :returns: ``(accepted keys, accepted blobs, headers, columns,
        {key: reason})`` where ``headers`` and ``columns`` (``{metric:
        records}``) are lists with one entry per group.
    """
    groups = {}
    if blobs:
        first = blobs[0]
        names = first[HEADER_BYTES:HEADER_BYTES + first[5] * NAME_BYTES]
        end = HEADER_BYTES + len(names)
        if all([blob[HEADER_BYTES:end] == names and blob[5] == first[5]
                for blob in blobs]):
            groups[names] = list(range(len(blobs)))
        else:
            for row, blob in enumerate(blobs):
                groups.setdefault(
                    blob[HEADER_BYTES:HEADER_BYTES + blob[5] * NAME_BYTES],
                    []).append(row)
    out_keys, out_blobs, headers, per_metric, rejected = [], [], [], [], {}
    for names_raw, rows in groups.items():
        nmetrics = len(names_raw) // NAME_BYTES
        try:
            names = _names(blobs[rows[0]], nmetrics)
        except exception.InvalidSample as err:
            rejected.update((keys[row], str(err)) for row in rows)
            continue
        dtype = np.dtype([('header', HEADER_DTYPE),
                          ('names', 'V%d' % (nmetrics * NAME_BYTES)),
                          ('records', RECORD_DTYPE, (nmetrics,))])
        size = dtype.itemsize
        table = np.frombuffer(b''.join([blobs[row][:size] for row in rows]),
                              dtype=dtype)
        ok, reasons = _validate(table['header'], table['records'], now,
                                max_skew)
        for index, reason in reasons.items():
            rejected[keys[rows[index]]] = reason
        if reasons:
            rows = [row for row, good in zip(rows, ok.tolist()) if good]
            table = table[ok]
        out_keys.extend([keys[row] for row in rows])
        out_blobs.extend([blobs[row] for row in rows])
        headers.append(table['header'])
        per_metric.append({name: table['records'][:, i]
                           for i, name in enumerate(names)})
    return out_keys, out_blobs, headers, per_metric, rejected


def _assemble(keys, headers, per_metric, rejected):
    """One :class:`SampleBatch` from decoded groups (rows in read order)."""
    header = (np.concatenate(headers) if headers
              else np.zeros(0, HEADER_DTYPE))
    rows = len(keys)
    buckets, sources, observable, minimums = {}, {}, {}, {}
    for metric in vocabulary.LATENCY_METRICS:
        parts = []
        for group_headers, columns in zip(headers, per_metric):
            column = columns.get(metric)
            if column is None:  # an older collector without this metric
                column = np.zeros(len(group_headers), RECORD_DTYPE)
                column['observable'] = 1
            parts.append(column)
        column = (np.concatenate(parts) if parts
                  else np.zeros(0, RECORD_DTYPE))
        buckets[metric] = np.ascontiguousarray(column['buckets']).reshape(
            rows, NBUCKETS)
        sources[metric] = column['source'].copy()
        observable[metric] = column['observable'] == 1
        minimums[metric] = column['min_events'].copy()
    return SampleBatch(keys, header['timestamp'].astype(float),
                       header['window'].astype(float),
                       buckets, sources, observable, rejected, minimums)


class BatchDecoder(object):
    """Verifies and decodes whole refreshes; remembers the last good sample.

    A key whose new payload is refused (bad MAC, replay of an older sample,
    malformed) keeps its last accepted sample, which then ages into the
    stale policy: overwriting or deleting a host's entry can never make it
    look better than what it last really reported. An unchanged payload is
    not verified again.

    :param keyring: a :class:`~.signing.Keyring`.
    :param max_bytes: largest payload accepted.
    :param retain_s: how long a key that vanished from the store keeps its
        last sample (seconds after that sample's timestamp).
    :param max_keys: bound on remembered keys.
    :param max_skew: seconds a timestamp may be in the future.
    """

    def __init__(self, keyring, max_bytes=65536, retain_s=86400.0,
                 max_keys=200000, max_skew=sample_mod.MAX_CLOCK_SKEW):
        self.keyring = keyring
        self.max_bytes = max_bytes
        self.retain_s = retain_s
        self.max_keys = max_keys
        self.max_skew = max_skew
        # The last accepted payload of each key and its timestamp, in two
        # flat dicts of bytes and floats: nothing the garbage collector
        # must scan, however many hosts.
        self._good = {}
        self._good_at = {}

    def saw(self, keys, timestamps):
        """Note samples that reached the scheduler another way (an
        aggregate): an older sample of those keys is then refused as a
        replay, as if this decoder had read them itself."""
        seen = self._good_at
        for key, stamp in zip(keys, timestamps.tolist()):
            if stamp > seen.get(key, -np.inf):
                seen[key] = stamp
        if len(seen) > self.max_keys:
            self._good, self._good_at = {}, {}

    def decode(self, payloads, now, pace=None):
        """Decode ``{key: bytes}`` read at ``now`` into a :class:`SampleBatch`.

        Never raises for bad payloads: each is skipped and named in
        ``batch.rejected`` with its reason.

        :param pace: called every :data:`PACE_EVERY` verifications.
        """
        good, good_at = self._good, self._good_at
        keys, blobs, new_keys, new_blobs, rejected = [], [], [], [], {}
        for key, payload in payloads.items():
            last = good.get(key)
            if last is not None and last == payload:
                keys.append(key)
                blobs.append(payload)
            elif isinstance(payload, bytes):
                new_keys.append(key)
                new_blobs.append(payload)
            else:
                rejected[key] = 'payload is not bytes'
        if new_blobs:
            rows, heads, bad = _frame_all(new_keys, new_blobs, self.keyring,
                                          self.max_bytes, pace)
            rejected.update(bad)
            if rows:
                fresh_keys = [new_keys[row] for row in rows]
                seen = np.array([good_at.get(key, -np.inf)
                                 for key in fresh_keys])
                stamps = heads['timestamp'][rows]
                older = stamps < seen  # NaN is left to the bounds checks
                for index in np.flatnonzero(older).tolist():
                    rejected[fresh_keys[index]] = (
                        'replay of an older sample (%.0f, already saw %.0f)'
                        % (stamps[index], seen[index]))
                keep = (~older).tolist()
                keys.extend([k for k, ok in zip(fresh_keys, keep) if ok])
                blobs.extend([new_blobs[row] for row, ok in zip(rows, keep)
                              if ok])
        keys, blobs, headers, columns, bad = _decode_arrays(
            keys, blobs, now, self.max_skew)
        rejected.update(bad)
        # Refused or vanished keys fall back to their last good sample.
        accepted = set(keys)
        if rejected or not good.keys() <= accepted:
            back = [(key, last) for key, last in good.items()
                    if key not in accepted
                    and (key in rejected or key not in payloads)
                    and now - good_at[key] <= self.retain_s]
            if back:
                more = _decode_arrays([k for k, _ in back],
                                      [b for _, b in back], now,
                                      self.max_skew)
                keys += more[0]
                blobs += more[1]
                headers += more[2]
                columns += more[3]
        batch = _assemble(keys, headers, columns, rejected)
        self._good = dict(zip(keys, blobs))
        self._good_at = dict(zip(keys, batch.timestamps.tolist()))
        if len(self._good) > self.max_keys:
            self._good, self._good_at = {}, {}
        return batch


def decode_one(payload, key, keyring, max_bytes=65536, now=None,
               max_skew=sample_mod.MAX_CLOCK_SKEW):
    """Verify and decode one payload into a :class:`~.sample.HostSample`.

    For the CLI, the compute hook and the demo; the scheduler uses
    :class:`BatchDecoder`.

    :raises InvalidSample: naming what is wrong.
    """
    _, reason = check_frame(payload, key, keyring, max_bytes)
    if reason:
        raise exception.InvalidSample(reason)
    now = time.time() if now is None else now
    _, _, headers, columns, bad = _decode_arrays([key], [payload], now,
                                                 max_skew)
    if bad:
        raise exception.InvalidSample(bad[key])
    header = headers[0][0]
    nmetrics = int(header['nmetrics'])
    start = core_bytes(nmetrics)
    host_len, node_len = int(header['host_len']), int(header['node_len'])
    host = payload[start:start + host_len].decode('ascii')
    node = payload[start + host_len:start + host_len + node_len]
    extras_raw = payload[start + host_len + node_len:-TAG_BYTES]
    try:
        extras = json.loads(extras_raw.decode('utf-8'),
                            parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise exception.InvalidSample('extras are not valid JSON: %s'
                                      % str(err)[:200])
    if not isinstance(extras, dict) or set(extras) - set(_EXTRA_FIELDS):
        raise exception.InvalidSample('extras must be an object with the '
                                      'fields %s' % ', '.join(_EXTRA_FIELDS))
    kwargs = {k: v for k, v in extras.items() if v is not None}
    sources = dict(kwargs.pop('metric_sources', None) or {})
    observable = {}
    for metric, column in columns[0].items():
        record = column[0]
        if not record['observable']:
            observable[metric] = False
        counts = record['buckets'].tolist()
        while counts and not counts[-1]:
            counts.pop()
        if record['source'] and metric in sample_mod.FIELD_NAMES:
            kwargs[metric] = hist.LatencyHistogram(tuple(counts))
        source = SOURCE_NAMES[int(record['source'])]
        default = extras.get('source') if record['source'] else 'none'
        if metric in vocabulary.LATENCY_METRICS and source != default:
            sources[metric] = source
    try:
        return sample_mod.HostSample(
            host=host, nodename=node.decode('ascii') if node else None,
            timestamp=float(header['timestamp']),
            window_s=float(header['window']), metric_sources=sources,
            observable=observable, **kwargs)
    except (TypeError, exception.InvalidSample) as err:
        raise exception.InvalidSample('invalid sample fields: %s' % err)


def _reject_constant(name):
    raise ValueError('%s is not a number' % name)
