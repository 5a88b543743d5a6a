"""In-memory stores for the scheduler's unit tests.

They sign and decode through the real codec (:class:`BatchDecoder`), so
retention of vanished or refused samples behaves as in a real store.
"""

from multimodal_virt.metrics import codec
from multimodal_virt.metrics import signing
from tests import base


class MemoryStore(object):
    """``{key: HostSample}`` served as signed payloads."""

    def __init__(self, samples_by_host=None, error=None):
        self.samples = samples_by_host or {}
        self.error = error
        self.reads = 0
        self._keyring = signing.Keyring([base.TEST_SIGNING_KEY])
        self._decoder = codec.BatchDecoder(self._keyring)

    def get_all(self):
        self.reads += 1
        if self.error:
            raise self.error
        return dict(self.samples)

    def forget_history(self):
        """Drop the decoder's memory, as a freshly started scheduler has."""
        self._decoder = codec.BatchDecoder(self._keyring,
                                           retain_s=self._decoder.retain_s)

    def retain_vanished(self, seconds):
        self._decoder.retain_s = float(seconds)

    def read_aggregate_batch(self, now, max_age):
        return None  # no aggregator

    def read_batch(self, now, pace=None):
        payloads = {key: codec.encode(sample, self._keyring)
                    for key, sample in self.get_all().items()}
        return self._decoder.decode(payloads, now, pace=pace)
