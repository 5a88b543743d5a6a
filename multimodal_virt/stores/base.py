"""Abstract stats store (``multimodal_virt.stores`` plugins).

A store moves opaque signed payloads (sample format v2, see
:mod:`multimodal_virt.metrics.codec`): drivers only implement raw
``write``/``read_all``/``read``/``delete``; signing, verification and
decoding are the same for every driver and live here and in the codec.
"""

import abc
from typing import Callable, Dict, Optional

from oslo_config import cfg
from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.metrics import aggregate
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import signing
from multimodal_virt import ratelimit

LOG = logging.getLogger(__name__)


def valid_key(key):
    """True if ``key`` is a well-formed store key (``host[+node]``)."""
    return isinstance(key, str) and sample_mod.KEY_RE.fullmatch(key) is not None


class StatsStore(metaclass=abc.ABCMeta):
    """A place where host samples are published and read back in bulk.

    :param conf: an ``oslo_config.cfg.ConfigOpts`` with the
        ``[multimodal_virt_store]`` group registered. Drivers read only that
        group.
    :raises StoreError: without a signing key unless ``allow_unsigned``.
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.options = conf.multimodal_virt_store
        self.max_bytes = self.options.max_sample_bytes
        self.max_hosts = self.options.max_hosts
        # A refresh's batch holds up to max_hosts nodes read plus those it
        # remembers (vanished or refused): the decoder's own bound.
        self.max_batch_rows = 2 * self.max_hosts
        self.max_aggregate_bytes = aggregate.max_bytes(self.max_batch_rows)
        self.keyring = signing.Keyring.from_conf(self.options)
        self._bad_payload_log = ratelimit.RateLimitedLog(LOG, interval=60.0)
        self._decoder = codec.BatchDecoder(
            self.keyring, max_bytes=self.max_bytes,
            max_keys=self.max_batch_rows)

    # Driver interface: raw bytes only.

    @abc.abstractmethod
    def write(self, key: str, payload: bytes) -> None:
        """Store ``payload`` under ``key``, replacing the previous one.

        :raises StoreUnavailable: when the backend cannot be written.
        """

    @abc.abstractmethod
    def read_all(self, pace: Optional[Callable[[], None]] = None
                 ) -> Dict[str, bytes]:
        """Return ``{key: bytes}`` for every node, in one batched read.

        An entry that cannot be read is left out (with a rate-limited
        warning naming it); it never fails the whole read.

        :param pace: called every
            :data:`~multimodal_virt.metrics.codec.PACE_EVERY` entries, so
            a background reader can let request threads run.

        :raises StoreUnavailable: when the backend cannot be read at all.
        """

    @abc.abstractmethod
    def read(self, key: str) -> Optional[bytes]:
        """Return one key's payload, or ``None``."""

    @abc.abstractmethod
    def delete_key(self, key: str) -> None:
        """Forget ``key`` (no error if there is none)."""

    @abc.abstractmethod
    def write_aggregate(self, payload: bytes) -> None:
        """Store the aggregator's aggregate, replacing the previous one.

        :raises StoreUnavailable: when the backend cannot be written.
        """

    @abc.abstractmethod
    def read_aggregate(self) -> Optional[bytes]:
        """The last aggregate stored, or ``None`` (none, or unreadable:
        logged).

        :raises StoreUnavailable: when the backend cannot be read at all.
        """

    # Sample interface, the same for every driver.

    def put(self, sample: sample_mod.HostSample) -> None:
        """Sign and publish ``sample``, replacing its node's previous one.

        :param sample: a :class:`~multimodal_virt.metrics.sample.HostSample`.
        :raises StoreUnavailable: when the backend cannot be written.
        :raises InvalidSample: when the payload is over the size limit.
        """
        payload = codec.encode(sample, self.keyring)
        if len(payload) > self.max_bytes:
            raise exception.InvalidSample(
                'sample for %s is %d bytes, over the %d byte limit'
                % (sample.key, len(payload), self.max_bytes))
        self.write(sample.key, payload)

    def retain_vanished(self, seconds: float) -> None:
        """Keep a node's last good sample this long after its timestamp.

        A node whose entry vanishes (an expired memcached key, a deleted
        file) or whose new payload is refused is judged by its last good
        sample until then (``[multimodal_virt_scheduler] forget_after``).
        """
        self._decoder.retain_s = float(seconds)

    def read_batch(self, now: float,
                   pace: Optional[Callable[[], None]] = None
                   ) -> codec.SampleBatch:
        """Read, verify and decode every sample in bulk (the scheduler path).

        Each refused payload is logged once (rate-limited per key) with its
        reason; a key whose payload is refused keeps its last good sample.

        :param now: the time of the read (seconds since the epoch).
        :param pace: see :meth:`read_all`; also called between chunks of
            verification.
        :returns: a :class:`~multimodal_virt.metrics.codec.SampleBatch`.
        :raises StoreUnavailable: when the backend cannot be read at all.
        """
        batch = self._decoder.decode(self.read_all(pace=pace), now,
                                     pace=pace)
        for key, reason in batch.rejected.items():
            self._reject(key, reason)
        return batch

    def publish_aggregate(self, batch: codec.SampleBatch,
                          created: float) -> int:
        """Sign and store ``batch`` as the aggregate; returns its size.

        :param created: when ``batch`` was read (epoch seconds).
        :raises StoreUnavailable: when the backend cannot be written.
        :raises InvalidSample: when it is over the size readers accept.
        """
        payload = aggregate.encode(batch, self.keyring, created)
        if len(payload) > self.max_aggregate_bytes:
            raise exception.InvalidSample(
                'aggregate of %d nodes is %d bytes, over the %d byte limit'
                % (len(batch), len(payload), self.max_aggregate_bytes))
        self.write_aggregate(payload)
        return len(payload)

    def read_aggregate_batch(self, now: float, max_age: float
                             ) -> Optional[codec.SampleBatch]:
        """The aggregate's samples if one is stored, valid and fresh.

        ``None`` means "read every sample instead": no aggregate, one
        refused (logged, rate-limited), one with a row that fails a
        sample's checks here (logged), or one created more than
        ``max_age`` seconds before ``now`` (logged).

        :raises StoreUnavailable: when the backend cannot be read at all.
        """
        payload = self.read_aggregate()
        if payload is None:
            return None
        try:
            created, batch = aggregate.decode(
                payload, self.keyring, now, self.max_aggregate_bytes,
                self.max_batch_rows)
        except exception.InvalidSample as err:
            return self._ignore_aggregate(err)
        if now - created > max_age:
            return self._ignore_aggregate(
                'it was created %.0f s ago, more than aggregate_max_age = '
                '%.0f s (is multimodal-virt-aggregator running?)'
                % (now - created, max_age))
        if batch.rejected:
            # The aggregator checked every row as this reader does: a row
            # refused here (clocks apart, releases apart) must not make its
            # node read as one without a sample. Reading every sample
            # judges it as usual (its last good sample, if refused again).
            key, reason = next(iter(sorted(batch.rejected.items())))
            return self._ignore_aggregate(
                '%d of its rows are refused here, e.g. %r: %s'
                % (len(batch.rejected), key, reason))
        # A spoiled aggregate later must not let an older sample through.
        self._decoder.saw(batch.keys, batch.timestamps)
        return batch

    def _ignore_aggregate(self, reason):
        """Log (rate-limited) why the aggregate is not used; ``None``."""
        self._bad_payload_log.warning(
            'aggregate', 'Ignoring the aggregate in the %(store)s store, '
            'reading every sample instead: %(reason)s',
            {'store': type(self).__name__, 'reason': reason})
        return None

    def get_all(self) -> Dict[str, sample_mod.HostSample]:
        """Return ``{key: HostSample}`` of every valid sample (CLI, demo).

        :raises StoreUnavailable: when the backend cannot be read.
        """
        samples = {}
        for key, payload in self.read_all().items():
            sample = self._decode(key, payload)
            if sample is not None:
                samples[key] = sample
        return samples

    def get(self, host: str, nodename: Optional[str] = None
            ) -> Optional[sample_mod.HostSample]:
        """Return one compute node's verified sample, or ``None``."""
        key = sample_mod.sample_key(host, nodename)
        if not valid_key(key):
            return None
        payload = self.read(key)
        return None if payload is None else self._decode(key, payload)

    def delete(self, host: str, nodename: Optional[str] = None) -> None:
        """Forget a compute node's sample (no error if there is none)."""
        key = sample_mod.sample_key(host, nodename)
        if valid_key(key):
            self.delete_key(key)

    def close(self) -> None:
        """Release connections; the default has none."""

    def _decode(self, key, payload):
        """Verify and decode one payload, or log why not and return None."""
        try:
            return codec.decode_one(payload, key, self.keyring,
                                    self.max_bytes)
        except exception.InvalidSample as err:
            self._reject(key, err)
            return None

    def _reject(self, key, reason):
        self._bad_payload_log.warning(
            key, 'Ignoring the sample stored as %(key)r in the %(store)s '
            'store: %(reason)s',
            {'key': key, 'store': type(self).__name__, 'reason': reason})
