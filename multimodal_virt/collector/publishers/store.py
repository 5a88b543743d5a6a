"""Publish samples to the stats store the scheduler reads."""

from multimodal_virt.collector.publishers import base
from multimodal_virt import exception
from multimodal_virt.stores import loader


class StorePublisher(base.Publisher):
    """``store`` publisher: ``put()`` into ``[multimodal_virt_store]``.

    The store driver is loaded on first use, so a store that cannot be
    loaded now is retried at the next window instead of stopping the
    collector.

    :param conf: ``ConfigOpts`` with ``[multimodal_virt_store]`` registered.
    :param store: an already built
        :class:`~multimodal_virt.stores.base.StatsStore` (tests).
    """

    name = 'store'

    def __init__(self, conf, store=None):
        super().__init__(conf)
        self._store = store

    @property
    def store(self):
        """The store driver, loaded on first access.

        :raises PublishError: if the driver cannot be loaded.
        """
        if self._store is None:
            try:
                self._store = loader.get_store(self.conf)
            except exception.StoreError as err:
                raise exception.PublishError(str(err))
        return self._store

    def publish(self, sample):
        try:
            self.store.put(sample)
        except (exception.StoreError, exception.InvalidSample) as err:
            raise exception.PublishError(
                'cannot publish the sample of %s to the %s store: %s'
                % (sample.host, self.conf.multimodal_virt_store.driver, err))

    def close(self):
        if self._store is not None:
            self._store.close()
            self._store = None
