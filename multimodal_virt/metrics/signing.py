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
import struct

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


class _Mac(object):
    """HMAC-SHA256 with one key, its inner and outer pads hashed once.

    Exactly RFC 2104 (tests compare it with :func:`hmac.digest`); keeping
    the two keyed SHA-256 states and copying them saves the per-call key
    set-up that dominates ``hmac.digest`` on payloads this small.
    """

    def __init__(self, key):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b'\0')
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, body):
        inner = self._inner.copy()
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


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
        self._signing = _Mac(encoded[0]) if encoded else None
        self.signing_id = (key_id(encoded[0]) if encoded
                           else UNSIGNED_KEY_ID)
        #: ``{key id as little-endian u32: mac}`` for bulk verification.
        self.macs = {struct.unpack('<I', kid)[0]: _Mac(key)
                     for kid, key in self._verify.items()}
        #: the key id of unsigned samples, as a u32.
        self.unsigned_id = 0

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
        return self._signing(body)

    def check(self, key_id_bytes, body, tag):
        """Return ``None`` when ``tag`` authenticates ``body``, else why not.

        :param key_id_bytes: the key id the payload names.
        """
        if key_id_bytes == UNSIGNED_KEY_ID:
            if self.allow_unsigned:
                return None
            return 'unsigned sample (allow_unsigned is false)'
        mac = self.macs.get(struct.unpack('<I', key_id_bytes)[0])
        if mac is None:
            return 'signed with an unknown key %s' % key_id_bytes.hex()
        if not hmac.compare_digest(mac(body), tag):
            return 'bad signature'
        return None
