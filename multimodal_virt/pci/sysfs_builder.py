"""Materialise a declarative SR-IOV layout as a sysfs tree with real links.

Used by the tests (recorded GPU layouts in ``tests/fixtures/sysfs/``) and by
``tools/bench_pci.py``. The tree mirrors the kernel's shape::

    <root>/devices/pci0000:00/<addr>/{vendor,device,class,numa_node,...}
    <root>/devices/pci0000:00/<pf>/virtfnN -> ../<vf>
    <root>/devices/pci0000:00/<vf>/physfn -> ../<pf>
    <root>/devices/pci0000:00/<addr>/driver -> ../../../bus/pci/drivers/X
    <root>/devices/pci0000:00/<addr>/iommu_group -> ../../../kernel/iommu_groups/N
    <root>/bus/pci/devices/<addr> -> ../../../devices/pci0000:00/<addr>

VF addresses follow the SR-IOV routing-ID rule: ``RID(VFn) = RID(PF) +
First VF Offset + n * VF Stride`` with ``RID = bus << 8 | slot << 3 | fn``.
"""

import json
import os
import re

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import device

_DRIVER_RE = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')


def vf_address(pf, index, offset, stride):
    """Address of VF ``index`` of ``pf`` by the SR-IOV routing-ID rule.

    :param pf: the PF's :class:`PciAddress`.
    :param index: VF number, from 0.
    :param offset: First VF Offset of the PF's SR-IOV capability.
    :param stride: VF Stride.
    :returns: a :class:`PciAddress`.
    """
    rid = (pf.bus << 8 | pf.slot << 3 | pf.function) + offset + index * stride
    if rid > 0xFFFF:
        raise exception.PciDiscoveryError(
            'VF %d of %s falls past bus 0xff (offset %d, stride %d)'
            % (index, pf, offset, stride))
    return pci_address.PciAddress(pf.domain, rid >> 8, (rid >> 3) & 0x1F,
                                  rid & 0x7)


def _driver(value, what):
    if value is None:
        return None
    if not isinstance(value, str) or not _DRIVER_RE.match(value):
        raise exception.PciDiscoveryError(
            '%s driver must be a kernel module name, got %r' % (what, value))
    return value


def _int(spec, key, what, default=None, minimum=0):
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (
            value < minimum):
        raise exception.PciDiscoveryError(
            '%s: %s must be an integer >= %d, got %r'
            % (what, key, minimum, value))
    return value


