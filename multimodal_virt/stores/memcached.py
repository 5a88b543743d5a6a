"""memcached stats store: raw signed bytes through pymemcache.

No serializer anywhere: values are written and read as bytes, whatever
flags a writer put on them, so nothing read from memcached is ever
unpickled or otherwise turned into code. A payload is only believed once
its HMAC checks out (see :mod:`multimodal_virt.metrics.signing`).

Keys (all ASCII, fixed length, whatever the host name):

* ``<prefix>:v2:s:<blake2b(key)>``: a node's signed sample, with a TTL;
* ``<prefix>:v2:i:<shard>``: one of :data:`SHARDS` index shards, each a
  newline-separated list of the store keys that hash to it;
* ``<prefix>:v2:a``: the aggregator's aggregate, as ``<generation> <chunks>
  <bytes>``, and ``<prefix>:v2:a:<generation>:<n>``: its chunks (an
  aggregate is larger than memcached's largest item). A new aggregate is
  written under a new generation before the head names it, so a reader
  never joins chunks of two; the aggregator deletes the chunks of the
  generation before the previous one.

Writers add their key to its shard with ``gets``/``cas`` (retrying on a
concurrent update), so no update is lost. A shard is bounded: when full, a
writer first prunes names whose sample has expired. Readers read all
shards in one ``get_many``, keep at most ``2 * max_hosts / SHARDS`` valid
names per shard, then read every sample in one more ``get_many``: a refresh
costs two round trips per server and is bounded whatever the index holds.
"""

import collections
import hashlib
import os
import re
import ssl

from oslo_log import log as logging
from pymemcache.client import hash as hash_client

from multimodal_virt import exception
from multimodal_virt.metrics import codec
from multimodal_virt.stores import base

LOG = logging.getLogger(__name__)
SHARDS = 64
CAS_ATTEMPTS = 8
DEAD_RETRY_SECONDS = 2.0
# memcached's default largest item is 1 MiB.
MAX_INDEX_BYTES = 1024 * 1024 - 1024
#: Bytes per aggregate chunk (under memcached's 1 MiB item limit).
AGGREGATE_CHUNK_BYTES = 1000 * 1000
_AGGREGATE_HEAD_RE = re.compile(rb'([0-9a-f]{16}) ([0-9]{1,6}) ([0-9]{1,12})')


def _server(address):
    host, _, port = address.rpartition(':')
    if not host:
        return address, 11211
    return host.strip('[]'), int(port)


def tls_context(options):
    """An ``ssl.SSLContext`` from the TLS options, or ``None``."""
    if not options.memcached_tls_enabled:
        return None
    context = ssl.create_default_context(cafile=options.memcached_tls_cafile)
    if options.memcached_tls_certfile:
        context.load_cert_chain(options.memcached_tls_certfile,
                                options.memcached_tls_keyfile)
    if options.memcached_tls_allowed_ciphers:
        context.set_ciphers(options.memcached_tls_allowed_ciphers)
    return context


