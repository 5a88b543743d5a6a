"""The sysfs tree writer: routing-ID addresses and real symlinks."""

import os

import fixtures

from multimodal_virt import exception
from multimodal_virt.pci import address
from multimodal_virt.pci import sysfs
from multimodal_virt.pci import sysfs_builder
from tests import base
from tests.fixtures import sysfs_builder as layouts

A = address.PciAddress.parse


class VfAddressTest(base.TestCase):

    def test_routing_id_rule(self):
        pf = A('0000:3b:00.0')
        self.assertEqual(A('3b:00.4'), sysfs_builder.vf_address(pf, 0, 4, 1))
        self.assertEqual(A('3b:01.0'), sysfs_builder.vf_address(pf, 4, 4, 1))
        self.assertEqual(A('3b:00.3'), sysfs_builder.vf_address(pf, 1, 1, 2))
        self.assertEqual(A('3c:00.0'),
                         sysfs_builder.vf_address(pf, 252, 4, 1))

    def test_past_last_bus(self):
        err = self.assertRaises(exception.PciDiscoveryError,
                                sysfs_builder.vf_address, A('ff:1f.7'), 0,
                                1, 1)
        self.assertIn('past bus 0xff', str(err))


class TreeTest(base.TestCase):

    def test_links_are_real_symlinks_like_the_kernel(self):
        tree = self.useFixture(layouts.SysfsTree('amd-mi25'))
        pf_dir = os.path.join(tree.root, 'bus', 'pci', 'devices',
                              '0000:43:00.0')
        self.assertTrue(os.path.islink(pf_dir))
        self.assertEqual('../0000:43:00.4',
                         os.readlink(os.path.join(pf_dir, 'virtfn0')))
        vf_dir = os.path.join(pf_dir, 'virtfn0')
        self.assertEqual(os.path.realpath(pf_dir),
                         os.path.realpath(os.path.join(vf_dir, 'physfn')))
        self.assertTrue(os.path.isdir(os.path.join(vf_dir, 'driver')))
        self.assertTrue(os.path.isdir(os.path.join(vf_dir, 'iommu_group')))

    def test_synthetic_layout_round_trips_through_discovery(self):
        tree = self.useFixture(layouts.SysfsTree(
            sysfs_builder.synthetic_layout(3, 64)))
        pfs = sysfs.discover(tree.root)
        self.assertEqual([64] * 3, [len(pf.vfs) for pf in pfs])
        self.assertEqual([0, 1, 0], [pf.numa_node for pf in pfs])

    def test_bad_layout_named(self):
        err = self.assertRaises(exception.PciDiscoveryError,
                                sysfs_builder.build, [], '/tmp')
        self.assertIn('"pfs" list', str(err))

    def test_bad_driver_named(self):
        layout = {'pfs': [{'address': '0000:01:00.0', 'vendor': '10de',
                           'device': '20f1', 'class': '0x030200',
                           'sriov_totalvfs': 1, 'driver': '../evil'}]}
        root = self.useFixture(fixtures.TempDir()).path
        err = self.assertRaises(exception.PciDiscoveryError,
                                sysfs_builder.build, layout, root)
        self.assertIn("'../evil'", str(err))

    def test_i915_iov_tiles_named(self):
        layout = {'pfs': [{'address': '0000:01:00.0', 'vendor': '8086',
                           'device': '56c0', 'class': '0x038000',
                           'sriov_totalvfs': 2, 'driver': 'i915',
                           'i915_iov': ['../gt0']}]}
        root = self.useFixture(fixtures.TempDir()).path
        err = self.assertRaises(exception.PciDiscoveryError,
                                sysfs_builder.build, layout, root)
        self.assertIn("list of gt directory names, got ['../gt0']", str(err))

    def test_i915_iov_tree_beside_discovery(self):
        layout = layouts.load('intel-flex170')
        for pf in layout['pfs']:
            pf['i915_iov'] = ['gt0']
        root = self.useFixture(layouts.SysfsTree(layout)).root
        pf_dir = os.path.join(root, 'devices', 'pci0000:00', '0000:4d:00.0')
        iov = os.path.join(pf_dir, 'drm', 'card0', 'iov')
        # pf and all 31 possible VFs, device links for the 4 enabled ones.
        self.assertEqual(32, len(os.listdir(iov)))
        self.assertEqual(['0000:4d:00.1', '0000:4d:00.4'], [
            os.path.basename(os.path.realpath(os.path.join(
                iov, 'vf%d' % n, 'device'))) for n in (1, 4)])
        self.assertEqual(pf_dir, os.path.realpath(os.path.join(
            iov, 'pf', 'device')))
        self.assertTrue(os.path.isdir(os.path.join(pf_dir, 'drm',
                                                   'renderD128')))
        # Discovery sees the same PFs and VFs as without the tree.
        self.assertEqual([4, 4], [len(pf.vfs) for pf in sysfs.discover(root)])