class SysfsTreeBuilder:
    """Write PCI functions into a sysfs-shaped tree below ``root``.

    :param root: an existing, empty directory (e.g. a test temp dir).
    """

    def __init__(self, root):
        self.root = root
        self.pci_dir = os.path.join(root, 'devices', 'pci0000:00')
        self.bus_dir = os.path.join(root, 'bus', 'pci', 'devices')
        self.drivers_dir = os.path.join(root, 'bus', 'pci', 'drivers')
        self.groups_dir = os.path.join(root, 'kernel', 'iommu_groups')
        for path in (self.pci_dir, self.bus_dir, self.drivers_dir,
                     self.groups_dir):
            os.makedirs(path, exist_ok=True)

    def _write(self, directory, name, text):
        with open(os.path.join(directory, name), 'w') as handle:
            handle.write(text + '\n')

    def add_function(self, address, vendor, product, class_code,
                     numa_node=None, driver=None, iommu_group=None):
        """Create one PCI function directory and its bus link.

        :returns: the function's directory.
        """
        directory = os.path.join(self.pci_dir, str(address))
        os.makedirs(directory)
        self._write(directory, 'vendor', '0x' + device.normalize_id(
            vendor, '%s vendor' % address))
        self._write(directory, 'device', '0x' + device.normalize_id(
            product, '%s device' % address))
        self._write(directory, 'class', '0x%06x' % class_code)
        self._write(directory, 'numa_node',
                    str(-1 if numa_node is None else numa_node))
        os.symlink(os.path.join('..', '..', '..', 'devices', 'pci0000:00',
                                str(address)),
                   os.path.join(self.bus_dir, str(address)))
        if driver is not None:
            os.makedirs(os.path.join(self.drivers_dir, driver),
                        exist_ok=True)
            os.symlink(os.path.join('..', '..', '..', 'bus', 'pci',
                                    'drivers', driver),
                       os.path.join(directory, 'driver'))
        if iommu_group is not None:
            os.makedirs(os.path.join(self.groups_dir, str(iommu_group)),
                        exist_ok=True)
            os.symlink(os.path.join('..', '..', '..', 'kernel',
                                    'iommu_groups', str(iommu_group)),
                       os.path.join(directory, 'iommu_group'))
        return directory

    def add_pf(self, spec):
        """Add a PF and its enabled VFs from a layout ``pfs`` entry.

        :param spec: dict with ``address``, ``vendor``, ``device``,
            ``class``, ``sriov_totalvfs``, ``sriov_numvfs`` and optional
            ``numa_node``, ``driver``, ``iommu_group``, ``vf_device``,
            ``vf_driver``, ``first_vf_offset``, ``vf_stride``,
            ``sriov_admin`` (true: xe's per-VF profile tree),
            ``i915_iov`` (a list of tile directory names, e.g. ``["gt0"]``:
            the i915 SR-IOV tree).
        :returns: list of the VF addresses created.
        """
        pf = pci_address.PciAddress.parse(spec['address'])
        what = 'PF %s' % pf
        total = _int(spec, 'sriov_totalvfs', what, minimum=1)
        num = _int(spec, 'sriov_numvfs', what, default=total)
        if total is None or num > total:
            raise exception.PciDiscoveryError(
                '%s: need 0 <= sriov_numvfs <= sriov_totalvfs, got %r/%r'
                % (what, num, total))
        numa = _int(spec, 'numa_node', what)
        group = _int(spec, 'iommu_group', what)
        offset = _int(spec, 'first_vf_offset', what, default=1, minimum=1)
        stride = _int(spec, 'vf_stride', what, default=1, minimum=1)
        class_code = int(spec['class'], 16)
        pf_dir = self.add_function(pf, spec['vendor'], spec['device'],
                                   class_code, numa, _driver(
                                       spec.get('driver'), what), group)
        self._write(pf_dir, 'sriov_totalvfs', str(total))
        self._write(pf_dir, 'sriov_numvfs', str(num))
        self._write(pf_dir, 'sriov_offset', str(offset))
        self._write(pf_dir, 'sriov_stride', str(stride))
        vf_driver = _driver(spec.get('vf_driver'), what + ' VF')
        created = []
        for index in range(num):
            vf = vf_address(pf, index, offset, stride)
            vf_dir = self.add_function(
                vf, spec['vendor'], spec.get('vf_device', spec['device']),
                class_code, numa, vf_driver,
                None if group is None else group + 1 + index)
            os.symlink(os.path.join('..', str(vf)),
                       os.path.join(pf_dir, 'virtfn%d' % index))
            os.symlink(os.path.join('..', str(pf)),
                       os.path.join(vf_dir, 'physfn'))
            created.append(vf)
        if spec.get('sriov_admin'):
            self.add_sriov_admin(pf_dir, created)
        if spec.get('i915_iov'):
            self.add_i915_iov(pf_dir, created, total, spec['i915_iov'])
        return created

    def add_sriov_admin(self, pf_dir, vfs):
        """xe's per-VF profile tree below the PF (default values)::

            sriov_admin/{pf,vfN}/profile/{exec_quantum_ms,
                preempt_timeout_us,sched_priority}
            sriov_admin/vfN/device -> ../../../<VF>
        """
        for index, name in enumerate(['pf'] + ['vf%d' % n for n in range(
                1, len(vfs) + 1)]):
            directory = os.path.join(pf_dir, 'sriov_admin', name)
            os.makedirs(os.path.join(directory, 'profile'))
            for attr, value in (('exec_quantum_ms', '0'),
                                ('preempt_timeout_us', '0'),
                                ('sched_priority', '[low] normal high')):
                self._write(os.path.join(directory, 'profile'), attr, value)
            if index:
                os.symlink(os.path.join('..', '..', '..',
                                        str(vfs[index - 1])),
                           os.path.join(directory, 'device'))

    def add_i915_iov(self, pf_dir, vfs, total, gts):
        """The i915 SR-IOV tree below the PF's primary DRM minor::

            drm/card<M>/iov/{pf,vf1..vf<total>}/<gt>/{exec_quantum_ms,
                preempt_timeout_us}
            drm/card<M>/iov/vf<N>/device -> ../../../../../<VF>  (enabled)
            drm/card<M>/iov/pf/device -> ../../../../../<PF>
            drm/renderD<128+M>/             (a minor without iov)
            <root>/class/drm/card<M> -> ../../devices/.../drm/card<M>
        """
        if not isinstance(gts, list) or not gts or not all(
                isinstance(g, str) and re.match(r'^gt[0-9]*$', g)
                for g in gts):
            raise exception.PciDiscoveryError(
                'i915_iov must be a list of gt directory names, got %r'
                % (gts,))
        class_dir = os.path.join(self.root, 'class', 'drm')
        os.makedirs(class_dir, exist_ok=True)
        minor = len([n for n in os.listdir(class_dir)
                     if n.startswith('card')])
        card = 'card%d' % minor
        drm = os.path.join(pf_dir, 'drm')
        os.makedirs(os.path.join(drm, 'renderD%d' % (128 + minor)))
        iov = os.path.join(drm, card, 'iov')
        for number in range(total + 1):
            node = os.path.join(iov, 'vf%d' % number if number else 'pf')
            for gt in gts:
                os.makedirs(os.path.join(node, gt))
                for attr in ('exec_quantum_ms', 'preempt_timeout_us'):
                    self._write(os.path.join(node, gt), attr, '0')
            target = os.path.basename(pf_dir) if not number else (
                str(vfs[number - 1]) if number <= len(vfs) else None)
            if target:
                os.symlink(os.path.join('..', '..', '..', '..', '..',
                                        target),
                           os.path.join(node, 'device'))
        os.symlink(os.path.join('..', '..', os.path.relpath(
            os.path.join(drm, card), self.root)),
            os.path.join(class_dir, card))

    def add_plain(self, spec):
        """Add a function without SR-IOV (a layout ``other_devices`` entry)."""
        address = pci_address.PciAddress.parse(spec['address'])
        what = 'device %s' % address
        self.add_function(address, spec['vendor'], spec['device'],
                          int(spec['class'], 16),
                          _int(spec, 'numa_node', what),
                          _driver(spec.get('driver'), what),
                          _int(spec, 'iommu_group', what))


