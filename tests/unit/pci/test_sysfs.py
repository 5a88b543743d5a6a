"""Discovery over recorded sysfs trees of real SR-IOV GPU layouts."""

import contextlib
import io
import json
import os

import ddt
import fixtures

from multimodal_virt import exception
from multimodal_virt.pci import address
from multimodal_virt.pci import sysfs
from multimodal_virt.pci import sysfs_builder as builder
from tests import base
from tests.fixtures import sysfs_builder as layouts

A = address.PciAddress.parse


@ddt.ddt
class RecordedLayoutTest(base.TestCase):

    @ddt.data(*layouts.LAYOUTS)
    def test_counts_match_recording(self, name):
        tree = self.useFixture(layouts.SysfsTree(name))
        expected = tree.layout['expected']
        pfs = sysfs.discover(tree.root)
        self.assertEqual(expected['pfs'], len(pfs))
        self.assertEqual(expected['vfs'], sum(len(pf.vfs) for pf in pfs))

    @ddt.data(*layouts.LAYOUTS)
    def test_vfs_follow_sriov_routing_ids(self, name):
        tree = self.useFixture(layouts.SysfsTree(name))
        specs = {spec['address']: spec for spec in tree.layout['pfs']}
        for pf in sysfs.discover(tree.root):
            spec = specs[str(pf.address)]
            self.assertEqual(spec['sriov_totalvfs'], pf.total_vfs)
            self.assertEqual(spec['sriov_numvfs'], pf.num_vfs)
            self.assertEqual(
                [builder.vf_address(pf.address, i, spec['first_vf_offset'],
                                    spec['vf_stride'])
                 for i in range(pf.num_vfs)],
                [vf.address for vf in pf.vfs])
            self.assertEqual(list(range(pf.num_vfs)),
                             [vf.index for vf in pf.vfs])
            for vf in pf.vfs:
                self.assertEqual(pf.address, vf.parent)
                self.assertEqual(spec.get('vf_driver'), vf.driver)
                self.assertEqual(spec.get('numa_node'), vf.numa_node)

    def test_nvidia_a100_details(self):
        tree = self.useFixture(layouts.SysfsTree('nvidia-a100'))
        first, second = sysfs.discover(tree.root)
        self.assertEqual(A('0000:3b:00.0'), first.address)
        self.assertEqual(('10de', '20f1', 0x030200, 'nvidia', 0, 40),
                         (first.vendor_id, first.product_id,
                          first.class_code, first.driver, first.numa_node,
                          first.iommu_group))
        self.assertEqual(A('0000:3b:00.4'), first.vfs[0].address)
        self.assertEqual(A('0000:3b:02.3'), first.vfs[-1].address)
        self.assertEqual(41, first.vfs[0].iommu_group)
        self.assertEqual([('10de', '20f1')], first.vf_models())
        self.assertEqual(1, second.numa_node)

    def test_nic_with_vfs_is_not_a_gpu(self):
        tree = self.useFixture(layouts.SysfsTree('nvidia-a100'))
        found = [str(pf.address) for pf in sysfs.discover(tree.root)]
        self.assertNotIn('0000:5e:00.0', found)
        nics = sysfs.discover(tree.root, classes=['0x02'])
        self.assertEqual(['0000:5e:00.0'], [str(pf.address) for pf in nics])
        self.assertEqual(2, len(nics[0].vfs))

    def test_amd_vf_has_its_own_device_id(self):
        tree = self.useFixture(layouts.SysfsTree('amd-mi25'))
        (pf,) = sysfs.discover(tree.root)
        self.assertEqual('6860', pf.product_id)
        self.assertEqual({'686c'}, {vf.product_id for vf in pf.vfs})
        self.assertEqual('gim', pf.driver)
        self.assertEqual({'vfio-pci'}, {vf.driver for vf in pf.vfs})

    def test_intel_flex_without_numa_and_partial_enablement(self):
        tree = self.useFixture(layouts.SysfsTree('intel-flex170'))
        pfs = sysfs.discover(tree.root)
        self.assertEqual([31, 31], [pf.total_vfs for pf in pfs])
        self.assertEqual([4, 4], [pf.num_vfs for pf in pfs])
        self.assertEqual({None}, {pf.numa_node for pf in pfs} |
                         {vf.numa_node for pf in pfs for vf in pf.vfs})


