"""SR-IOV physical and virtual functions as frozen value objects.

Ids are normalised once, at construction, to Nova's form: four lower-case
hex digits without ``0x`` (``10de``), so pools and generated config compare
equal to what Nova's ``PciDevice`` objects carry.
"""

import dataclasses
import re

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address

# nova.objects.fields.PciDeviceType values.
DEV_TYPE_VF = 'type-VF'
DEV_TYPE_PF = 'type-PF'

_ID_RE = re.compile(r'^(?:0[xX])?([0-9a-fA-F]{1,4})$')

# Well-known PCI vendor ids, for readable alias names.
VENDOR_NAMES = {'10de': 'nvidia', '1002': 'amd', '8086': 'intel'}


def normalize_id(value, name):
    """Return a PCI vendor/product id as four lower-case hex digits.

    :param value: ``'0x10DE'``, ``'10de'`` or an int 0..0xffff.
    :param name: what the id is (for the error message).
    :returns: e.g. ``'10de'``.
    :raises PciDiscoveryError: naming ``name`` and the bad value.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 0xFFFF:
            return '%04x' % value
    elif isinstance(value, str):
        match = _ID_RE.match(value.strip())
        if match:
            return '%04x' % int(match.group(1), 16)
    raise exception.PciDiscoveryError(
        '%s must be a 16-bit hex PCI id such as 0x10de, got %r'
        % (name, value))


def vendor_name(vendor_id):
    """Short lower-case vendor name, or the hex id when unknown."""
    return VENDOR_NAMES.get(vendor_id, vendor_id)


def _check_optional_int(name, value, minimum=0):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or (
            value < minimum):
        raise exception.PciDiscoveryError(
            '%s must be an integer >= %d or None, got %r'
            % (name, minimum, value))


def _check_address(name, value):
    if not isinstance(value, pci_address.PciAddress):
        raise exception.PciDiscoveryError(
            '%s must be a PciAddress, got %r' % (name, value))


@dataclasses.dataclass(frozen=True)
class VirtualFunction:
    """One SR-IOV virtual function (``virtfn<index>`` of its PF)."""

    address: pci_address.PciAddress
    parent: pci_address.PciAddress
    index: int
    vendor_id: str
    product_id: str
    numa_node: int | None = None
    driver: str | None = None
    iommu_group: int | None = None

    dev_type = DEV_TYPE_VF

    def __post_init__(self):
        _check_address('VF address', self.address)
        _check_address('VF parent address', self.parent)
        _check_optional_int('VF index', self.index)
        _check_optional_int('VF numa_node', self.numa_node)
        _check_optional_int('VF iommu_group', self.iommu_group)
        object.__setattr__(self, 'vendor_id',
                           normalize_id(self.vendor_id, 'VF vendor_id'))
        object.__setattr__(self, 'product_id',
                           normalize_id(self.product_id, 'VF product_id'))


@dataclasses.dataclass(frozen=True)
class PhysicalFunction:
    """An SR-IOV capable PCI function and its enabled VFs."""

    address: pci_address.PciAddress
    vendor_id: str
    product_id: str
    class_code: int
    total_vfs: int
    num_vfs: int
    vfs: tuple = ()
    numa_node: int | None = None
    driver: str | None = None
    iommu_group: int | None = None

    dev_type = DEV_TYPE_PF

    def __post_init__(self):
        _check_address('PF address', self.address)
        object.__setattr__(self, 'vendor_id',
                           normalize_id(self.vendor_id, 'PF vendor_id'))
        object.__setattr__(self, 'product_id',
                           normalize_id(self.product_id, 'PF product_id'))
        if isinstance(self.class_code, bool) or not isinstance(
                self.class_code, int) or not 0 <= self.class_code <= 0xFFFFFF:
            raise exception.PciDiscoveryError(
                'PF %s class must be a 24-bit integer, got %r'
                % (self.address, self.class_code))
        _check_optional_int('PF total_vfs', self.total_vfs)
        _check_optional_int('PF num_vfs', self.num_vfs)
        _check_optional_int('PF numa_node', self.numa_node)
        _check_optional_int('PF iommu_group', self.iommu_group)
        if self.num_vfs > self.total_vfs:
            raise exception.PciDiscoveryError(
                'PF %s has sriov_numvfs %d over sriov_totalvfs %d'
                % (self.address, self.num_vfs, self.total_vfs))
        vfs = tuple(self.vfs)
        for vf in vfs:
            if not isinstance(vf, VirtualFunction) or vf.parent != (
                    self.address):
                raise exception.PciDiscoveryError(
                    'PF %s: %r is not one of its VirtualFunctions'
                    % (self.address, vf))
        object.__setattr__(self, 'vfs', vfs)

    @property
    def base_class(self):
        """The PCI base class byte (``0x03`` display, ``0x12`` accel)."""
        return self.class_code >> 16

    def vf_models(self):
        """Distinct ``(vendor_id, product_id)`` pairs of the VFs, sorted."""
        return sorted({(vf.vendor_id, vf.product_id) for vf in self.vfs})
