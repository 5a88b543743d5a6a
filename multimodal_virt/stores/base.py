"""Abstract stats store (``multimodal_virt.stores`` plugins)."""

import abc

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt import ratelimit

LOG = logging.getLogger(__name__)


class StatsStore(metaclass=abc.ABCMeta):
    """A place where host samples are published and read back in bulk.

    :param conf: an ``oslo_config.cfg.ConfigOpts`` with the
        ``[multimodal_virt_store]`` group registered. Drivers read only that
        group.
    """

    def __init__(self, conf):
        self.options = conf.multimodal_virt_store
        self.max_bytes = self.options.max_sample_bytes
        self._bad_payload_log = ratelimit.RateLimitedLog(LOG, interval=60.0)

    @abc.abstractmethod
    def put(self, sample):
        """Publish ``sample``, replacing the host's previous one.

        :param sample: a :class:`~multimodal_virt.metrics.sample.HostSample`.
        :raises StoreUnavailable: when the backend cannot be written.
        """

    @abc.abstractmethod
    def get_all(self):
        """Return ``{host: HostSample}`` for every host, in one batched read.

        Invalid payloads are skipped with a rate-limited warning naming the
        host and the reason; they never fail the whole read.

        :raises StoreUnavailable: when the backend cannot be read.
        """

    @abc.abstractmethod
    def delete(self, host):
        """Forget ``host``'s sample (no error if there is none)."""

    def get(self, host):
        """Return one host's sample, or ``None``."""
        return self.get_all().get(host)

    def close(self):
        """Release connections; the default has none."""

    def _decode(self, key, payload):
        """Parse one stored payload, or log why not and return ``None``."""
        try:
            return sample_mod.HostSample.from_json(payload, self.max_bytes)
        except exception.InvalidSample as err:
            self._bad_payload_log.warning(
                key, 'Ignoring invalid sample %(key)s in the %(store)s '
                'store: %(err)s',
                {'key': key, 'store': type(self).__name__, 'err': err})
            return None