class DiscoveryEdgeTest(base.TestCase):

    def _tree(self, pfs, others=()):
        return self.useFixture(layouts.SysfsTree(
            {'pfs': pfs, 'other_devices': list(others)})).root

    def _pf(self, **kw):
        spec = {'address': '0000:81:00.0', 'vendor': '0x1da3',
                'device': '0x1020', 'class': '0x120000',
                'sriov_totalvfs': 4, 'sriov_numvfs': 2}
        spec.update(kw)
        return spec

    def test_accelerator_class_0x12(self):
        root = self._tree([self._pf()])
        (pf,) = sysfs.discover(root)
        self.assertEqual(0x12, pf.base_class)
        self.assertIsNone(pf.driver)
        self.assertIsNone(pf.iommu_group)

    def test_sriov_capable_with_no_vfs_enabled(self):
        root = self._tree([self._pf(sriov_numvfs=0)])
        (pf,) = sysfs.discover(root)
        self.assertEqual((4, 0, ()), (pf.total_vfs, pf.num_vfs, pf.vfs))

    def test_gpu_without_sriov_is_skipped(self):
        root = self._tree([], [{'address': '0000:01:00.0',
                                'vendor': '0x10de', 'device': '0x2684',
                                'class': '0x030000', 'driver': 'nouveau'}])
        self.assertEqual([], sysfs.discover(root))

    def test_relative_root_rejected(self):
        err = self.assertRaises(exception.PciDiscoveryError,
                                sysfs.discover, 'sys')
        self.assertIn("absolute path, got 'sys'", str(err))

    def test_missing_tree(self):
        err = self.assertRaises(exception.PciDiscoveryError, sysfs.discover,
                                '/nonexistent-mmv-sysfs')
        self.assertIn('/nonexistent-mmv-sysfs/bus/pci/devices', str(err))

    def _two_pfs(self):
        return self._tree([self._pf(), self._pf(address='0000:82:00.0')])

    def _discover_logged(self, root):
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.pci.sysfs'))
        return sysfs.discover(root), logs.output

    def _write(self, root, addr, attr, text):
        with open(os.path.join(root, 'bus', 'pci', 'devices', addr, attr),
                  'w') as handle:
            handle.write(text)

    def test_stray_entry_skipped_and_named(self):
        root = self._two_pfs()
        os.mkdir(os.path.join(root, 'bus', 'pci', 'devices', '0000:zz:00.0'))
        pfs, log = self._discover_logged(root)
        self.assertEqual(2, len(pfs))
        self.assertIn("'0000:zz:00.0'", log)
        self.assertIn('DDDD:BB:SS.F', log)

    def test_non_hex_class_skips_only_that_device(self):
        root = self._two_pfs()
        self._write(root, '0000:81:00.0', 'class', 'display\n')
        pfs, log = self._discover_logged(root)
        self.assertEqual([A('0000:82:00.0')], [pf.address for pf in pfs])
        self.assertIn('0000:81:00.0/class must hold a base-16 integer, got '
                      "'display'", log)

    def test_empty_file_skips_only_that_device(self):
        root = self._two_pfs()
        self._write(root, '0000:82:00.0', 'sriov_totalvfs', '')
        pfs, log = self._discover_logged(root)
        self.assertEqual([A('0000:81:00.0')], [pf.address for pf in pfs])
        self.assertIn("sriov_totalvfs must hold a base-10 integer, got ''",
                      log)

    def test_malformed_virtfn_target_skips_that_vf(self):
        root = self._two_pfs()
        link = os.path.join(root, 'bus', 'pci', 'devices', '0000:81:00.0',
                            'virtfn1')
        os.unlink(link)
        os.symlink('../not-an-address', link)
        pfs, log = self._discover_logged(root)
        self.assertEqual([1, 2], [len(pf.vfs) for pf in pfs])
        self.assertIn('virtfn1', log)
        self.assertIn('not-an-address', log)

    def test_missing_virtfn_link_skips_that_vf(self):
        root = self._two_pfs()
        os.unlink(os.path.join(root, 'bus', 'pci', 'devices',
                               '0000:81:00.0', 'virtfn1'))
        pfs, log = self._discover_logged(root)
        self.assertEqual([1, 2], [len(pf.vfs) for pf in pfs])
        self.assertIn('no virtfn1 link', log)

    def test_numvfs_over_total_skips_the_pf(self):
        root = self._two_pfs()
        self._write(root, '0000:81:00.0', 'sriov_numvfs', '9\n')
        pfs, log = self._discover_logged(root)
        self.assertEqual([A('0000:82:00.0')], [pf.address for pf in pfs])
        self.assertIn('sriov_numvfs 9', log)

    def test_cli_still_prints_the_good_devices(self):
        from multimodal_virt.cmd import cli
        root = self._two_pfs()
        self._write(root, '0000:81:00.0', 'class', 'zz\n')
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(['pci', 'discover', '--sysfs-root', root])
        self.assertEqual(0, code)
        self.assertEqual(['0000:82:00.0'], [
            pf['address'] for pf in json.loads(out.getvalue())[
                'physical_functions']])

    def test_bad_class_argument(self):
        root = self._tree([self._pf()])
        err = self.assertRaises(exception.PciDiscoveryError,
                                sysfs.discover, root, classes=['0x300'])
        self.assertIn("'0x300'", str(err))

    def test_device_path_needs_address_object(self):
        reader = sysfs.SysfsReader('/sys')
        self.assertRaises(exception.PciDiscoveryError, reader.device_path,
                          '0000:00:00.0')
        self.assertEqual('/sys/bus/pci/devices/0000:3b:00.4/physfn',
                         reader.device_path(A('3b:00.4'), 'physfn'))
