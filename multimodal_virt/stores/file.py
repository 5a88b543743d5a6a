"""File stats store: one signed sample file per compute node in a directory.

Writers replace a node's file atomically (write a temporary file in the
same directory, fsync, ``os.replace``), so a concurrent reader sees either
the old or the new payload, never a torn one.

Anyone who can write the directory may be hostile, so readers never trust
an entry: a file is opened with ``O_NOFOLLOW | O_NONBLOCK`` (no symlink is
followed, a FIFO never blocks) and read only if ``fstat`` says it is a
regular file within the size limit. Every entry is isolated: one that
cannot be read is skipped with a rate-limited warning naming it, and the
others stay. A group- or world-writable directory is refused outright.
Unchanged files are not read again (cache by inode, mtime and size).
"""

import os
import stat

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.metrics import codec
from multimodal_virt import fileutils
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.stores import base

LOG = logging.getLogger(__name__)
SUFFIX = '.sample'
#: The aggregator's aggregate (not a sample: listing ignores it).
AGGREGATE_NAME = 'aggregate.mmva'
V1_SUFFIX = '.json'
DIR_MODE = 0o755
_OPEN_FLAGS = (os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK |
               getattr(os, 'O_CLOEXEC', 0) | getattr(os, 'O_NOCTTY', 0))

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_CLOEXEC', 0)


def _signature(st):
    """Inode, modification time and size of a file as one exact int."""
    return (st.st_ino << 128) | (st.st_mtime_ns << 64) | st.st_size


