"""Durable claim ledger for SR-IOV virtual functions.

One JSON document records, per VF :class:`PciAddress`, Nova's device state
(``available``, ``claimed``, ``allocated``, ``removed``) and the instance
UUID that holds it. Every change is one transaction:

1. take an exclusive ``flock`` on ``<path>.lock`` (processes and threads
   never interleave; the kernel drops the lock when a holder dies),
2. read the current document,
3. change it in memory,
4. write a temporary file in the same directory, ``fsync`` it,
   ``os.replace`` it over the ledger and ``fsync`` the directory.

A crash at any point (``kill -9`` included) therefore leaves either the old
or the new document, never a torn one, and a VF can only be handed out by
the transaction that saw it ``available``.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import uuid as uuid_lib

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address

LOG = logging.getLogger(__name__)

AVAILABLE = 'available'
CLAIMED = 'claimed'
ALLOCATED = 'allocated'
REMOVED = 'removed'
STATES = (AVAILABLE, CLAIMED, ALLOCATED, REMOVED)
OWNED_STATES = (CLAIMED, ALLOCATED)

NUMA_PREFERRED = 'preferred'
NUMA_REQUIRED = 'required'
NUMA_POLICIES = (NUMA_PREFERRED, NUMA_REQUIRED)

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class VfRecord:
    """One VF as the ledger knows it."""

    address: pci_address.PciAddress
    state: str
    numa_node: object = None
    parent: object = None
    instance_uuid: object = None
    present: bool = True

    def to_json(self):
        """Return the JSON form (the address is the key, so not included)."""
        return {'state': self.state, 'numa_node': self.numa_node,
                'parent': str(self.parent) if self.parent else None,
                'instance_uuid': self.instance_uuid,
                'present': self.present}

    @classmethod
    def from_json(cls, key, value, path):
        """Parse one ledger entry, naming ``path`` and ``key`` on error."""
        try:
            address = pci_address.PciAddress.parse(key)
            state = value['state']
            if state not in STATES:
                raise ValueError('state %r is not one of %s'
                                 % (state, ', '.join(STATES)))
            numa = value.get('numa_node')
            if numa is not None and (isinstance(numa, bool)
                                     or not isinstance(numa, int)):
                raise ValueError('numa_node %r is not an integer' % (numa,))
            parent = value.get('parent')
            owner = value.get('instance_uuid')
            if (state in OWNED_STATES) != (owner is not None):
                raise ValueError('state %s with instance_uuid %r'
                                 % (state, owner))
            return cls(address=address, state=state, numa_node=numa,
                       parent=(pci_address.PciAddress.parse(parent)
                               if parent else None),
                       instance_uuid=(normalize_uuid(owner)
                                      if owner else None),
                       present=bool(value.get('present', True)))
        except (KeyError, TypeError, ValueError) as err:
            raise exception.ClaimError(
                'ledger %s: bad entry %r: %s' % (path, key, err))


@dataclasses.dataclass
class ReconcileReport:
    """What :meth:`Ledger.reconcile` changed, as lists of addresses."""

    adopted: list = dataclasses.field(default_factory=list)
    moved: list = dataclasses.field(default_factory=list)
    promoted: list = dataclasses.field(default_factory=list)
    freed: list = dataclasses.field(default_factory=list)
    pending: list = dataclasses.field(default_factory=list)
    unknown: list = dataclasses.field(default_factory=list)

    def changed(self):
        """True when the ledger was rewritten."""
        return bool(self.adopted or self.moved or self.promoted or self.freed)


def normalize_uuid(value):
    """Return ``value`` as a canonical lower-case UUID string.

    :raises ClaimError: naming the value when it is not a UUID.
    """
    try:
        return str(uuid_lib.UUID(str(value)))
    except (TypeError, ValueError):
        raise exception.ClaimError(
            'instance uuid %r is not a UUID (expected e.g. '
            '6f1b8c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b)' % (value,))


class Ledger(object):
    """The VF claim ledger stored at ``path``.

    :param path: absolute path of the JSON document; its directory must
        exist. The lock file is ``path + '.lock'``.
    """

    def __init__(self, path):
        if not isinstance(path, str) or not os.path.isabs(path):
            raise exception.ClaimError(
                'ledger path %r must be an absolute file path' % (path,))
        self.path = os.path.normpath(path)
        self.lock_path = self.path + '.lock'
        self._dir = os.path.dirname(self.path)
        self._tmp_prefix = '.%s.' % os.path.basename(self.path)

    # -- storage ---------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        if not os.path.isdir(self._dir):
            raise exception.ClaimError(
                'ledger directory %s does not exist' % self._dir)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the only descriptor drops the flock

    def _remove_stale_temps(self):
        # Only called with the lock held: no writer is mid-write, so any
        # temporary file is the leftover of a writer that died.
        for name in os.listdir(self._dir):
            if name.startswith(self._tmp_prefix) and name.endswith('.tmp'):
                LOG.info('Removing leftover ledger temporary file %s from '
                         'an interrupted write', name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self._dir, name))

    def _read(self):
        try:
            with open(self.path, 'rb') as handle:
                raw = handle.read()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
        except ValueError as err:
            raise exception.ClaimError(
                'ledger %s is not valid JSON (%s); refusing to guess which '
                'VFs are free' % (self.path, err))
        if not isinstance(doc, dict) or doc.get('version') != FORMAT_VERSION \
                or not isinstance(doc.get('devices'), dict):
            raise exception.ClaimError(
                'ledger %s: expected {"version": %d, "devices": {...}}'
                % (self.path, FORMAT_VERSION))
        records = {}
        for key, value in doc['devices'].items():
            record = VfRecord.from_json(key, value, self.path)
            records[record.address] = record
        return records

    def _write(self, records):
        doc = {'version': FORMAT_VERSION,
               'devices': {str(addr): records[addr].to_json()
                           for addr in sorted(records)}}
        data = json.dumps(doc, indent=1, sort_keys=True).encode('utf-8')
        tmp = os.path.join(self._dir, '%s%d.tmp' % (self._tmp_prefix,
                                                    os.getpid()))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def _transaction(self):
        with self._locked():
            self._remove_stale_temps()
            records = self._read()
            before = dict(records)
            yield records
            if records != before:
                self._write(records)

    # -- queries ---------------------------------------------------------

    def devices(self):
        """Return every :class:`VfRecord`, sorted by address."""
        with self._locked():
            records = self._read()
        return [records[addr] for addr in sorted(records)]

    def instance_devices(self, instance_uuid):
        """Return the VF addresses held (claimed or allocated) by an instance.

        :param instance_uuid: Nova instance UUID.
        :returns: sorted list of :class:`PciAddress`.
        """
        owner = normalize_uuid(instance_uuid)
        return [rec.address for rec in self.devices()
                if rec.instance_uuid == owner]

    # -- inventory -------------------------------------------------------

    def sync_inventory(self, vfs):
        """Make the ledger's device list match the VFs found on the host.

        New VFs become ``available``; VFs that vanished become ``removed``
        when free, and stay owned (with a warning) when an instance holds
        them; VFs that came back become ``available`` again.

        :param vfs: iterable of ``(PciAddress, numa_node or None,
            parent PciAddress or None)``.
        :returns: dict ``{'added': [...], 'removed': [...]}`` of addresses.
        """
        found = {}
        for addr, numa, parent in vfs:
            if not isinstance(addr, pci_address.PciAddress):
                raise exception.ClaimError(
                    'VF address %r must be a PciAddress' % (addr,))
            found[addr] = (numa, parent)
        added, removed = [], []
        with self._transaction() as records:
            for addr, (numa, parent) in found.items():
                rec = records.get(addr)
                if rec is None:
                    records[addr] = VfRecord(addr, AVAILABLE, numa, parent)
                    added.append(addr)
                    continue
                state = AVAILABLE if rec.state == REMOVED else rec.state
                records[addr] = dataclasses.replace(
                    rec, state=state, numa_node=numa, parent=parent,
                    present=True)
            for addr, rec in records.items():
                if addr in found or not rec.present:
                    continue
                if rec.state in OWNED_STATES:
                    LOG.warning('VF %s vanished from the host while %s by '
                                'instance %s; keeping the claim',
                                addr, rec.state, rec.instance_uuid)
                    records[addr] = dataclasses.replace(rec, present=False)
                else:
                    records[addr] = dataclasses.replace(
                        rec, state=REMOVED, present=False)
                removed.append(addr)
        return {'added': sorted(added), 'removed': sorted(removed)}

    # -- claims ----------------------------------------------------------

    def claim(self, instance_uuid, count=1, numa_node=None,
              numa_policy=NUMA_PREFERRED):
        """Claim ``count`` available VFs for an instance.

        Idempotent: an instance that already holds exactly ``count`` VFs
        gets the same VFs back and nothing is written.

        :param instance_uuid: Nova instance UUID (the libvirt domain UUID).
        :param count: number of VFs, at least 1.
        :param numa_node: NUMA node the guest runs on, or None.
        :param numa_policy: ``required`` (only VFs on ``numa_node``) or
            ``preferred`` (``numa_node`` first, then any node). Without a
            ``numa_node``, all VFs come from one node when one node can
            serve the whole request.
        :returns: sorted list of claimed :class:`PciAddress`.
        :raises ClaimError: bad input, or not enough free VFs.
        """
        owner = normalize_uuid(instance_uuid)
        if isinstance(count, bool) or not isinstance(count, int) \
                or count < 1:
            raise exception.ClaimError(
                'VF count must be an integer >= 1, got %r' % (count,))
        if numa_policy not in NUMA_POLICIES:
            raise exception.ClaimError(
                'numa_policy %r must be one of %s'
                % (numa_policy, ', '.join(NUMA_POLICIES)))
        if numa_node is not None and (isinstance(numa_node, bool)
                                      or not isinstance(numa_node, int)
                                      or numa_node < 0):
            raise exception.ClaimError(
                'numa_node must be a non-negative integer or None, got %r'
                % (numa_node,))
        with self._transaction() as records:
            held = sorted(a for a, r in records.items()
                          if r.instance_uuid == owner)
            if held:
                if len(held) != count:
                    raise exception.ClaimError(
                        'instance %s already holds %d VF(s) %s; asked for %d'
                        % (owner, len(held), [str(a) for a in held], count))
                return held
            free = [r for r in records.values()
                    if r.state == AVAILABLE and r.present]
            chosen = select_vfs(free, count, numa_node, numa_policy)
            for addr in chosen:
                records[addr] = dataclasses.replace(
                    records[addr], state=CLAIMED, instance_uuid=owner)
        LOG.info('Claimed VF(s) %s for instance %s',
                 ', '.join(str(a) for a in chosen), owner)
        return chosen

    def allocate(self, instance_uuid):
        """Mark an instance's claimed VFs ``allocated`` (domain defined).

        :returns: sorted addresses now allocated to the instance.
        :raises ClaimError: when the instance holds no VF.
        """
        owner = normalize_uuid(instance_uuid)
        with self._transaction() as records:
            held = sorted(a for a, r in records.items()
                          if r.instance_uuid == owner)
            if not held:
                raise exception.ClaimError(
                    'instance %s holds no VF to allocate' % owner)
            for addr in held:
                records[addr] = dataclasses.replace(records[addr],
                                                    state=ALLOCATED)
        return held

    def release(self, instance_uuid):
        """Free every VF an instance holds (idempotent).

        :returns: sorted addresses that were released (may be empty).
        """
        owner = normalize_uuid(instance_uuid)
        with self._transaction() as records:
            held = sorted(a for a, r in records.items()
                          if r.instance_uuid == owner)
            for addr in held:
                rec = records[addr]
                records[addr] = dataclasses.replace(
                    rec, state=AVAILABLE if rec.present else REMOVED,
                    instance_uuid=None)
        if held:
            LOG.info('Released VF(s) %s of instance %s',
                     ', '.join(str(a) for a in held), owner)
        return held

    def reconcile(self, owners):
        """Make the ledger agree with the VFs libvirt domains really hold.

        libvirt wins: a VF in a domain is ``allocated`` to that domain's
        UUID; an ``allocated`` VF no domain holds is freed. ``claimed`` VFs
        without a domain are kept (a claim precedes the domain define).
        Every correction is logged.

        :param owners: mapping ``{PciAddress: instance uuid}`` from the
            domains' ``<hostdev>`` elements.
        :returns: :class:`ReconcileReport`.
        """
        wanted = {addr: normalize_uuid(uuid) for addr, uuid in owners.items()}
        report = ReconcileReport()
        with self._transaction() as records:
            for addr, owner in sorted(wanted.items()):
                rec = records.get(addr)
                if rec is None:
                    report.unknown.append(addr)
                    continue
                if rec.state == ALLOCATED and rec.instance_uuid == owner:
                    continue
                if rec.instance_uuid == owner:
                    report.promoted.append(addr)
                elif rec.instance_uuid is None:
                    LOG.warning('VF %s is in domain %s but the ledger had '
                                'it %s; adopting it', addr, owner, rec.state)
                    report.adopted.append(addr)
                else:
                    LOG.warning('VF %s is in domain %s but the ledger gave '
                                'it to %s (%s); moving it to the domain',
                                addr, owner, rec.instance_uuid, rec.state)
                    report.moved.append(addr)
                records[addr] = dataclasses.replace(
                    rec, state=ALLOCATED, instance_uuid=owner)
            for addr, rec in sorted(records.items()):
                if addr in wanted or rec.instance_uuid is None:
                    continue
                if rec.state == CLAIMED:
                    report.pending.append(addr)
                    continue
                LOG.warning('VF %s was allocated to %s but no domain holds '
                            'it; freeing it', addr, rec.instance_uuid)
                records[addr] = dataclasses.replace(
                    rec, state=AVAILABLE if rec.present else REMOVED,
                    instance_uuid=None)
                report.freed.append(addr)
        if report.pending:
            LOG.info('Keeping %d claimed VF(s) with no domain yet: %s',
                     len(report.pending),
                     ', '.join(str(a) for a in report.pending))
        if report.unknown:
            LOG.debug('Domains hold PCI devices the ledger does not track: '
                      '%s', ', '.join(str(a) for a in report.unknown))
        return report


def select_vfs(free, count, numa_node=None, numa_policy=NUMA_PREFERRED):
    """Choose ``count`` VFs from ``free`` records (pure function).

    :param free: available :class:`VfRecord` objects.
    :param count: how many to choose.
    :param numa_node: wanted NUMA node or None.
    :param numa_policy: ``required`` or ``preferred``.
    :returns: sorted list of :class:`PciAddress`.
    :raises ClaimError: when too few VFs qualify.
    """
    by_node = {}
    for rec in free:
        by_node.setdefault(rec.numa_node, []).append(rec.address)
    for addrs in by_node.values():
        addrs.sort()

    def node_key(node):
        return (node is None, -1 if node is None else node)

    if numa_node is not None:
        ordered = list(by_node.get(numa_node, []))
        if numa_policy == NUMA_PREFERRED:
            for node in sorted(by_node, key=node_key):
                if node != numa_node:
                    ordered.extend(by_node[node])
    else:
        # Best fit: the smallest node that serves the whole request keeps
        # the request on one node and large nodes free for large requests.
        fitting = [n for n in by_node if len(by_node[n]) >= count]
        if fitting:
            best = min(fitting, key=lambda n: (len(by_node[n]),
                                               node_key(n)))
            ordered = by_node[best]
        else:
            ordered = [a for n in sorted(by_node, key=node_key)
                       for a in by_node[n]]
    if len(ordered) < count:
        where = ('on NUMA node %d' % numa_node
                 if numa_node is not None and numa_policy == NUMA_REQUIRED
                 else 'on this host')
        raise exception.ClaimError(
            'asked for %d VF(s) but only %d are available %s'
            % (count, len(ordered), where))
    return sorted(ordered[:count])
