"""Discover SR-IOV GPU and accelerator functions by walking sysfs.

The sysfs root is injectable, so tests and benchmarks walk recorded trees.
Every path below the root is built from a validated
:class:`~multimodal_virt.pci.address.PciAddress` or a validated integer;
names read from the tree (directory entries, link targets) are parsed into
those value objects before they are used in a path.
"""

import os

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import device

LOG = logging.getLogger(__name__)

DEFAULT_CLASSES = (0x03, 0x12)
# PCIe SR-IOV allows at most 65535 VFs per PF; Linux caps far lower.
MAX_VFS = 0xFFFF
_MISSING = object()


class SysfsReader:
    """Read PCI device attributes below one sysfs root.

    :param root: absolute path of the sysfs mount (``/sys`` on a host).
    """

    def __init__(self, root='/sys'):
        if not isinstance(root, str) or not os.path.isabs(root):
            raise exception.PciDiscoveryError(
                'sysfs root must be an absolute path, got %r' % (root,))
        self.root = root
        self.devices_dir = os.path.join(root, 'bus', 'pci', 'devices')

    def device_path(self, address, *parts):
        """Path of ``address``'s sysfs directory (or a file below it).

        :param address: a :class:`PciAddress`.
        :param parts: fixed attribute names below the device directory.
        """
        if not isinstance(address, pci_address.PciAddress):
            raise exception.PciDiscoveryError(
                'expected a PciAddress, got %r' % (address,))
        return os.path.join(self.devices_dir, str(address), *parts)

    def addresses(self):
        """Every PCI function listed in ``bus/pci/devices``, sorted.

        An entry that is not a PCI address is skipped with a warning.

        :raises PciDiscoveryError: the directory is unreadable.
        """
        try:
            names = os.listdir(self.devices_dir)
        except OSError as err:
            raise exception.PciDiscoveryError(
                'cannot list PCI devices in %s: %s' % (self.devices_dir, err))
        result = []
        for name in names:
            try:
                result.append(pci_address.PciAddress.parse(name))
            except exception.InvalidPciAddress as err:
                LOG.warning('Skipping unexpected entry %(name)r in %(dir)s: '
                            '%(err)s', {'name': name,
                                        'dir': self.devices_dir, 'err': err})
        return sorted(result)

    def read_text(self, address, attr, default=_MISSING):
        """Stripped text of attribute ``attr`` of ``address``."""
        path = self.device_path(address, attr)
        try:
            with open(path, encoding='ascii') as handle:
                return handle.read().strip()
        except (OSError, UnicodeDecodeError) as err:
            if default is not _MISSING:
                return default
            raise exception.PciDiscoveryError(
                'cannot read %s: %s' % (path, err))

    def read_int(self, address, attr, base=10, default=_MISSING):
        """Integer attribute (``base`` 16 accepts a ``0x`` prefix)."""
        text = self.read_text(address, attr, default=None)
        if text is None:
            if default is not _MISSING:
                return default
            raise exception.PciDiscoveryError(
                'missing attribute %s' % self.device_path(address, attr))
        try:
            return int(text, base)
        except ValueError:
            raise exception.PciDiscoveryError(
                '%s must hold a base-%d integer, got %r'
                % (self.device_path(address, attr), base, text[:40]))

    def link_name(self, address, attr):
        """Last component of the symlink ``attr`` of ``address``, or None."""
        path = self.device_path(address, attr)
        try:
            return os.path.basename(os.readlink(path))
        except OSError:
            return None

    def link_address(self, address, attr):
        """PCI address a link such as ``virtfn3`` or ``physfn`` points to."""
        name = self.link_name(address, attr)
        if name is None:
            return None
        try:
            return pci_address.PciAddress.parse(name)
        except exception.InvalidPciAddress as err:
            raise exception.PciDiscoveryError(
                '%s does not point to a PCI function: %s'
                % (self.device_path(address, attr), err))

    def numa_node(self, address):
        """NUMA node of ``address``; None when the kernel reports -1."""
        node = self.read_int(address, 'numa_node', default=-1)
        return node if node >= 0 else None

    def iommu_group(self, address):
        """IOMMU group number, or None without an IOMMU."""
        name = self.link_name(address, 'iommu_group')
        if name is None:
            return None
        if not name.isdigit():
            raise exception.PciDiscoveryError(
                '%s must point to a numbered IOMMU group, got %r'
                % (self.device_path(address, 'iommu_group'), name))
        return int(name)


