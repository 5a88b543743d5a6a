"""Per-VF GPU scheduling profiles in sysfs, reached without following links.

Linux's xe driver (6.19) exposes, below its PF's device directory::

    sriov_admin/vf<N>/profile/{exec_quantum_ms,preempt_timeout_us,sched_priority}
    sriov_admin/vf<N>/device -> ../../../<VF address>

where ``vf<N>`` is the PF's ``virtfn<N-1>``. ``sched_priority`` reads like
``low [normal] high``.

Every path is opened component by component with ``openat`` and
``O_NOFOLLOW`` below a directory descriptor of the sysfs root, so a
symlink planted anywhere on the way (or swapped in between two steps) makes
the walk fail instead of leading elsewhere. sysfs itself uses symlinks for
``bus/pci/devices/<addr>``, ``physfn``, ``virtfnN`` and ``vfN/device``: those
are read with ``readlinkat`` and accepted only in their kernel shape
(relative, made of ``pciDDDD:BB`` and PCI address components), then walked
again without following anything.
"""

import contextlib
import os
import re

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address

ATTRIBUTES = ('exec_quantum_ms', 'preempt_timeout_us', 'sched_priority')
#: PF drivers with the sriov_admin layout above.
PROFILE_DRIVERS = ('xe',)
MAX_ATTR_BYTES = 256
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_BUS_RE = re.compile(r'^pci[0-9a-f]{4}:[0-9a-f]{2}$')
_CHOICE_RE = re.compile(r'\[([a-z]+)\]')


class ProfileError(exception.MultimodalVirtError):
    """A VF profile cannot be read or written (layout, link, value)."""


def _open_dir(parent_fd, name):
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as err:
        raise ProfileError('cannot open directory %r without following '
                           'links: %s' % (name, err.strerror))


@contextlib.contextmanager
def _walk(root_fd, components):
    """Yield a directory fd reached through ``components`` (no links)."""
    fds = []
    try:
        current = root_fd
        for name in components:
            if name in ('', '.', '..') or '/' in name:
                raise ProfileError('refusing path component %r' % (name,))
            current = _open_dir(current, name)
            fds.append(current)
        yield current
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _readlink(dir_fd, name):
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as err:
        raise ProfileError('cannot read link %r: %s' % (name, err.strerror))


def _sibling_address(target, what):
    """``../<address>`` (physfn, virtfnN) -> PciAddress."""
    parts = target.split('/')
    if len(parts) != 2 or parts[0] != '..':
        raise ProfileError('%s link %r is not ../<PCI address>'
                           % (what, target))
    try:
        return pci_address.PciAddress.parse(parts[1])
    except exception.InvalidPciAddress as err:
        raise ProfileError('%s link: %s' % (what, err))


