"""Our generated [pci] config drives Nova's real libvirt driver and Placement.

Nova 34 runs in-process through its own functional base
(``_PCIServersTestBase``): real API, conductor, scheduler, Placement and the
real libvirt driver over fakelibvirt. The compute host's PCI devices are
built from the recorded Intel Data Center GPU Flex 170 layout; the
device_spec, alias and provider.yaml come from our discovery of the same
layout as a sysfs tree. A flavor asking ``pci_passthrough:alias=<ours>:1``
must boot, the VF must be allocated in Placement, Nova's PCI pools must
equal ours, and the guest XML must carry the VF as a ``<hostdev>``.
"""

import os

import fixtures
from lxml import etree
from nova import context as nova_context
from nova import objects
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.tests.functional.libvirt import test_pci_sriov_servers

from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import pools
from multimodal_virt.pci import sysfs
from tests.fixtures import sysfs_builder as layouts
from tests.functional import nova_env

HOST = 'compute1'
LAYOUT = 'intel-flex170'


def fake_libvirt_devices(pfs):
    """fakelibvirt node devices mirroring the discovered PFs and VFs.

    fakelibvirt's PF capability lists VFs at functions 1..N of the PF's
    slot, so the layout must put them there (the Flex 170 recording does).
    A device without NUMA information gets no ``<numa>`` element, as
    libvirt reports it.
    """
    info = fakelibvirt.HostPCIDevicesInfo(num_pfs=0, num_vfs=0)
    for pf in pfs:
        addr = pf.address
        expected = [pci_address.PciAddress(addr.domain, addr.bus, addr.slot,
                                           fn)
                    for fn in range(1, len(pf.vfs) + 1)]
        if [vf.address for vf in pf.vfs] != expected:
            raise ValueError('fakelibvirt needs VFs at functions 1..%d of '
                             '%s' % (len(pf.vfs), addr))
        devs = [info.add_device(
            dev_type='PF', bus=addr.bus, slot=addr.slot,
            function=addr.function, iommu_group=pf.iommu_group,
            numa_node=pf.numa_node, vf_ratio=len(pf.vfs),
            vend_id=pf.vendor_id, prod_id=pf.product_id,
            driver_name=pf.driver)]
        for vf in pf.vfs:
            devs.append(info.add_device(
                dev_type='VF', bus=vf.address.bus, slot=vf.address.slot,
                function=vf.address.function, iommu_group=vf.iommu_group,
                numa_node=vf.numa_node, vf_ratio=len(pf.vfs),
                parent=(addr.bus, addr.slot, addr.function),
                vend_id=vf.vendor_id, prod_id=vf.product_id,
                driver_name=vf.driver))
        for dev in devs:
            if dev.numa_node is None:
                dev.pci_device = dev.pci_device.replace(
                    "<numa node='None'/>", '')
    return info