def _parse_classes(classes):
    result = set()
    for value in classes:
        try:
            number = int(value, 16) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            number = -1
        if not 0 <= number <= 0xFF:
            raise exception.PciDiscoveryError(
                'PCI base class must be a byte such as 0x03, got %r'
                % (value,))
        result.add(number)
    return frozenset(result)


def _read_vf(reader, pf_address, index, numa_node):
    attr = 'virtfn%d' % index
    vf_address = reader.link_address(pf_address, attr)
    if vf_address is None:
        raise exception.PciDiscoveryError(
            'PF %s has sriov_numvfs > %d but no %s link'
            % (pf_address, index, attr))
    back = reader.link_address(vf_address, 'physfn')
    if back is not None and back != pf_address:
        raise exception.PciDiscoveryError(
            'VF %s is virtfn%d of %s but its physfn is %s'
            % (vf_address, index, pf_address, back))
    vf_numa = reader.numa_node(vf_address)
    return device.VirtualFunction(
        address=vf_address, parent=pf_address, index=index,
        vendor_id=reader.read_text(vf_address, 'vendor'),
        product_id=reader.read_text(vf_address, 'device'),
        numa_node=vf_numa if vf_numa is not None else numa_node,
        driver=reader.link_name(vf_address, 'driver'),
        iommu_group=reader.iommu_group(vf_address))


def read_physical_function(reader, address):
    """Build the :class:`PhysicalFunction` at ``address`` with its VFs.

    :param reader: a :class:`SysfsReader`.
    :param address: the PF's :class:`PciAddress`.
    :returns: the PF, or None when ``address`` has no SR-IOV capability.
    """
    total = reader.read_int(address, 'sriov_totalvfs', default=None)
    if not total:
        return None
    num = reader.read_int(address, 'sriov_numvfs', default=0)
    if not 0 <= num <= min(total, MAX_VFS):
        raise exception.PciDiscoveryError(
            'PF %s: sriov_numvfs %d must be within 0..sriov_totalvfs %d'
            % (address, num, total))
    numa_node = reader.numa_node(address)
    vfs = []
    for index in range(num):
        try:
            vfs.append(_read_vf(reader, address, index, numa_node))
        except exception.MultimodalVirtError as err:
            LOG.warning('Skipping VF %(index)d of PF %(pf)s: %(err)s',
                        {'index': index, 'pf': address, 'err': err})
    return device.PhysicalFunction(
        address=address,
        vendor_id=reader.read_text(address, 'vendor'),
        product_id=reader.read_text(address, 'device'),
        class_code=reader.read_int(address, 'class', base=16),
        total_vfs=total, num_vfs=num, vfs=tuple(vfs), numa_node=numa_node,
        driver=reader.link_name(address, 'driver'),
        iommu_group=reader.iommu_group(address))


def _discover_one(reader, address, wanted):
    class_code = reader.read_int(address, 'class', base=16, default=None)
    if class_code is None or (class_code >> 16) not in wanted:
        return None
    if reader.link_name(address, 'physfn') is not None:
        return None
    return read_physical_function(reader, address)


def discover(root='/sys', classes=DEFAULT_CLASSES):
    """Find SR-IOV physical functions of the given PCI base classes.

    VFs themselves (functions with a ``physfn`` link) are reported under
    their PF, never as PFs.

    :param root: sysfs root (absolute path).
    :param classes: PCI base classes, ints or hex strings (``'0x03'``).
    A device with a malformed or unreadable attribute (a non-hex ``class``,
    an empty file, a dangling link) is skipped with a warning naming the
    file and the value; the rest of the host is still discovered.

    :returns: list of :class:`PhysicalFunction`, sorted by address.
    :raises PciDiscoveryError: the root or ``bus/pci/devices`` itself is
        unreadable, or ``classes`` is malformed.
    """
    wanted = _parse_classes(classes)
    reader = SysfsReader(root)
    found = []
    for address in reader.addresses():
        try:
            pf = _discover_one(reader, address, wanted)
        except exception.MultimodalVirtError as err:
            LOG.warning('Skipping PCI device %(address)s: %(err)s',
                        {'address': address, 'err': err})
            continue
        if pf is not None:
            found.append(pf)
    LOG.debug('Discovered %d SR-IOV PFs with %d VFs under %s',
              len(found), sum(len(pf.vfs) for pf in found), root)
    return found
