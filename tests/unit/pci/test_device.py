"""PF/VF value objects: id normalisation and validation."""

import ddt

from multimodal_virt import exception
from multimodal_virt.pci import address
from multimodal_virt.pci import device
from tests import base

A = address.PciAddress.parse


def _vf(**kw):
    args = dict(address=A('3b:00.4'), parent=A('3b:00.0'), index=0,
                vendor_id='0x10DE', product_id='20f1', numa_node=0)
    args.update(kw)
    return device.VirtualFunction(**args)


@ddt.ddt
class NormalizeIdTest(base.TestCase):

    @ddt.data(('0x10DE', '10de'), ('10de', '10de'), (' 0x56c0\n', '56c0'),
              (0x8086, '8086'), ('0x0', '0000'), ('abc', '0abc'))
    @ddt.unpack
    def test_good(self, raw, expected):
        self.assertEqual(expected, device.normalize_id(raw, 'vendor'))

    @ddt.data('0x10000', '', 'nvidia', None, True, -1, 0x10000, '0x')
    def test_bad_names_input(self, raw):
        err = self.assertRaises(exception.PciDiscoveryError,
                                device.normalize_id, raw, 'VF vendor_id')
        self.assertIn('VF vendor_id must be a 16-bit hex PCI id', str(err))
        self.assertIn(repr(raw), str(err))


class ValueObjectTest(base.TestCase):

    def test_vf_normalises_and_is_frozen(self):
        vf = _vf()
        self.assertEqual(('10de', '20f1', 'type-VF'),
                         (vf.vendor_id, vf.product_id, vf.dev_type))
        self.assertRaises(AttributeError, setattr, vf, 'numa_node', 1)
        self.assertEqual(vf, _vf(vendor_id='10de'))

    def test_vf_rejects_string_address(self):
        err = self.assertRaises(exception.PciDiscoveryError, _vf,
                                address='0000:3b:00.4')
        self.assertIn('VF address must be a PciAddress', str(err))

    def test_vf_rejects_negative_numa(self):
        self.assertRaises(exception.PciDiscoveryError, _vf, numa_node=-1)

    def test_pf_checks_its_vfs(self):
        pf = device.PhysicalFunction(
            address=A('3b:00.0'), vendor_id='10de', product_id='20f1',
            class_code=0x030200, total_vfs=16, num_vfs=1, vfs=[_vf()])
        self.assertEqual((_vf(),), pf.vfs)
        self.assertEqual(0x03, pf.base_class)
        stranger = _vf(parent=A('d8:00.0'))
        err = self.assertRaises(
            exception.PciDiscoveryError, device.PhysicalFunction,
            address=A('3b:00.0'), vendor_id='10de', product_id='20f1',
            class_code=0x030200, total_vfs=16, num_vfs=1, vfs=[stranger])
        self.assertIn('is not one of its VirtualFunctions', str(err))

    def test_pf_numvfs_over_total(self):
        err = self.assertRaises(
            exception.PciDiscoveryError, device.PhysicalFunction,
            address=A('3b:00.0'), vendor_id='10de', product_id='20f1',
            class_code=0x030200, total_vfs=2, num_vfs=3)
        self.assertIn('sriov_numvfs 3 over sriov_totalvfs 2', str(err))

    def test_pf_bad_class(self):
        self.assertRaises(
            exception.PciDiscoveryError, device.PhysicalFunction,
            address=A('3b:00.0'), vendor_id='10de', product_id='20f1',
            class_code=0x1000000, total_vfs=2, num_vfs=0)

    def test_vendor_name(self):
        self.assertEqual('nvidia', device.vendor_name('10de'))
        self.assertEqual('1da3', device.vendor_name('1da3'))