class SysfsProfiles:
    """Read and write VF profiles below one sysfs root.

    :param root: absolute path of the sysfs mount (``/sys``); a privileged
        caller takes it from its own configuration, never from a request.
    """

    def __init__(self, root):
        if not isinstance(root, str) or not os.path.isabs(root):
            raise ProfileError('sysfs root must be an absolute path, got %r'
                               % (root,))
        self.root = root

    @contextlib.contextmanager
    def _root(self):
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError as err:
            raise ProfileError('cannot open sysfs root %s: %s'
                               % (self.root, err.strerror))
        try:
            yield fd
        finally:
            os.close(fd)

    def _device_components(self, root_fd, address):
        """``devices/.../<address>`` components from the bus link."""
        with _walk(root_fd, ('bus', 'pci', 'devices')) as bus_fd:
            target = _readlink(bus_fd, str(address))
        parts = target.split('/')
        if parts[:4] != ['..', '..', '..', 'devices'] or len(parts) < 6:
            raise ProfileError('bus/pci/devices/%s points to %r, not to '
                               '../../../devices/pci<domain>:<bus>/...'
                               % (address, target))
        if not _ROOT_BUS_RE.match(parts[4]):
            raise ProfileError('bus/pci/devices/%s: %r is not a PCI root'
                               % (address, parts[4]))
        for name in parts[5:]:
            try:
                pci_address.PciAddress.parse(name)
            except exception.InvalidPciAddress:
                raise ProfileError('bus/pci/devices/%s: %r is not a PCI '
                                   'address' % (address, name))
        if parts[-1] != str(address):
            raise ProfileError('bus/pci/devices/%s points to another '
                               'device (%r)' % (address, target))
        return parts[3:]

    def _read_small(self, dir_fd, name):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=dir_fd)
        except OSError as err:
            raise ProfileError('cannot open %r: %s' % (name, err.strerror))
        try:
            return os.read(fd, MAX_ATTR_BYTES).decode('ascii', 'replace')
        finally:
            os.close(fd)

    def locate(self, root_fd, vf):
        """Resolve a VF to ``(pf address, pf components, vf number N)``.

        :raises ProfileError: not a VF, or its PF lists it nowhere.
        """
        vf_parts = self._device_components(root_fd, vf)
        with _walk(root_fd, vf_parts) as vf_fd:
            try:
                pf = _sibling_address(_readlink(vf_fd, 'physfn'), 'physfn')
            except ProfileError as err:
                raise ProfileError('%s is not an SR-IOV VF (%s)' % (vf, err))
        pf_parts = self._device_components(root_fd, pf)
        with _walk(root_fd, pf_parts) as pf_fd:
            text = self._read_small(pf_fd, 'sriov_numvfs').strip()
            if not text.isdigit():
                raise ProfileError('PF %s sriov_numvfs is %r' % (pf, text))
            for index in range(int(text)):
                target = _readlink(pf_fd, 'virtfn%d' % index)
                if _sibling_address(target, 'virtfn') == vf:
                    return pf, pf_parts, index + 1
        raise ProfileError('VF %s is not listed by its PF %s' % (vf, pf))

    def vf_ids(self, vf):
        """``(vendor_id, product_id, pf address)`` read through the walk."""
        with self._root() as root_fd:
            pf, _, _ = self.locate(root_fd, vf)
            with _walk(root_fd, self._device_components(root_fd, vf)) as fd:
                return (self._read_small(fd, 'vendor').strip(),
                        self._read_small(fd, 'device').strip(), pf)

    @contextlib.contextmanager
    def _profile_dir(self, vf):
        with self._root() as root_fd:
            pf, pf_parts, number = self.locate(root_fd, vf)
            with _walk(root_fd, pf_parts) as pf_fd:
                driver = os.path.basename(_readlink(pf_fd, 'driver'))
                if driver not in PROFILE_DRIVERS:
                    raise ProfileError(
                        'PF %s is driven by %s, which has no per-VF '
                        'scheduling profile (supported: %s)'
                        % (pf, driver, ', '.join(PROFILE_DRIVERS)))
                vf_dir = ('sriov_admin', 'vf%d' % number)
                with _walk(pf_fd, vf_dir) as admin_fd:
                    linked = os.path.basename(_readlink(admin_fd, 'device'))
                    if linked != str(vf):
                        raise ProfileError(
                            'sriov_admin/vf%d/device of %s is %s, not %s'
                            % (number, pf, linked, vf))
                    with _walk(admin_fd, ('profile',)) as profile_fd:
                        yield profile_fd

    def read(self, vf):
        """Current profile of ``vf``: ``{attribute: text}``.

        ``sched_priority`` is reduced to the selected choice.
        """
        result = {}
        with self._profile_dir(vf) as fd:
            for name in ATTRIBUTES:
                text = self._read_small(fd, name).strip()
                if name == 'sched_priority':
                    match = _CHOICE_RE.search(text)
                    text = match.group(1) if match else text
                result[name] = text
        return result

    def write(self, vf, attributes):
        """Write ``{attribute: text}`` (already validated) to ``vf``."""
        with self._profile_dir(vf) as fd:
            for name, value in attributes.items():
                if name not in ATTRIBUTES:
                    raise ProfileError('unknown profile attribute %r'
                                       % (name,))
                try:
                    out = os.open(name, _WRITE_FLAGS, dir_fd=fd)
                except OSError as err:
                    raise ProfileError('cannot open %s of %s: %s'
                                       % (name, vf, err.strerror))
                try:
                    os.write(out, value.encode('ascii') + b'\n')
                except OSError as err:
                    raise ProfileError('%s refused %s=%s: %s'
                                       % (vf, name, value, err.strerror))
                finally:
                    os.close(out)