class FileStore(base.StatsStore):
    """``file`` driver: the embedded default."""

    def __init__(self, conf):
        super().__init__(conf)
        self.path = self.options.file_path
        # What the last read found, by key: the file's signature (inode,
        # mtime and size packed in one int) and its bytes. Plain ints and
        # bytes: a refresh of many files leaves nothing for the garbage
        # collector to scan.
        self._signatures = {}
        self._payloads = {}

    def _file(self, key):
        # valid_key() forbids "/", a leading "." and whitespace: no escape.
        if not base.valid_key(key):
            raise exception.InvalidSample('unsafe store key %r' % key[:80])
        return os.path.join(self.path, key + SUFFIX)

    def _check_directory(self, st):
        if not stat.S_ISDIR(st.st_mode):
            raise exception.StoreUnavailable(
                'stats store %s is not a directory' % self.path)
        if st.st_mode & 0o022:
            raise exception.StoreUnavailable(
                'stats store directory %s is group- or world-writable (mode '
                '%o): anyone could replace samples; run chmod 755 on it'
                % (self.path, stat.S_IMODE(st.st_mode)))

    def _ensure_directory(self):
        try:
            if not os.path.isdir(self.path):
                os.makedirs(self.path, mode=DIR_MODE, exist_ok=True)
                os.chmod(self.path, DIR_MODE)  # whatever the umask
            self._check_directory(os.stat(self.path))
        except OSError as err:
            raise exception.StoreUnavailable('cannot create %s: %s'
                                             % (self.path, err))

    def write(self, key, payload):
        self._write_file(self._file(key), payload)

    def _write_file(self, target, payload):
        self._ensure_directory()
        try:
            fileutils.write_bytes(target, payload)
        except OSError as err:
            raise exception.StoreUnavailable(
                'cannot write %s: %s' % (target, err))

    def read_all(self, pace=None):
        try:
            self._check_directory(os.stat(self.path))
            directory = os.open(self.path, _DIR_FLAGS)
        except FileNotFoundError:
            LOG.debug('Stats directory %s does not exist yet', self.path)
            return {}
        except OSError as err:
            raise exception.StoreUnavailable(
                'cannot list %s: %s' % (self.path, err))
        try:
            return self._read_entries(directory, pace)
        finally:
            os.close(directory)

    def _read_entries(self, directory, pace):
        try:
            names = os.listdir(directory)
        except OSError as err:
            raise exception.StoreUnavailable(
                'cannot list %s: %s' % (self.path, err))
        keys = []
        valid = sample_mod.KEY_RE.fullmatch
        cut = -len(SUFFIX)
        for name in names:
            if not name.endswith(SUFFIX) or name[0] == '.':
                if name.endswith(V1_SUFFIX) and name[0] != '.':
                    self._bad_payload_log.warning(
                        'v1', 'Ignoring %(path)r: a v1 sample; upgrade its '
                        'collector to publish signed v2 samples',
                        {'path': os.path.join(self.path, name)})
                continue
            if valid(name[:cut]) is None:
                self._skip(name, 'not a valid host[+node] name')
                continue
            keys.append(name[:cut])
        if len(keys) > self.max_hosts:
            self._skip(self.path, 'more than max_hosts=%d entries, the '
                       'rest ignored' % self.max_hosts)
            del keys[self.max_hosts:]
        payloads, signatures = {}, {}
        for chunk in codec.paced_chunks(keys, pace):
            self._read_chunk(directory, chunk, payloads, signatures)
        self._signatures, self._payloads = signatures, payloads
        return dict(payloads)

    def _read_chunk(self, directory, keys, payloads, signatures):
        """Read ``key.sample`` of each key into ``payloads``.

        The hot loop of a refresh: one ``open`` and ``fstat`` per file, and
        a ``read`` of those whose signature changed since the last read;
        any entry that fails is skipped and named.
        """
        old_signatures, old_payloads = self._signatures, self._payloads
        limit = self.max_bytes
        is_regular = stat.S_ISREG
        fstat, read, close = os.fstat, os.read, os.close
        for key in keys:
            name = key + SUFFIX
            try:
                fd = os.open(name, _OPEN_FLAGS, dir_fd=directory)
            except FileNotFoundError:
                continue  # deleted between listing and opening
            except OSError as err:  # ELOOP: a symlink; EACCES; ENXIO...
                self._skip(name, err.strerror or err)
                continue
            try:
                st = fstat(fd)
                if not is_regular(st.st_mode):
                    self._skip(name, 'not a regular file')
                    continue
                if st.st_size > limit:
                    self._skip(name, '%d bytes, over the %d byte limit'
                               % (st.st_size, limit))
                    continue
                signature = _signature(st)
                if old_signatures.get(key) == signature:
                    payload = old_payloads[key]
                else:
                    payload = read(fd, limit + 1)
            except OSError as err:
                self._skip(name, err.strerror or err)
                continue
            finally:
                close(fd)
            signatures[key] = signature
            payloads[key] = payload

    def write_aggregate(self, payload):
        self._write_file(os.path.join(self.path, AGGREGATE_NAME), payload)

    def read_aggregate(self):
        """The aggregate file, read with the same care as a sample."""
        limit = self.max_aggregate_bytes
        try:
            directory = os.open(self.path, _DIR_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise exception.StoreUnavailable(
                'cannot open %s: %s' % (self.path, err))
        try:
            # Refused as read_all refuses it: anyone could replace it.
            self._check_directory(os.fstat(directory))
            fd = os.open(AGGREGATE_NAME, _OPEN_FLAGS, dir_fd=directory)
        except FileNotFoundError:
            return None
        except exception.StoreUnavailable:
            raise
        except OSError as err:
            self._skip(AGGREGATE_NAME, err.strerror or err)
            return None
        finally:
            os.close(directory)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self._skip(AGGREGATE_NAME, 'not a regular file')
                return None
            if st.st_size > limit:
                self._skip(AGGREGATE_NAME, '%d bytes, over the %d byte '
                           'limit' % (st.st_size, limit))
                return None
            chunks, size = [], 0
            while size <= limit:
                chunk = os.read(fd, limit + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b''.join(chunks)
        except OSError as err:
            self._skip(AGGREGATE_NAME, err.strerror or err)
            return None
        finally:
            os.close(fd)

    def read(self, key):
        if not base.valid_key(key):
            return None
        try:
            directory = os.open(self.path, _DIR_FLAGS)
        except OSError:
            return None
        try:
            payloads = {}
            self._read_chunk(directory, [key], payloads, {})
            return payloads.get(key)
        finally:
            os.close(directory)

    def _skip(self, name, reason):
        path = os.path.join(self.path, name)
        self._bad_payload_log.warning(
            path, 'Skipping %(path)r in the file stats store: %(reason)s',
            {'path': path, 'reason': reason})

    def delete_key(self, key):
        try:
            os.unlink(self._file(key))
        except FileNotFoundError:
            pass
        except OSError as err:
            raise exception.StoreUnavailable('cannot delete sample of %s: %s'
                                             % (key, err))