def build(layout, root):
    """Materialise ``layout`` (a dict) as a sysfs tree under ``root``.

    :param layout: dict with ``pfs`` and optional ``other_devices`` lists.
    :param root: an existing empty directory.
    :returns: ``root``.
    """
    if not isinstance(layout, dict) or not isinstance(
            layout.get('pfs'), list):
        raise exception.PciDiscoveryError(
            'layout must be a dict with a "pfs" list, got %r'
            % (type(layout).__name__,))
    builder = SysfsTreeBuilder(root)
    for spec in layout['pfs']:
        builder.add_pf(spec)
    for spec in layout.get('other_devices', []):
        builder.add_plain(spec)
    return root


def load_layout(path):
    """Read a layout JSON file (see ``tests/fixtures/sysfs/``)."""
    with open(path) as handle:
        return json.load(handle)


def synthetic_layout(num_pfs, num_vfs, vendor='0x10de', product='0x20b5',
                     numa_nodes=2):
    """A layout of ``num_pfs`` PFs with ``num_vfs`` VFs each (benchmarks).

    PFs sit on their own bus (``0000:<0x10+i>:00.0``), VFs follow at offset 4,
    stride 1, NUMA nodes alternate.
    """
    return {
        'name': 'synthetic-%dx%d' % (num_pfs, num_vfs),
        'pfs': [{
            'address': '0000:%02x:00.0' % (0x10 + 2 * i),
            'vendor': vendor, 'device': product, 'class': '0x030200',
            'driver': 'nvidia', 'vf_driver': 'vfio-pci',
            'numa_node': i % numa_nodes, 'iommu_group': 100 + 100 * i,
            'sriov_totalvfs': num_vfs, 'sriov_numvfs': num_vfs,
            'first_vf_offset': 4, 'vf_stride': 1,
        } for i in range(num_pfs)],
    }
