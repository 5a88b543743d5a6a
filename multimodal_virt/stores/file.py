"""File stats store: one JSON document per host in a directory.

Writers replace a host's document atomically (write a temporary file in the
same directory, fsync, ``os.replace``), so a concurrent reader sees either
the old or the new document, never a torn one. Readers cache parsed samples
by ``(inode, mtime, size)``, so a refresh only parses what changed.
"""

import os
import tempfile

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.stores import base

LOG = logging.getLogger(__name__)
SUFFIX = '.json'


class FileStore(base.StatsStore):
    """``file`` driver: the embedded default."""

    def __init__(self, conf):
        super().__init__(conf)
        self.path = self.options.file_path
        self._cache = {}

    def _host_file(self, host):
        # HostSample validation already forbids "/" and whitespace; refuse
        # anything that could still escape the directory.
        if host in ('', '.', '..') or os.sep in host or host.startswith('.'):
            raise exception.InvalidSample('unsafe host name %r' % host)
        return os.path.join(self.path, host + SUFFIX)

    def put(self, sample):
        payload = sample.to_json(self.max_bytes)
        target = self._host_file(sample.key)
        try:
            os.makedirs(self.path, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix='.%s.' % sample.host,
                                       dir=self.path)
            try:
                with os.fdopen(fd, 'wb') as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
        except OSError as err:
            raise exception.StoreUnavailable(
                'cannot write %s: %s' % (target, err))

    def get_all(self):
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            LOG.debug('Stats directory %s does not exist yet', self.path)
            return {}
        except OSError as err:
            raise exception.StoreUnavailable(
                'cannot list %s: %s' % (self.path, err))
        samples = {}
        cache = {}
        for entry in entries:
            name = entry.name
            if name.startswith('.') or not name.endswith(SUFFIX):
                continue
            host = name[:-len(SUFFIX)]
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue  # deleted between scandir and stat
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._cache.get(host)
            if cached is not None and cached[0] == signature:
                sample = cached[1]
            else:
                sample = self._read(host, entry.path, stat.st_size)
            cache[host] = (signature, sample)
            if sample is not None:
                samples[host] = sample
        self._cache = cache
        return samples

    def _read(self, host, path, size):
        if size > self.max_bytes:
            self._bad_payload_log.warning(
                host, 'Ignoring %(path)s: %(size)d bytes, over the %(max)d '
                'byte limit', {'path': path, 'size': size,
                               'max': self.max_bytes})
            return None
        try:
            with open(path, 'rb') as handle:
                payload = handle.read(self.max_bytes + 1)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise exception.StoreUnavailable('cannot read %s: %s'
                                             % (path, err))
        sample = self._decode(host, payload)
        if sample is not None and sample.key != host:
            self._bad_payload_log.warning(
                host, 'Ignoring %(path)s: it holds a sample for node '
                '%(other)s', {'path': path, 'other': sample.key})
            return None
        return sample

    def delete(self, host):
        try:
            os.unlink(self._host_file(host))
        except FileNotFoundError:
            pass
        except OSError as err:
            raise exception.StoreUnavailable('cannot delete sample of %s: %s'
                                             % (host, err))
