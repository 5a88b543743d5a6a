"""Reads the stats store at most once per refresh interval.

A refresh is one batched ``store.read_batch()`` (raw payloads verified and
decoded in bulk) followed by one vectorised
:class:`~multimodal_virt.scheduler.snapshot.LatencySnapshot`; everything
between refreshes is a lookup. Any failure degrades to an empty snapshot
(no metrics: every host passes, every host weighs the same) with one
rate-limited warning, so a broken store never breaks scheduling.

Nova instantiates the filter and the weigher separately; both ask
:meth:`SnapshotProvider.shared` for the provider of their config object, so
a scheduler process reads the store once per interval, not once per plugin.
"""

import threading
import time
import weakref

from oslo_log import log as logging

from multimodal_virt import ratelimit
from multimodal_virt.scheduler import snapshot as snapshot_mod
from multimodal_virt.stores import loader

LOG = logging.getLogger(__name__)


class SnapshotProvider(object):
    """Caches a :class:`LatencySnapshot` for ``refresh_interval`` seconds.

    :param conf: ``ConfigOpts`` with the multimodal-virt groups registered.
    :param store: a store to use instead of loading ``[..._store] driver``.
    :param clock: wall clock (sample ages), injectable for tests.
    :param monotonic: monotonic clock (refresh timing), injectable.
    """

    # Weak: a provider lives as long as a plugin holds it; the registry
    # only lets the filter and the weigher of one process find each other.
    _shared = weakref.WeakValueDictionary()
    _shared_lock = threading.Lock()

    def __init__(self, conf, store=None, clock=time.time,
                 monotonic=time.monotonic):
        self.conf = conf
        self._store = store
        self._store_fixed = store is not None
        self._store_key = None
        self._clock = clock
        self._monotonic = monotonic
        self._snapshot = None
        self._next_refresh = 0.0
        self._lock = threading.Lock()
        self._warn = ratelimit.RateLimitedLog(LOG, interval=60.0)

    @classmethod
    def shared(cls, conf):
        """Return the process-wide provider for ``conf``, creating it."""
        with cls._shared_lock:
            provider = cls._shared.get(id(conf))
            if provider is None or provider.conf is not conf:
                provider = cls(conf)
                cls._shared[id(conf)] = provider
            return provider

    def snapshot(self):
        """Return the current snapshot, refreshing it when due."""
        with self._lock:
            if (self._snapshot is None
                    or self._monotonic() >= self._next_refresh):
                self._snapshot = self._refresh()
                interval = self.conf.multimodal_virt_scheduler.refresh_interval
                self._next_refresh = self._monotonic() + interval
            return self._snapshot

    def invalidate(self):
        """Force the next :meth:`snapshot` call to read the store."""
        with self._lock:
            self._snapshot = None

    def _refresh(self):
        policy = snapshot_mod.ScoringPolicy.from_conf(
            self.conf.multimodal_virt_scheduler)
        try:
            now = self._clock()
            batch = self._current_store().read_batch(now)
            return snapshot_mod.LatencySnapshot(batch, policy, now)
        except Exception as err:  # never let the store break scheduling
            self._warn.warning(
                'store', 'Latency stats unavailable, scheduling without '
                'latency data until the store answers: %(err)s',
                {'err': err})
            return snapshot_mod.LatencySnapshot({}, policy, self._clock())

    def _current_store(self):
        """The configured store, reloaded when its options change."""
        if self._store_fixed:
            return self._store
        options = self.conf.multimodal_virt_store
        key = tuple((name, repr(options[name])) for name in sorted(options))
        if self._store is None or key != self._store_key:
            if self._store is not None:
                self._store.close()
            self._store = loader.get_store(self.conf)
            self._store_key = key
        return self._store
