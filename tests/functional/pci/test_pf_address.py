"""Generated device_spec styles checked with Nova's own PlacementView.

Nova's PCI-in-Placement translator refuses a host whose device_spec selects
a PF and its VFs at once. A PF-address spec does that when the VFs share
the PF's vendor:product id (Intel Flex 170): our generator must refuse that
style there, and its specs must pass Nova's view everywhere else.
"""

import fixtures
from nova.compute import pci_placement_translator as ppt
from nova import exception as nova_exception
from nova import objects
from nova.objects import fields
from nova.pci import whitelist

from multimodal_virt import exception
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import sysfs
from tests import base
from tests.fixtures import sysfs_builder as layouts


def _devices(pfs):
    for pf in pfs:
        yield objects.PciDevice(
            address=str(pf.address), parent_addr=None,
            dev_type=fields.PciDeviceType.SRIOV_PF,
            vendor_id=pf.vendor_id, product_id=pf.product_id,
            status=fields.PciDeviceStatus.AVAILABLE, instance_uuid=None)
        for vf in pf.vfs:
            yield objects.PciDevice(
                address=str(vf.address), parent_addr=str(pf.address),
                dev_type=fields.PciDeviceType.SRIOV_VF,
                vendor_id=vf.vendor_id, product_id=vf.product_id,
                status=fields.PciDeviceStatus.AVAILABLE, instance_uuid=None)


class PfAddressTest(base.TestCase):

    def setUp(self):
        super().setUp()
        objects.register_all()

    def _pfs(self, layout):
        pfs = sysfs.discover(self.useFixture(layouts.SysfsTree(layout)).root)
        pf_addresses = {str(pf.address) for pf in pfs}
        # Nova asks the real /sys whether a spec's address is a PF.
        self.useFixture(fixtures.MockPatch(
            'nova.pci.utils.is_physical_function',
            side_effect=lambda d, b, s, f: '%s:%s:%s.%s' % (d, b, s, f)
            in pf_addresses))
        return pfs

    def _view(self, pfs, device_spec):
        spec = whitelist.Whitelist(device_spec)
        view = ppt.PlacementView('compute1', [])
        matched = []
        for dev in _devices(pfs):
            dev_spec = spec.get_devspec(dev)
            if dev_spec:
                matched.append(dev.address)
                view.process_dev(dev, dev_spec)
        return view, matched

    def _generate(self, pfs, style):
        settings = nova_config.Settings(device_spec_style=style)
        return nova_config.generate(pfs, settings).nova_options()[
            ('pci', 'device_spec')]

    def test_shared_ids_naive_pf_address_breaks_nova(self):
        pfs = self._pfs('intel-flex170')
        naive = ['{"vendor_id": "8086", "product_id": "56c0", '
                 '"address": "%s"}' % pf.address for pf in pfs]
        self.assertRaises(nova_exception.PlacementPciDependentDeviceException,
                          self._view, pfs, naive)

    def test_shared_ids_pf_address_is_refused_clearly(self):
        pfs = self._pfs('intel-flex170')
        err = self.assertRaises(exception.MultimodalVirtError,
                                self._generate, pfs, 'pf_address')
        self.assertIn('share its id 8086:56c0', str(err))
        self.assertIn('vf_addresses', str(err))

    def test_shared_ids_vf_addresses_pass_nova(self):
        pfs = self._pfs('intel-flex170')
        _, matched = self._view(pfs, self._generate(pfs, 'vf_addresses'))
        self.assertEqual(sorted(str(vf.address) for pf in pfs
                                for vf in pf.vfs), sorted(matched))

    def test_distinct_ids_pf_address_passes_nova_without_the_pf(self):
        pfs = self._pfs('amd-mi25')
        self.assertNotEqual(pfs[0].product_id, pfs[0].vfs[0].product_id)
        view, matched = self._view(pfs, self._generate(pfs, 'pf_address'))
        self.assertEqual(sorted(str(vf.address) for pf in pfs
                                for vf in pf.vfs), sorted(matched))
        self.assertNotIn(str(pfs[0].address), matched)
        self.assertEqual(len(pfs), len(view.rps))
