"""HMAC-SHA256 signing of host samples, with key rotation.

Every collector and scheduler shares ``[multimodal_virt_store]
signing_keys``: the first key signs, every key verifies, so a new key is
rolled out by prepending it everywhere and the old one removed later. A
sample names its key by a 4-byte fingerprint (the first bytes of
``SHA-256(key)``), so verifying costs one HMAC whatever the number of keys.

The MAC covers the whole payload, host and node name included: a sample
copied under another host's key no longer matches its name and is refused.
Whoever can write the store but lacks the key can only make a host's sample
unreadable, never change what it says.
"""

import hashlib
import hmac

from multimodal_virt import exception

TAG_BYTES = 32
KEY_ID_BYTES = 4
#: Key id of an unsigned sample (its tag is all zeros).
UNSIGNED_KEY_ID = b'\0' * KEY_ID_BYTES
MIN_KEY_CHARS = 16


def key_id(key):
    """The 4-byte fingerprint of a key (bytes)."""
    return hashlib.sha256(b'multimodal-virt sample key\0' + key).digest()[
        :KEY_ID_BYTES]


class Keyring(object):
    """Signing and verification keys.

    :param keys: list of secret strings; the first signs.
    :param allow_unsigned: accept unsigned samples and, with no key, write
        them (the single-host embedded demo).
    :raises StoreError: with no key and ``allow_unsigned`` false, or a key
        shorter than :data:`MIN_KEY_CHARS`.
    """

    def __init__(self, keys, allow_unsigned=False):
        keys = [k for k in (keys or ()) if k]
        if not keys and not allow_unsigned:
            raise exception.StoreError(
                'no sample signing key: set [multimodal_virt_store] '
                'signing_keys to the same secret on every collector and '
                'scheduler (e.g. the output of "openssl rand -hex 32"), or '
                'set allow_unsigned = true on a single-host deployment where '
                'nobody else can write the store')
        for key in keys:
            if len(key) < MIN_KEY_CHARS:
                raise exception.StoreError(
                    '[multimodal_virt_store] signing_keys: a key has %d '
                    'characters, at least %d are required'
                    % (len(key), MIN_KEY_CHARS))
        encoded = [k.encode('utf-8') for k in keys]
        self.allow_unsigned = bool(allow_unsigned)
        self._verify = {key_id(k): k for k in encoded}
        if len(self._verify) != len(encoded):
            raise exception.StoreError(
                '[multimodal_virt_store] signing_keys has duplicate keys')
        self._signing = encoded[0] if encoded else None
        self.signing_id = (key_id(self._signing) if self._signing
                           else UNSIGNED_KEY_ID)

    @classmethod
    def from_conf(cls, options):
        """Build from the ``[multimodal_virt_store]`` option group."""
        return cls(options.signing_keys, options.allow_unsigned)

    @property
    def signs(self):
        """True when published samples carry a MAC."""
        return self._signing is not None

    def tag(self, body):
        """The MAC of ``body`` (zeros when unsigned)."""
        if self._signing is None:
            return b'\0' * TAG_BYTES
        return hmac.digest(self._signing, body, 'sha256')

    def check(self, key_id_bytes, body, tag):
        """Return ``None`` when ``tag`` authenticates ``body``, else why not.

        :param key_id_bytes: the key id the payload names.
        """
        if key_id_bytes == UNSIGNED_KEY_ID:
            if self.allow_unsigned:
                return None
            return 'unsigned sample (allow_unsigned is false)'
        key = self._verify.get(key_id_bytes)
        if key is None:
            return 'signed with an unknown key %s' % key_id_bytes.hex()
        if not hmac.compare_digest(hmac.digest(key, body, 'sha256'), tag):
            return 'bad signature'
        return None