class MemcachedStore(base.StatsStore):
    """``memcached`` driver: many hosts, two batched reads."""

    def __init__(self, conf):
        super().__init__(conf)
        prefix = self.options.key_prefix
        self._sample_prefix = '%s:v2:s:' % prefix
        self._shard_keys = ['%s:v2:i:%02d' % (prefix, i)
                            for i in range(SHARDS)]
        self.shard_limit = max(1, -(-2 * self.max_hosts // SHARDS))
        self.ttl = self.options.sample_ttl
        self._aggregate_key = '%s:v2:a' % prefix
        # Generations this writer published, newest last.
        self._generations = collections.deque()
        try:
            context = tls_context(self.options)
        except (OSError, ssl.SSLError, ValueError) as err:
            raise exception.StoreError('memcached TLS settings: %s' % err)
        # retry_attempts=0 and a short dead_timeout: an unreachable server
        # raises (a collector must know its publish failed, the scheduler
        # must log the outage) and is tried again soon.
        self._client = hash_client.HashClient(
            [_server(s) for s in self.options.memcached_servers],
            connect_timeout=self.options.socket_timeout,
            timeout=self.options.socket_timeout,
            retry_attempts=0, dead_timeout=DEAD_RETRY_SECONDS,
            use_pooling=True, ignore_exc=False, default_noreply=False,
            tls_context=context)

    def sample_key(self, key):
        """The memcached key of a store key (fixed length, pure ASCII)."""
        digest = hashlib.blake2b(key.encode('ascii'), digest_size=16)
        return self._sample_prefix + digest.hexdigest()

    def shard_key(self, key):
        """The index shard a store key is listed in."""
        digest = hashlib.blake2b(key.encode('ascii'), digest_size=8)
        return self._shard_keys[digest.digest()[0] % SHARDS]

    def _call(self, what, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except exception.MultimodalVirtError:
            raise
        except Exception as err:  # pymemcache/socket errors vary by version
            raise exception.StoreUnavailable(
                'memcached %s failed (%s): %s'
                % (what, ','.join(self.options.memcached_servers), err))

    def _parse_shard(self, shard, raw):
        """Valid, unique names of one shard, at most ``shard_limit``."""
        if not isinstance(raw, bytes):
            return []
        scan = self.shard_limit * 2
        lines = raw.split(b'\n', scan)
        names = []
        seen = set()
        invalid = []
        for line in lines[:scan]:
            try:
                name = line.decode('ascii')
            except UnicodeDecodeError:
                invalid.append(line)
                continue
            if not name or name in seen:
                continue
            if base.valid_key(name) and self.shard_key(name) == shard:
                seen.add(name)
                names.append(name)
            else:
                invalid.append(line)
        if invalid:
            self._bad_payload_log.warning(
                shard + ':invalid', 'memcached index shard %(shard)s lists '
                '%(count)d invalid names (e.g. %(name)r); ignored',
                {'shard': shard, 'count': len(invalid),
                 'name': invalid[0][:80]})
        if len(lines) > scan or len(names) > self.shard_limit:
            self._bad_payload_log.warning(
                shard, 'memcached index shard %(shard)s lists more than '
                '%(limit)d hosts; the rest are ignored until their writers '
                'publish again (raise max_hosts if this is real)',
                {'shard': shard, 'limit': self.shard_limit})
        return names[:self.shard_limit]

    def _index(self):
        shards = self._call('index read', self._client.get_many,
                            self._shard_keys)
        names = []
        for shard in self._shard_keys:
            raw = shards.get(shard)
            if raw is not None:
                names.extend(self._parse_shard(shard, raw))
        return names

    def write(self, key, payload):
        self._call('write', self._client.set, self.sample_key(key), payload,
                   expire=self.ttl)
        self._index_update(key, add=True)

    def _index_update(self, key, add):
        shard = self.shard_key(key)
        for _ in range(CAS_ATTEMPTS):
            raw, cas = self._call('index read', self._client.gets, shard)
            names = self._parse_shard(shard, raw) if raw is not None else []
            if (key in names) == add:
                return
            if add:
                if len(names) >= self.shard_limit:
                    names = self._prune(names)
                if len(names) >= self.shard_limit:
                    raise exception.StoreUnavailable(
                        'memcached index shard %s is full (%d hosts); raise '
                        'max_hosts' % (shard, len(names)))
                names.append(key)
            else:
                names.remove(key)
            value = '\n'.join(names).encode('ascii')
            if raw is None:
                done = self._call('index write', self._client.add, shard,
                                  value, noreply=False)
            else:
                done = self._call('index write', self._client.cas, shard,
                                  value, cas, noreply=False)
            if done:
                return
        raise exception.StoreUnavailable(
            'memcached index shard %s kept changing under %d attempts'
            % (shard, CAS_ATTEMPTS))

    def _prune(self, names):
        """Drop names whose sample is gone (expired or never written)."""
        present = self._call('index prune', self._client.get_many,
                             [self.sample_key(n) for n in names])
        return [n for n in names if self.sample_key(n) in present]

    def read_all(self, pace=None):
        names = self._index()[:self.max_hosts]
        if not names:
            return {}
        keys = {self.sample_key(name): name for name in names}
        wanted = list(keys)
        payloads = {}
        for chunk in codec.paced_chunks(wanted, pace):
            values = self._call('batched read', self._client.get_many, chunk)
            for mkey, value in values.items():
                name = keys.get(mkey)
                if name is not None and isinstance(value, bytes):
                    payloads[name] = value
        return payloads

    def read(self, key):
        if not base.valid_key(key):
            return None
        value = self._call('read', self._client.get, self.sample_key(key))
        return value if isinstance(value, bytes) else None

    def delete_key(self, key):
        self._call('delete', self._client.delete, self.sample_key(key),
                   noreply=False)
        self._index_update(key, add=False)

    def _chunk_keys(self, generation, count):
        return ['%s:%s:%d' % (self._aggregate_key, generation, index)
                for index in range(count)]

    def write_aggregate(self, payload):
        generation = os.urandom(8).hex()
        chunks = [payload[start:start + AGGREGATE_CHUNK_BYTES]
                  for start in range(0, len(payload), AGGREGATE_CHUNK_BYTES)]
        keys = self._chunk_keys(generation, len(chunks))
        failed = self._call('aggregate write', self._client.set_many,
                            dict(zip(keys, chunks)), expire=self.ttl)
        if failed:
            raise exception.StoreUnavailable(
                'memcached did not store %d aggregate chunks' % len(failed))
        head = ('%s %d %d' % (generation, len(chunks), len(payload)))
        self._call('aggregate write', self._client.set, self._aggregate_key,
                   head.encode('ascii'), expire=self.ttl)
        self._generations.append((generation, len(chunks)))
        while len(self._generations) > 2:
            old, count = self._generations.popleft()
            try:
                self._client.delete_many(self._chunk_keys(old, count),
                                         noreply=True)
            except Exception:  # they expire with their TTL anyway
                LOG.debug('Deleting old aggregate chunks failed',
                          exc_info=True)

    def read_aggregate(self):
        head = self._call('aggregate read', self._client.get,
                          self._aggregate_key)
        if head is None:
            return None
        match = (_AGGREGATE_HEAD_RE.fullmatch(head)
                 if isinstance(head, bytes) else None)
        count, size = ((int(match.group(2)), int(match.group(3)))
                       if match else (0, -1))
        if (not 0 < size <= self.max_aggregate_bytes or
                count != -(-size // AGGREGATE_CHUNK_BYTES)):
            self._bad_payload_log.warning(
                self._aggregate_key, 'Ignoring the memcached aggregate '
                'head %(key)s: %(head)r is not "<generation> <chunks> '
                '<bytes>" within %(limit)d bytes',
                {'key': self._aggregate_key, 'head': head[:80],
                 'limit': self.max_aggregate_bytes})
            return None
        keys = self._chunk_keys(match.group(1).decode('ascii'), count)
        chunks = self._call('aggregate read', self._client.get_many, keys)
        parts = [chunks.get(key) for key in keys]
        missing = sum(1 for part in parts if not isinstance(part, bytes))
        payload = b''.join(part for part in parts if isinstance(part, bytes))
        if missing or len(payload) != size:
            # Evicted, deleted, or overwritten by a writer without the key
            # (a writer's own generation is deleted two writes later).
            self._bad_payload_log.warning(
                self._aggregate_key, 'Ignoring the memcached aggregate '
                '%(generation)s: %(missing)d of its %(count)d chunks are '
                'missing and it has %(size)d of its %(expected)d bytes '
                '(evicted, or replaced while read); reading every sample',
                {'generation': match.group(1).decode('ascii'),
                 'missing': missing, 'count': count, 'size': len(payload),
                 'expected': size})
            return None
        return payload

    def close(self):
        try:
            self._client.close()
        except Exception:  # closing a dead socket must not fail a shutdown
            LOG.debug('Closing the memcached client failed', exc_info=True)
