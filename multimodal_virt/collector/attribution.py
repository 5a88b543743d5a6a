"""Per-VM attribution: qemu process ids to Nova instance UUIDs.

Nova names a libvirt domain's UUID after the instance UUID, so the map is:

1. libvirt (read-only connection): every running domain's UUID and the pid
   libvirt recorded in ``<run dir>/<domain name>.pid``;
2. fallback, for pids libvirt does not know (or when libvirt is down): the
   ``-uuid`` argument of ``/proc/<pid>/cmdline``, which libvirt always
   passes to QEMU.

A pid that is a thread (vCPU thread ids, if a probe reports those) is first
mapped to its thread group. The libvirt map is refreshed at most once per
``ttl`` seconds; cmdline results are cached with the process start time, so
a recycled pid is never attributed to an old instance. Both caches are
bounded.
"""

import collections
import os
import time

from oslo_log import log as logging
from oslo_utils import uuidutils

from multimodal_virt import ratelimit

LOG = logging.getLogger(__name__)

DEFAULT_RUN_DIR = '/run/libvirt/qemu'
MAX_CACHED_PIDS = 4096
MAX_CMDLINE_BYTES = 256 * 1024


def _open_libvirt(uri):
    import libvirt  # optional dependency, only on compute hosts
    return libvirt.openReadOnly(uri)


def uuid_from_cmdline(raw):
    """Return the ``-uuid`` value of a NUL-separated qemu command line.

    :param raw: bytes of ``/proc/<pid>/cmdline``.
    :returns: the lower-case UUID string, or ``None``.
    """
    args = raw.split(b'\0')
    for index, arg in enumerate(args[:-1]):
        if arg in (b'-uuid', b'--uuid'):
            value = args[index + 1].decode('ascii', 'replace').lower()
            if uuidutils.is_uuid_like(value):
                return value
    return None


def _valid_pid(pid):
    return isinstance(pid, int) and not isinstance(pid, bool) and pid > 0


class Attributor(object):
    """Resolve qemu pids to instance UUIDs.

    :param uri: libvirt URI, or ``None`` to use ``/proc`` only.
    :param ttl: seconds a libvirt snapshot is reused (the collector
        interval).
    :param proc_root: procfs mount point.
    :param run_dir: libvirt's QEMU state directory holding ``<name>.pid``.
    :param connect: ``callable(uri)`` returning a libvirt connection
        (injectable for tests).
    :param clock: monotonic clock.
    """

    def __init__(self, uri='qemu:///system', ttl=10.0, proc_root='/proc',
                 run_dir=DEFAULT_RUN_DIR, connect=_open_libvirt,
                 clock=time.monotonic):
        self.uri = uri
        self.ttl = ttl
        self.proc_root = proc_root
        self.run_dir = run_dir
        self._connect = connect
        self._clock = clock
        self._conn = None
        self._libvirt_map = {}
        self._libvirt_at = None
        self._cmdline_cache = collections.OrderedDict()
        self._log = ratelimit.RateLimitedLog(LOG, interval=300.0)

    def resolve(self, pids):
        """Map the given pids to instance UUIDs.

        :param pids: iterable of process (or thread) ids.
        :returns: ``{pid: uuid}`` for the pids that belong to a VM.
        """
        libvirt_map = self._libvirt_pids()
        result = {}
        for pid in pids:
            if not _valid_pid(pid):
                continue
            uuid = libvirt_map.get(pid)
            if uuid is None:
                tgid = self._tgid(pid)
                uuid = libvirt_map.get(tgid) if tgid else None
                if uuid is None and tgid:
                    uuid = self._from_cmdline(tgid)
            if uuid:
                result[pid] = uuid
        return result

    def close(self):
        """Close the libvirt connection, if one is open."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception as err:  # libvirt.libvirtError and friends
                LOG.debug('Closing libvirt connection failed: %s', err)
            self._conn = None

    # libvirt -----------------------------------------------------------

    def _libvirt_pids(self):
        now = self._clock()
        if (self._libvirt_at is not None
                and now - self._libvirt_at < self.ttl):
            return self._libvirt_map
        self._libvirt_at = now
        if self.uri is None:
            return self._libvirt_map
        try:
            self._libvirt_map = self._query_libvirt()
        except Exception as err:  # ImportError, libvirtError, OSError
            self.close()
            self._libvirt_map = {}
            self._log.warning(
                'libvirt', 'Per-VM attribution cannot use libvirt at '
                '%(uri)s (%(err)s); falling back to /proc cmdlines',
                {'uri': self.uri, 'err': err})
        return self._libvirt_map

    def _query_libvirt(self):
        if self._conn is None:
            self._conn = self._connect(self.uri)
        mapping = {}
        for domain in self._conn.listAllDomains():
            if not domain.isActive():
                continue
            pid = self._read_pidfile(domain.name())
            if pid is not None:
                mapping[pid] = domain.UUIDString().lower()
            if len(mapping) >= MAX_CACHED_PIDS:
                break
        return mapping

    def _read_pidfile(self, name):
        if not name or '/' in name or name.startswith('.'):
            return None
        path = os.path.join(self.run_dir, name + '.pid')
        try:
            with open(path, encoding='ascii') as handle:
                value = handle.read(32).strip()
        except OSError:
            return None
        return int(value) if value.isdigit() else None

    # /proc -------------------------------------------------------------

    def _proc_path(self, pid, name):
        return os.path.join(self.proc_root, str(int(pid)), name)

    def _tgid(self, pid):
        """Thread group id of ``pid`` (itself for a process), or ``None``."""
        try:
            with open(self._proc_path(pid, 'status'),
                      encoding='ascii', errors='replace') as handle:
                for line in handle:
                    if line.startswith('Tgid:'):
                        value = line.split(':', 1)[1].strip()
                        return int(value) if value.isdigit() else None
        except OSError:
            return None
        return None

    def _start_time(self, pid):
        try:
            with open(self._proc_path(pid, 'stat'), 'rb') as handle:
                stat = handle.read(4096)
        except OSError:
            return None
        # The command name may hold spaces and ")"; fields follow the last.
        fields = stat.rpartition(b')')[2].split()
        return fields[19] if len(fields) > 19 else None

    def _from_cmdline(self, pid):
        started = self._start_time(pid)
        if started is None:
            return None
        cached = self._cmdline_cache.get(pid)
        if cached is not None and cached[0] == started:
            self._cmdline_cache.move_to_end(pid)
            return cached[1]
        try:
            with open(self._proc_path(pid, 'cmdline'), 'rb') as handle:
                raw = handle.read(MAX_CMDLINE_BYTES)
        except OSError:
            return None
        uuid = uuid_from_cmdline(raw)
        self._cmdline_cache[pid] = (started, uuid)
        self._cmdline_cache.move_to_end(pid)
        while len(self._cmdline_cache) > MAX_CACHED_PIDS:
            self._cmdline_cache.popitem(last=False)
        return uuid
