"""Per-VF GPU scheduling profiles in sysfs, reached without following links.

Two PF driver layouts are known.

Linux's xe driver (6.19) exposes, below its PF's device directory::

    sriov_admin/vf<N>/profile/{exec_quantum_ms,preempt_timeout_us,sched_priority}
    sriov_admin/vf<N>/device -> ../../../<VF address>

where ``vf<N>`` is the PF's ``virtfn<N-1>``. ``sched_priority`` reads like
``low [normal] high``.

The i915 SR-IOV variant (drm-tip ``i915_sriov_sysfs.c`` and
``gt/iov/intel_iov_sysfs.c``, shipped as Intel's i915-sriov-dkms) hangs an
``iov`` kobject under the PF's primary DRM minor, i.e. below the PF's
device directory (``/sys/class/drm/cardN`` links there)::

    drm/card<M>/iov/{pf,vf1..vf<totalvfs>}/
    drm/card<M>/iov/vf<N>/device -> ../../../../../<VF address>  (enabled VFs)
    drm/card<M>/iov/vf<N>/gt<K>/{exec_quantum_ms,preempt_timeout_us,...}

with one ``gt<K>`` per tile (``gt`` on older single-tile releases). It has
no ``sched_priority``: asking for one on an i915 PF is refused by name. A
profile write goes to every ``gt*`` of the VF. The older out-of-tree
``prelim_iov`` directory is not supported.

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

#: Every profile attribute name of any driver.
ATTRIBUTES = ('exec_quantum_ms', 'preempt_timeout_us', 'sched_priority')
#: PF driver -> the profile attributes its SR-IOV sysfs has.
DRIVER_ATTRIBUTES = {
    'xe': ATTRIBUTES,
    'i915': ('exec_quantum_ms', 'preempt_timeout_us'),
}
#: PF drivers with per-VF profiles (layouts above).
PROFILE_DRIVERS = tuple(DRIVER_ATTRIBUTES)
MAX_ATTR_BYTES = 256
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A directory opened to list its entries (O_PATH descriptors cannot).
_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CARD_RE = re.compile(r'^card[0-9]+$')
_GT_RE = re.compile(r'^gt[0-9]*$')
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


def _list_dir(parent_fd, name):
    """Entry names of ``name`` below ``parent_fd`` (not followed if a link)."""
    try:
        fd = os.open(name, _LIST_FLAGS, dir_fd=parent_fd)
    except OSError as err:
        raise ProfileError('cannot open directory %r without following '
                           'links: %s' % (name, err.strerror))
    try:
        return sorted(os.listdir(fd))
    finally:
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

    def _check_device_link(self, dir_fd, where, vf):
        linked = os.path.basename(_readlink(dir_fd, 'device'))
        if linked != str(vf):
            raise ProfileError('%s/device is %s, not %s'
                               % (where, linked, vf))

    @contextlib.contextmanager
    def _xe_dirs(self, pf_fd, pf, vf, number):
        where = 'sriov_admin/vf%d of %s' % (number, pf)
        with _walk(pf_fd, ('sriov_admin', 'vf%d' % number)) as admin_fd:
            self._check_device_link(admin_fd, where, vf)
            with _walk(admin_fd, ('profile',)) as profile_fd:
                yield [('', profile_fd)]

    def _i915_card(self, pf_fd, pf):
        """The ``drm/card<M>`` of ``pf`` that holds the ``iov`` tree."""
        cards = []
        try:
            names = _list_dir(pf_fd, 'drm')
        except ProfileError:
            names = []  # no DRM minor at all: reported below
        for name in names:
            if _CARD_RE.match(name):
                with _walk(pf_fd, ('drm', name)) as card_fd:
                    if 'iov' in _list_dir(card_fd, '.'):
                        cards.append(name)
        if len(cards) != 1:
            raise ProfileError(
                'PF %s is driven by i915 but %s: it needs the i915 SR-IOV '
                'sysfs (drm/card*/iov, i915-sriov-dkms or drm-tip)'
                % (pf, 'no drm/card*/iov exists' if not cards else
                   'several cards have an iov directory (%s)'
                   % ', '.join(cards)))
        return cards[0]

    @contextlib.contextmanager
    def _i915_dirs(self, pf_fd, pf, vf, number):
        card = self._i915_card(pf_fd, pf)
        where = 'drm/%s/iov/vf%d of %s' % (card, number, pf)
        with _walk(pf_fd, ('drm', card, 'iov', 'vf%d' % number)) as vf_fd:
            self._check_device_link(vf_fd, where, vf)
            gts = [n for n in _list_dir(vf_fd, '.') if _GT_RE.match(n)]
            if not gts:
                raise ProfileError('%s has no gt* directory' % where)
            with contextlib.ExitStack() as stack:
                yield [(gt, stack.enter_context(_walk(vf_fd, (gt,))))
                       for gt in gts]

    @contextlib.contextmanager
    def _profile_dirs(self, vf):
        """Yield ``(PF driver, [(label, profile dir fd)])`` of ``vf``."""
        layouts = {'xe': self._xe_dirs, 'i915': self._i915_dirs}
        with self._root() as root_fd:
            pf, pf_parts, number = self.locate(root_fd, vf)
            with _walk(root_fd, pf_parts) as pf_fd:
                driver = os.path.basename(_readlink(pf_fd, 'driver'))
                if driver not in layouts:
                    raise ProfileError(
                        'PF %s is driven by %s, which has no per-VF '
                        'scheduling profile (supported: %s)'
                        % (pf, driver, ', '.join(PROFILE_DRIVERS)))
                with layouts[driver](pf_fd, pf, vf, number) as dirs:
                    yield driver, dirs

    def read(self, vf):
        """Current profile of ``vf``: ``{attribute: text}``.

        Only the attributes its PF driver has. ``sched_priority`` is reduced
        to the selected choice. Where the tiles (i915 ``gt*``) disagree the
        text lists each, e.g. ``gt0:20,gt1:10``.
        """
        result = {}
        with self._profile_dirs(vf) as (driver, dirs):
            for name in DRIVER_ATTRIBUTES[driver]:
                values = []
                for label, fd in dirs:
                    text = self._read_small(fd, name).strip()
                    if name == 'sched_priority':
                        match = _CHOICE_RE.search(text)
                        text = match.group(1) if match else text
                    values.append((label, text))
                if len({text for _, text in values}) == 1:
                    result[name] = values[0][1]
                else:
                    result[name] = ','.join('%s:%s' % pair
                                            for pair in values)
        return result

    def write(self, vf, attributes, only_supported=False):
        """Write ``{attribute: text}`` (already validated) to ``vf``.

        :param only_supported: skip the attributes the PF driver does not
            have (restoring defaults) instead of refusing the whole write.
        :returns: the attributes written.
        :raises ProfileError: an unknown name, or (unless
            ``only_supported``) one the PF driver has not; nothing is
            written then.
        """
        unknown = sorted(set(attributes) - set(ATTRIBUTES))
        if unknown:
            raise ProfileError('unknown profile attribute(s) %s'
                               % ', '.join(map(repr, unknown)))
        with self._profile_dirs(vf) as (driver, dirs):
            has = DRIVER_ATTRIBUTES[driver]
            missing = sorted(set(attributes) - set(has))
            if missing and not only_supported:
                raise ProfileError(
                    'VF %s: its PF driver %s has no %s in its SR-IOV '
                    'sysfs (it has: %s)' % (vf, driver, ', '.join(missing),
                                            ', '.join(has)))
            todo = {k: v for k, v in attributes.items() if k in has}
            for name, value in todo.items():
                for label, fd in dirs:
                    self._write_one(fd, vf, label, name, value)
        return todo

    def _write_one(self, dir_fd, vf, label, name, value):
        what = '%s%s' % (label + '/' if label else '', name)
        try:
            out = os.open(name, _WRITE_FLAGS, dir_fd=dir_fd)
        except OSError as err:
            raise ProfileError('cannot open %s of %s: %s'
                               % (what, vf, err.strerror))
        try:
            os.write(out, value.encode('ascii') + b'\n')
        except OSError as err:
            raise ProfileError('%s refused %s=%s: %s'
                               % (vf, what, value, err.strerror))
        finally:
            os.close(out)
