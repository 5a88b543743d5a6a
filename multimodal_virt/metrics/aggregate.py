"""Aggregate format: every verified sample of a store in one signed object.

``multimodal-virt-aggregator`` reads and verifies every compute node's
sample once (:class:`~.codec.BatchDecoder`, with its memory of each node's
last good sample) and publishes the resulting
:class:`~.codec.SampleBatch` as one aggregate. A scheduler refresh then
checks one MAC and maps the arrays in place instead of opening, verifying
and decoding one payload per node.

Layout (little endian; every section starts at a multiple of 8 bytes)::

    header      32 bytes  magic "MMVA", version 1, bucket count (NBUCKETS),
                          metric count n, flags (0), key id (4 bytes),
                          created (f8, epoch seconds), rows (u32), keys
                          length (u32), 4 reserved
    names       n x 16    metric names (ASCII, NUL padded)
    spans       n x 2     per metric, the first and the past-the-last bucket
                          column carried (u8); the columns outside are zero
    keys                  the store keys, ASCII, joined by "\\n", unique
    timestamps  rows x f8 end of each sample's window
    windows     rows x f8 window lengths (seconds)
    per metric  rows x u8 source, rows x u8 observable, rows x 3 x u16
                minimum events per percentile, rows x (end - first) x u32
                bucket counts
    tag         32 bytes  HMAC-SHA256 over everything before it

The same signing keys as the samples (:mod:`.signing`): whoever can write
the store but lacks a key can make the aggregate unreadable (every
scheduler then reads the samples themselves), never change what it says.
Each row passes the same checks as a sample's records.
"""

import re
import struct

import numpy as np

from multimodal_virt import exception
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import vocabulary

MAGIC = b'MMVA'
VERSION = 1
_HEADER = struct.Struct('<4sBBBB4sdII4x')
HEADER_BYTES = _HEADER.size
TAG_BYTES = codec.TAG_BYTES
NAME_BYTES = codec.NAME_BYTES
NBUCKETS = codec.NBUCKETS
NPERCENTILES = len(vocabulary.PERCENTILE_NAMES)
_KEYS_RE = re.compile(r'(?:{0})(?:\n(?:{0}))*'.format(
    sample_mod.KEY_RE.pattern))
_LONGEST_KEY = 2 * sample_mod.MAX_HOST_LENGTH + 1


def _padded(raw):
    return raw + b'\0' * (-len(raw) % 8)


def _aligned(size):
    return size + (-size % 8)


def max_bytes(rows):
    """Largest aggregate of ``rows`` nodes a reader accepts: room for
    twice today's metrics at full bucket spans and the longest keys."""
    metrics = 2 * len(vocabulary.LATENCY_METRICS)
    fixed = (HEADER_BYTES + _aligned(codec.MAX_METRICS * NAME_BYTES) +
             _aligned(2 * codec.MAX_METRICS) + 8 * (3 + 4 * metrics) +
             TAG_BYTES)
    per_row = (_LONGEST_KEY + 1 + 16 +
               metrics * (2 + 2 * NPERCENTILES + 4 * NBUCKETS))
    return fixed + rows * per_row


def encode(batch, keyring, created, metrics=None):
    """Serialise and sign a :class:`~.codec.SampleBatch` as an aggregate.

    :param keyring: a :class:`~.signing.Keyring`.
    :param created: when the batch was read (epoch seconds).
    :param metrics: metric names to carry (default: the vocabulary's).
    """
    metrics = tuple(metrics or vocabulary.LATENCY_METRICS)
    rows = len(batch)
    keys = '\n'.join(batch.keys).encode('ascii')
    spans, columns = [], []
    for metric in metrics:
        buckets = np.asarray(batch.buckets[metric], np.uint32)
        used = np.flatnonzero(buckets.any(axis=0))
        first, end = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 0)
        spans += [first, end]
        columns += [
            np.asarray(batch.sources[metric], np.uint8).tobytes(),
            np.asarray(batch.observable[metric], np.uint8).tobytes(),
            np.asarray(batch.min_events[metric], '<u2').tobytes(),
            np.ascontiguousarray(buckets[:, first:end], '<u4').tobytes()]
    header = _HEADER.pack(MAGIC, VERSION, NBUCKETS, len(metrics), 0,
                          keyring.signing_id, created, rows, len(keys))
    body = b''.join(
        [header,
         _padded(b''.join(m.encode('ascii').ljust(NAME_BYTES, b'\0')
                          for m in metrics)),
         _padded(bytes(spans)), _padded(keys),
         np.asarray(batch.timestamps, '<f8').tobytes(),
         np.asarray(batch.windows, '<f8').tobytes()] +
        [_padded(column) for column in columns])
    return body + keyring.tag(body)


class _Reader(object):
    """Maps consecutive 8-byte aligned sections of a payload."""

    def __init__(self, payload, offset):
        self.payload = payload
        self.offset = offset

    def take(self, dtype, count):
        dtype = np.dtype(dtype)
        array = np.frombuffer(self.payload, dtype, count, self.offset)
        self.offset += _aligned(dtype.itemsize * count)
        return array

    def raw(self, size):
        raw = self.payload[self.offset:self.offset + size]
        self.offset += _aligned(size)
        return raw


def _layout_size(nmetrics, spans, rows, keys_len):
    size = (HEADER_BYTES + _aligned(nmetrics * NAME_BYTES) +
            _aligned(2 * nmetrics) + _aligned(keys_len) + 16 * rows)
    for first, end in zip(spans[::2], spans[1::2]):
        size += (2 * _aligned(rows) + _aligned(2 * NPERCENTILES * rows) +
                 _aligned(4 * (end - first) * rows))
    return size + TAG_BYTES


