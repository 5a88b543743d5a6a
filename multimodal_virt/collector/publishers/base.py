"""Abstract publisher (``multimodal_virt.publishers`` plugins)."""

import abc

from oslo_config import cfg

from multimodal_virt.metrics import sample as sample_mod


class Publisher(metaclass=abc.ABCMeta):
    """Somewhere a host sample goes after every collection window.

    :param conf: ``oslo_config.cfg.ConfigOpts`` with the multimodal-virt
        groups registered; a publisher reads only the groups it needs.
    """

    #: entry point name in ``multimodal_virt.publishers``.
    name = None

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @abc.abstractmethod
    def publish(self, sample: sample_mod.HostSample) -> None:
        """Publish one sample.

        :param sample: a :class:`~multimodal_virt.metrics.sample.HostSample`.
        :raises PublishError: when the destination cannot be written; the
            collector logs it and keeps collecting.
        """

    def close(self) -> None:
        """Release connections; the default has none."""
