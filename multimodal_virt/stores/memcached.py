"""memcached stats store, through oslo.cache (dogpile.cache + pymemcache).

Keys: ``<prefix>:sample:<host>`` holds a host's JSON sample and
``<prefix>:hosts`` the index of hosts, so one ``get_multi`` returns them
all. Writers add their host to the index when it is missing; the index is
re-checked on every publish, so a lost concurrent update heals within one
collection interval.
"""

import json

from dogpile.cache import api as dogpile_api
from oslo_cache import core as cache_core
from oslo_config import cfg
from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.stores import base

LOG = logging.getLogger(__name__)
BACKEND = 'dogpile.cache.pymemcache'
DEAD_RETRY_SECONDS = 2.0


def _cache_conf(options):
    """A private oslo.cache configuration built from our store options."""
    conf = cfg.ConfigOpts()
    cache_core.configure(conf)
    conf([], project='multimodal-virt', default_config_files=[])
    conf.set_override('enabled', True, group='cache')
    conf.set_override('backend', BACKEND, group='cache')
    conf.set_override('memcache_servers', options.memcached_servers,
                      group='cache')
    conf.set_override('socket_timeout', options.socket_timeout,
                      group='cache')
    if options.sample_ttl:
        conf.set_override('expiration_time', options.sample_ttl,
                          group='cache')
        conf.set_override('backend_expiration_time', options.sample_ttl,
                          group='cache')
    return conf


class MemcachedStore(base.StatsStore):
    """``memcached`` driver: many hosts, one batched read."""

    def __init__(self, conf):
        super().__init__(conf)
        self.prefix = self.options.key_prefix
        self.index_key = '%s:hosts' % self.prefix
        self._region = cache_core.configure_cache_region(
            _cache_conf(self.options), cache_core.create_region())
        self._fail_loudly(self._region.backend)

    @staticmethod
    def _fail_loudly(backend):
        """Make an unreachable server raise instead of reading as empty.

        pymemcache's HashClient, as dogpile builds it, answers "no value"
        and silently drops writes while it retries a failed server. A
        collector must know its publish failed and the scheduler must log
        that the store is down, so retries are turned off and a dead server
        is tried again after a short pause. Set before the client exists.
        """
        backend.hashclient_retry_attempts = 0
        backend.dead_timeout = DEAD_RETRY_SECONDS

    def _sample_key(self, host):
        return '%s:sample:%s' % (self.prefix, host)

    def _call(self, what, func, *args):
        try:
            return func(*args)
        except exception.MultimodalVirtError:
            raise
        except Exception as err:  # pymemcache/socket errors vary by version
            raise exception.StoreUnavailable(
                'memcached %s failed (%s): %s'
                % (what, ','.join(self.options.memcached_servers), err))

    def _hosts(self):
        raw = self._call('index read', self._region.get, self.index_key)
        if raw is dogpile_api.NO_VALUE:
            return []
        try:
            hosts = json.loads(raw)
            if isinstance(hosts, list) and all(isinstance(h, str)
                                               for h in hosts):
                return hosts
        except (TypeError, ValueError):
            pass
        self._bad_payload_log.warning(
            self.index_key, 'Ignoring corrupt host index %s in memcached',
            self.index_key)
        return []

    def put(self, sample):
        payload = sample.to_json(self.max_bytes)
        self._call('write', self._region.set, self._sample_key(sample.key),
                   payload)
        hosts = self._hosts()
        if sample.key not in hosts:
            hosts.append(sample.key)
            self._call('index write', self._region.set, self.index_key,
                       json.dumps(sorted(hosts)))

    def get_all(self):
        hosts = self._hosts()
        if not hosts:
            return {}
        keys = [self._sample_key(host) for host in hosts]
        payloads = self._call('batched read', self._region.get_multi, keys)
        samples = {}
        for host, payload in zip(hosts, payloads):
            if payload is dogpile_api.NO_VALUE:
                continue  # expired, or deleted and index not yet pruned
            sample = self._decode(host, payload)
            if sample is not None and sample.key == host:
                samples[host] = sample
        return samples

    def delete(self, host):
        self._call('delete', self._region.delete, self._sample_key(host))
        hosts = self._hosts()
        if host in hosts:
            hosts.remove(host)
            self._call('index write', self._region.set, self.index_key,
                       json.dumps(hosts))
