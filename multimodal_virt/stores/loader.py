"""Load the configured stats store driver through stevedore."""

from stevedore import driver

from multimodal_virt import exception

NAMESPACE = 'multimodal_virt.stores'


def get_store(conf, name=None):
    """Return the ``[multimodal_virt_store] driver`` store, loaded.

    :param conf: ``ConfigOpts`` with ``[multimodal_virt_store]`` registered.
    :param name: driver name overriding the configured one.
    :returns: a :class:`~multimodal_virt.stores.base.StatsStore`.
    :raises StoreError: if the driver is unknown or fails to load.
    """
    name = name or conf.multimodal_virt_store.driver
    try:
        manager = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                       invoke_args=(conf,))
    except Exception as err:  # stevedore raises several types
        raise exception.StoreError(
            'cannot load stats store driver %r from %s: %s'
            % (name, NAMESPACE, err))
    return manager.driver