def decode(payload, keyring, now, max_size, max_rows,
           max_skew=sample_mod.MAX_CLOCK_SKEW):
    """Verify and map an aggregate.

    :param now: the time of the read (epoch seconds).
    :param max_size: largest payload accepted (bytes).
    :param max_rows: most nodes accepted (a refresh's bound: nodes read
        and nodes remembered).
    :returns: ``(created, SampleBatch)``; rows that fail a sample's checks
        are left out and named in the batch's ``rejected``.
    :raises InvalidSample: naming what is wrong with the whole aggregate.
    """
    def refuse(reason):
        raise exception.InvalidSample('aggregate ' + reason)

    if not isinstance(payload, bytes):
        refuse('is %s, not bytes' % type(payload).__name__)
    size = len(payload)
    if size > max_size:
        refuse('is %d bytes, over the %d byte limit' % (size, max_size))
    if size < HEADER_BYTES + TAG_BYTES:
        refuse('is truncated (%d bytes)' % size)
    (magic, version, nbuckets, nmetrics, flags, key_id, created, rows,
     keys_len) = _HEADER.unpack_from(payload)
    if magic != MAGIC:
        refuse('has a bad magic')
    if version != VERSION:
        refuse('has unsupported version %d' % version)
    if nbuckets != NBUCKETS or flags:
        refuse('has %d buckets and flags %d, not %d and 0'
               % (nbuckets, flags, NBUCKETS))
    if nmetrics > codec.MAX_METRICS:
        refuse('has %d metrics, at most %d' % (nmetrics, codec.MAX_METRICS))
    if rows > max_rows:
        refuse('has %d nodes, over the %d a refresh holds (2 x max_hosts)'
               % (rows, max_rows))
    reader = _Reader(payload, HEADER_BYTES)
    names_raw = reader.raw(nmetrics * NAME_BYTES)
    spans = list(reader.raw(2 * nmetrics))
    if len(spans) != 2 * nmetrics or any(
            not first <= end <= NBUCKETS
            for first, end in zip(spans[::2], spans[1::2])):
        refuse('has bad bucket spans')
    expected = _layout_size(nmetrics, spans, rows, keys_len)
    if size != expected:
        refuse('length %d does not match its header (%d)' % (size, expected))
    reason = keyring.check(key_id, payload[:-TAG_BYTES],
                           payload[-TAG_BYTES:])
    if reason:
        refuse('refused: %s' % reason)
    if not np.isfinite(created) or created > now + max_skew:
        refuse('creation time %r is not a time before now' % created)
    names = []
    for i in range(nmetrics):
        name = names_raw[i * NAME_BYTES:(i + 1) * NAME_BYTES].rstrip(b'\0')
        names.append(name.decode('ascii', 'replace'))
    if len(set(names)) != len(names):
        refuse('has duplicate metric names %s' % names)
    keys_raw = reader.raw(keys_len)
    try:
        text = keys_raw.decode('ascii')
    except UnicodeDecodeError:
        refuse('has non-ASCII keys')
    if rows and _KEYS_RE.fullmatch(text) is None:
        refuse('has an invalid store key')
    keys = text.split('\n') if rows else []
    if len(keys) != rows or len(set(keys)) != rows:
        refuse('has %d keys (%d unique) for %d nodes'
               % (len(keys), len(set(keys)), rows))
    timestamps = reader.take('<f8', rows)
    windows = reader.take('<f8', rows)
    carried = {}
    for index, name in enumerate(names):
        first, end = spans[2 * index], spans[2 * index + 1]
        source = reader.take('u1', rows)
        observable = reader.take('u1', rows)
        least = reader.take('<u2', rows * NPERCENTILES).reshape(
            rows, NPERCENTILES)
        part = reader.take('<u4', rows * (end - first)).reshape(
            rows, end - first)
        carried[name] = (source, observable, least, first, part)
    checks = codec.row_checks(timestamps, windows, now, max_skew)
    if names:
        columns = list(carried.values())
        checks += codec.record_checks(
            np.stack([c[0] for c in columns], axis=1),
            np.stack([c[1] for c in columns], axis=1),
            np.stack([c[4].sum(axis=1, dtype=np.uint64) for c in columns],
                     axis=1))
    ok, reasons = codec.failed_rows(checks, rows)
    rejected = {keys[row]: reason for row, reason in reasons.items()}
    keep = None if not reasons else ok
    if keep is not None:
        keys = [key for key, good in zip(keys, ok.tolist()) if good]
    count = len(keys)

    def kept(array):
        return array if keep is None else array[keep]

    buckets, sources, observable, minimums = {}, {}, {}, {}
    for metric in vocabulary.LATENCY_METRICS:
        full = np.zeros((count, NBUCKETS), np.uint32)
        if metric in carried:
            source, seen, least, first, part = carried[metric]
            full[:, first:first + part.shape[1]] = kept(part)
            sources[metric] = kept(source).copy()
            observable[metric] = kept(seen) == 1
            minimums[metric] = kept(least).copy()
        else:  # an older aggregator without this metric
            sources[metric] = np.zeros(count, np.uint8)
            observable[metric] = np.ones(count, bool)
            minimums[metric] = np.zeros((count, NPERCENTILES), np.uint16)
        buckets[metric] = full
    batch = codec.SampleBatch(
        keys, kept(timestamps).astype(float), kept(windows).astype(float),
        buckets, sources, observable, rejected, minimums)
    return float(created), batch
