"""One refresh's read of the stats store, with its fallbacks.

Used where a refresh runs: the scheduler's refresh worker process
(:mod:`~multimodal_virt.scheduler.refresh_worker`) and, when that is off or
failed, nova-scheduler's own refresher thread.

A fresh aggregate from ``multimodal-virt-aggregator`` is read instead of
every sample when the store holds one
(``[multimodal_virt_store] aggregate_max_age``). When the store fails, the
last samples read are returned again, so they age into the staleness
policy instead of vanishing.
"""

from oslo_log import log as logging

from multimodal_virt.metrics import codec
from multimodal_virt import ratelimit
from multimodal_virt.stores import loader

LOG = logging.getLogger(__name__)


def store_options(conf):
    """``{name: value}`` of the ``[multimodal_virt_store]`` group."""
    options = conf.multimodal_virt_store
    return {name: options[name] for name in sorted(options)}


def retain_seconds(conf):
    """How long a node whose sample vanished or was refused keeps its last
    good one: ``forget_after``, at least ``stale_after``."""
    options = conf.multimodal_virt_scheduler
    return max(options.forget_after, options.stale_after)


class StoreReader(object):
    """Reads every sample of the configured (or a given) store in bulk.

    :param conf: ``ConfigOpts`` with ``[multimodal_virt_store]``
        registered; the store is reloaded when that group changes.
    :param store: a store to use instead of loading the configured one.
    """

    def __init__(self, conf, store=None):
        self.conf = conf
        self._store = store
        self._store_fixed = store is not None
        self._store_key = None
        self._last_batch = codec.SampleBatch.empty()
        #: Whether the last successful read used the aggregate.
        self.from_aggregate = False
        self._warn = ratelimit.RateLimitedLog(LOG, interval=60.0)

    def read(self, now, retain_s, pace=None):
        """Read, verify and decode every sample; never raises.

        :param now: the time of the read (seconds since the epoch).
        :param retain_s: how long a node whose sample vanished or was
            refused keeps its last good one (seconds after it).
        :param pace: called between chunks of the work.
        :returns: a :class:`~multimodal_virt.metrics.codec.SampleBatch`;
            the last one read when the store cannot be read.
        """
        try:
            store = self._current_store()
            store.retain_vanished(retain_s)
            max_age = self.conf.multimodal_virt_store.aggregate_max_age
            batch = (store.read_aggregate_batch(now, max_age) if max_age
                     else None)
            if (batch is not None) != self.from_aggregate:
                self.from_aggregate = batch is not None
                LOG.info('Latency refreshes now read %s',
                         'the aggregate of multimodal-virt-aggregator'
                         if self.from_aggregate else 'every sample')
            if batch is None:
                batch = store.read_batch(now, pace=pace)
            self._last_batch = batch
        except Exception as err:  # never let the store break scheduling
            self._warn.warning(
                'store', 'Latency stats unavailable, scheduling with the '
                'last samples read (%(count)d hosts), which age into the '
                'stale policy, until the store answers: %(err)s',
                {'count': len(self._last_batch), 'err': err})
        return self._last_batch

    def _current_store(self):
        """The configured store, reloaded when its options change."""
        if self._store_fixed:
            return self._store
        key = repr(store_options(self.conf))
        if self._store is None or key != self._store_key:
            self.close()
            self._store = loader.get_store(self.conf)
            self._store_key = key
        return self._store

    def close(self):
        """Release the store's connections (a configured store only)."""
        if self._store is not None and not self._store_fixed:
            self._store.close()
            self._store = None
