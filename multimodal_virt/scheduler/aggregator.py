"""The stats aggregator: every sample verified once, for every scheduler.

Without it, every refresh of every nova-scheduler worker process opens,
verifies and decodes one payload per compute node. The aggregator does
that once per ``[multimodal_virt_aggregator] interval``, with the same
decoder (each node's last good sample kept for ``forget_after``), and
publishes the result as one signed aggregate
(:mod:`~multimodal_virt.metrics.aggregate`) in the same store. Refreshes
read it while it is younger than ``[multimodal_virt_store]
aggregate_max_age`` and read every sample otherwise, so a stopped
aggregator only makes refreshes slower again.
"""

import time

from oslo_log import log as logging

from multimodal_virt.scheduler import store_reader
from multimodal_virt.stores import loader

LOG = logging.getLogger(__name__)


class Aggregator(object):
    """Reads, verifies and republishes a store's samples as an aggregate.

    :param conf: ``ConfigOpts`` with every multimodal-virt group.
    :param store: a store to use instead of loading the configured one.
    """

    def __init__(self, conf, store=None):
        self.conf = conf
        self.store = store if store is not None else loader.get_store(conf)

    def run_once(self, now=None):
        """One aggregation.

        :param now: the time of the read (default: now).
        :returns: ``{'nodes', 'rejected', 'bytes', 'seconds'}``.
        :raises StoreUnavailable: the store cannot be read or written.
        """
        now = time.time() if now is None else now
        started = time.monotonic()
        self.store.retain_vanished(store_reader.retain_seconds(self.conf))
        batch = self.store.read_batch(now)
        size = self.store.publish_aggregate(batch, now)
        return {'nodes': len(batch), 'rejected': len(batch.rejected),
                'bytes': size, 'seconds': time.monotonic() - started}

    def close(self):
        self.store.close()