class GeneratedConfigBootTest(test_pci_sriov_servers._PCIServersTestBase):

    ADMIN_API = True
    microversion = 'latest'
    PCI_DEVICE_SPEC = []
    PCI_ALIAS = []

    def setUp(self):
        self.flags(api_paste_config=nova_env.api_paste_config(),
                   group='wsgi')
        tree = self.useFixture(layouts.SysfsTree(LAYOUT))
        self.pfs = sysfs.discover(tree.root)
        self.settings = nova_config.Settings()
        self.generated = nova_config.generate(self.pfs, self.settings,
                                              hostname=HOST)
        options = self.generated.nova_options()
        # _PCIServersTestBase.setUp sets [pci] device_spec/alias from these.
        self.PCI_DEVICE_SPEC = options[('pci', 'device_spec')]
        self.PCI_ALIAS = options[('pci', 'alias')]
        provider_dir = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(provider_dir, 'mmv-gpu.yaml'), 'w') as fh:
            fh.write(self.generated.to_yaml())
        super().setUp()
        self.flags(group='pci', report_in_placement=True)
        self.flags(group='filter_scheduler', pci_in_placement=True)
        self.flags(group='compute', provider_config_location=provider_dir)
        self.alias = self.generated.alias[0]['name']
        self.rc = self.generated.alias[0]['resource_class']

    def _nova_pools(self):
        ctxt = nova_context.get_admin_context()
        node = objects.ComputeNode.get_by_nodename(ctxt, HOST)
        result = []
        for pool in node.pci_device_pools:
            entry = pool.to_dict()
            entry.pop('rp_uuid', None)
            result.append(entry)
        return sorted(result, key=lambda p: p['address'])

    def test_flavor_with_generated_alias_boots_on_a_vf(self):
        self.start_compute(hostname=HOST,
                           pci_info=fake_libvirt_devices(self.pfs))
        # Nova names a PF's provider <host>_<PF ADDRESS IN UPPER CASE>.
        vfs_per_pf = {str(pf.address).upper(): len(pf.vfs)
                      for pf in self.pfs}
        traits = ['CUSTOM_MMV_SRIOV_GPU_VF']
        self.assert_placement_pci_view(
            HOST,
            inventories={pf: {self.rc: n} for pf, n in vfs_per_pf.items()},
            traits={pf: traits for pf in vfs_per_pf},
            usages={pf: {self.rc: 0} for pf in vfs_per_pf})
        self.assertIn('CUSTOM_MMV_SRIOV_GPU_HOST', self._get_provider_traits(
            self.compute_rp_uuids[HOST]))

        ours = pools.VfPools(self.pfs,
                             nova_config.pool_tags(self.pfs, self.settings))
        self.assertEqual(ours.summary(), self._nova_pools())

        flavor_id = self._create_flavor(
            extra_spec={'pci_passthrough:alias': '%s:1' % self.alias})
        server = self._create_server(flavor_id=flavor_id, networks='none')
        self.assertEqual('ACTIVE', server['status'])

        ctxt = nova_context.get_admin_context()
        (pci_dev,) = objects.PciDeviceList.get_by_instance_uuid(
            ctxt, server['id'])
        self.assertEqual('type-VF', pci_dev.dev_type)
        parent = pci_dev.parent_addr
        self.assertIn(parent.upper(), vfs_per_pf)
        self.assert_placement_pci_view(
            HOST,
            inventories={pf: {self.rc: n} for pf, n in vfs_per_pf.items()},
            traits={pf: traits for pf in vfs_per_pf},
            usages={pf: {self.rc: int(pf == parent.upper())}
                    for pf in vfs_per_pf},
            allocations={server['id']: {parent.upper(): {self.rc: 1}}})
        self.assert_no_pci_healing(HOST)

        conn = self.computes[HOST].driver._host.get_connection()
        xml = conn.lookupByUUIDString(server['id']).XMLDesc(0)
        hostdevs = etree.fromstring(xml).findall('./devices/hostdev')
        self.assertEqual(1, len(hostdevs))
        self.assertEqual(('subsystem', 'pci'), (hostdevs[0].get('mode'),
                                                hostdevs[0].get('type')))
        source = pci_address.PciAddress.from_libvirt_attrs(
            hostdevs[0].find('./source/address').attrib)
        self.assertEqual(pci_address.PciAddress.parse(pci_dev.address),
                         source)
        discovered = {vf.address for pf in self.pfs for vf in pf.vfs
                      if str(pf.address) == parent}
        self.assertIn(source, discovered)

        # Nova's pools after the claim: one fewer VF behind that PF.
        ours_after = {p['address']: p['count'] for p in ours.summary()}
        ours_after[parent] -= 1
        self.assertEqual(ours_after, {p['address']: p['count']
                                      for p in self._nova_pools()})

        self._delete_server(server)
        self.assert_placement_pci_view(
            HOST,
            inventories={pf: {self.rc: n} for pf, n in vfs_per_pf.items()},
            traits={pf: traits for pf in vfs_per_pf},
            usages={pf: {self.rc: 0} for pf in vfs_per_pf})

    def test_more_vfs_than_discovered_is_no_valid_host(self):
        self.start_compute(hostname=HOST,
                           pci_info=fake_libvirt_devices(self.pfs))
        total = sum(len(pf.vfs) for pf in self.pfs)
        request = '%s:%d' % (self.alias, total + 1)
        flavor_id = self._create_flavor(
            extra_spec={'pci_passthrough:alias': request})
        server = self._create_server(flavor_id=flavor_id, networks='none',
                                     expected_state='ERROR')
        self.assertIn('No valid host', server['fault']['message'])
