"""GPU VF scheduling profiles written by nova-compute running our driver.

Real Nova (API, scheduler, conductor, compute manager, PCI tracker,
PCI-in-Placement) allocates a VF for ``pci_passthrough:alias``; our driver
writes the flavor's profile through the privsep entry point (run
in-process here) to a fake xe sysfs tree mirroring fakelibvirt's devices,
and restores the defaults when the server is deleted.
"""

import os
import re

import fixtures
from lxml import etree
from nova import context as nova_context
from nova import objects
from nova.virt.libvirt import driver as libvirt_driver

from multimodal_virt.libvirt_xml import hostdev
from multimodal_virt.libvirt_xml import validate
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import sriov_profile
from multimodal_virt.pci import sysfs
from multimodal_virt import privsep
from tests.fixtures import sysfs_builder as layouts
from tests.functional.compute import base
from tests.functional.pci import test_nova_generated_config as generated

HOST = 'compute1'
DEFAULTS = {'exec_quantum_ms': '0', 'preempt_timeout_us': '0',
            'sched_priority': 'low'}
PROFILE = {'multimodal_virt:gpu_sched_priority': 'high',
           'multimodal_virt:gpu_exec_quantum_ms': '25',
           'multimodal_virt:gpu_preempt_timeout_us': '50000'}
# i915 has no sched_priority: its profile is the other two.
I915_DEFAULTS = {'exec_quantum_ms': '0', 'preempt_timeout_us': '0'}
# What the VF holds with PROFILE (SMALL) and with MoveProfileTest's bigger
# flavor (BIG: no preempt_timeout_us spec, the file keeps the default).
SMALL = {'exec_quantum_ms': '25', 'preempt_timeout_us': '50000',
         'sched_priority': 'high'}
BIG = {'exec_quantum_ms': '5', 'preempt_timeout_us': '0',
       'sched_priority': 'normal'}


def flex170(driver, i915_iov=None):
    """The recorded Flex 170 pair, driven by ``driver``: xe with its
    sriov_admin tree, i915 with the SR-IOV ``iov`` tree of ``i915_iov``
    tiles (None: an i915 without SR-IOV sysfs)."""
    layout = layouts.load('intel-flex170')
    for pf in layout['pfs']:
        pf['driver'] = driver
        if driver == 'xe':
            pf['sriov_admin'] = True
        elif i915_iov:
            pf['i915_iov'] = list(i915_iov)
    return layout


class _ProfileTreeBase(base.ShimPCIServersTestBase):
    """Nova's PCI options generated from a fake sysfs tree, the privileged
    profile writes run in this process (no daemon)."""

    PCI_DEVICE_SPEC = []
    PCI_ALIAS = []

    def _set_up_on(self, tree, pfs, **generate_kwargs):
        """Generate the PCI options from ``pfs``, then Nova's set-up."""
        config = nova_config.generate(pfs, nova_config.Settings(),
                                      **generate_kwargs)
        options = config.nova_options()
        self.PCI_DEVICE_SPEC = options[('pci', 'device_spec')]
        self.PCI_ALIAS = options[('pci', 'alias')]
        super().setUp()
        self.flags(group='pci', report_in_placement=True)
        self.flags(group='filter_scheduler', pci_in_placement=True)
        self.flags(sysfs_root=tree, group='multimodal_virt_pci')
        self.useFixture(fixtures.MockPatchObject(
            privsep.sysfs_pctxt, 'client_mode', False))
        self.alias = config.alias[0]['name']
        self.profiles = sriov_profile.SysfsProfiles(tree)


class GpuProfileTest(_ProfileTreeBase):

    PF_DRIVER = 'xe'
    I915_IOV = None

    def setUp(self):
        self.tree = self.useFixture(layouts.SysfsTree(flex170(
            self.PF_DRIVER, self.I915_IOV))).root
        self.pfs = sysfs.discover(self.tree)
        self._set_up_on(self.tree, self.pfs, hostname=HOST)
        self.start_compute(hostname=HOST,
                           pci_info=generated.fake_libvirt_devices(self.pfs))

    def _all_profiles(self):
        return {str(vf.address): self.profiles.read(vf.address)
                for pf in self.pfs for vf in pf.vfs}

    def _vf_of(self, server):
        ctxt = nova_context.get_admin_context()
        (dev,) = objects.PciDeviceList.get_by_instance_uuid(ctxt,
                                                            server['id'])
        return dev.address


def _raw_values(root):
    """Every profile attribute value in the tree (xe and i915 layouts)."""
    for path, _, files in os.walk(os.path.join(root, 'devices')):
        if os.path.basename(path) == 'profile' or re.match(
                r'^gt[0-9]*$', os.path.basename(path)):
            for name in files:
                with open(os.path.join(path, name)) as handle:
                    yield handle.read().strip()


class XeProfileTest(GpuProfileTest):

    def test_profile_on_exactly_the_allocated_vfs_and_restored(self):
        flavor = self._create_flavor(extra_spec=dict(
            PROFILE, **{'pci_passthrough:alias': '%s:1' % self.alias,
                        'multimodal_virt:disk_iothreads': '2',
                        'multimodal_virt:disk_io': 'native'}))
        # A burst: both requests are sent before either is waited for.
        posted = [self.api.post_server({'server': {
            'name': 'gpu-%d' % i, 'flavorRef': flavor,
            'imageRef': '155d900f-4e14-4e4c-a73d-069cbf4541e6',
            'networks': 'none'}}) for i in range(2)]
        servers = [self._wait_for_state_change(s, 'ACTIVE') for s in posted]
        vfs = {self._vf_of(s) for s in servers}
        self.assertEqual(2, len(vfs))
        profiles = self._all_profiles()
        want = {'exec_quantum_ms': '25', 'preempt_timeout_us': '50000',
                'sched_priority': 'high'}
        for address, profile in profiles.items():
            self.assertEqual(want if address in vfs else DEFAULTS, profile,
                             address)

        # The defined guest: Nova's managed hostdev plus our tuning, valid.
        root = etree.fromstring(self.defined.last().encode())
        (dev,) = hostdev.parse_domain_hostdevs(root)
        self.assertIn(str(dev.address), vfs)
        self.assertTrue(dev.managed)
        self.assertEqual('2', root.findtext('iothreads'))
        self.assertTrue(all(
            d.find('driver').get('io') == 'native'
            for d in root.iterfind('devices/disk')
            if d.get('device') == 'disk'))
        validate.validate_domain(root, validate.DomainSchema())

        self._delete_server(servers[0])
        gone = [a for a in vfs if a != self._vf_of(servers[1])][0]
        self.assertEqual(DEFAULTS, self.profiles.read(
            pci_address.PciAddress.parse(gone)))
        self._delete_server(servers[1])
        self.assertEqual({a: DEFAULTS for a in profiles},
                         self._all_profiles())

    def test_profile_without_a_vf_fails_with_a_fault(self):
        flavor = self._create_flavor(extra_spec=PROFILE)
        server = self._create_server(flavor_id=flavor, networks='none',
                                     expected_state='ERROR')
        fault = self.api.get_server(server['id'])['fault']['message']
        self.assertIn('has no VF from a pci_passthrough:alias', fault)


class I915ProfileTest(GpuProfileTest):
    """i915 SR-IOV: drm/card*/iov/vfN/gt*/, no sched_priority."""

    PF_DRIVER = 'i915'
    I915_IOV = ('gt0', 'gt1')

    def test_profile_on_every_gt_of_the_allocated_vfs_and_restored(self):
        flavor = self._create_flavor(extra_spec={
            'pci_passthrough:alias': '%s:1' % self.alias,
            'multimodal_virt:gpu_exec_quantum_ms': '25',
            'multimodal_virt:gpu_preempt_timeout_us': '50000'})
        posted = [self.api.post_server({'server': {
            'name': 'i915-%d' % i, 'flavorRef': flavor,
            'imageRef': '155d900f-4e14-4e4c-a73d-069cbf4541e6',
            'networks': 'none'}}) for i in range(2)]
        servers = [self._wait_for_state_change(s, 'ACTIVE') for s in posted]
        vfs = {self._vf_of(s) for s in servers}
        self.assertEqual(2, len(vfs))
        want = {'exec_quantum_ms': '25', 'preempt_timeout_us': '50000'}
        for address, profile in self._all_profiles().items():
            self.assertEqual(want if address in vfs else I915_DEFAULTS,
                             profile, address)
        # Both tiles of each allocated VF, read file by file.
        for address in vfs:
            for gt in self.I915_IOV:
                self.assertEqual('25', _i915_attr(
                    self.tree, address, gt, 'exec_quantum_ms'))
        for server in servers:
            self._delete_server(server)
        self.assertEqual({'0'}, set(_raw_values(self.tree)))

    def test_sched_priority_on_i915_fails_with_a_clear_fault(self):
        flavor = self._create_flavor(extra_spec=dict(
            PROFILE, **{'pci_passthrough:alias': '%s:1' % self.alias}))
        server = self._create_server(flavor_id=flavor, networks='none',
                                     expected_state='ERROR')
        fault = self.api.get_server(server['id'])['fault']['message']
        self.assertIn('its PF driver i915 has no sched_priority', fault)
        # Nothing was written, no guest defined.
        self.assertEqual({'0'}, set(_raw_values(self.tree)))
        self.assertEqual([], self.defined.documents)


class I915WithoutSriovSysfsTest(GpuProfileTest):

    PF_DRIVER = 'i915'

    def test_driver_without_profiles_fails_with_a_fault(self):
        flavor = self._create_flavor(extra_spec={
            'pci_passthrough:alias': '%s:1' % self.alias,
            'multimodal_virt:gpu_exec_quantum_ms': '25'})
        server = self._create_server(flavor_id=flavor, networks='none',
                                     expected_state='ERROR')
        fault = self.api.get_server(server['id'])['fault']['message']
        self.assertIn('driven by i915 but no drm/card*/iov exists', fault)
        self.assertEqual([], self.defined.documents)


def _i915_attr(root, vf, gt, name):
    for path, _, files in os.walk(os.path.join(root, 'devices')):
        link = os.path.join(os.path.dirname(path), 'device')
        if (os.path.basename(path) == gt and name in files and
                os.path.islink(link) and
                os.path.basename(os.readlink(link)) == vf):
            with open(os.path.join(path, name)) as handle:
                return handle.read().strip()
    raise AssertionError('no %s/%s of %s' % (gt, name, vf))


def two_hosts():
    """compute1 keeps the Flex 170 cards, compute2 gets copies on other
    buses; one sysfs tree holds both (one [multimodal_virt_pci] sysfs_root
    per test process)."""
    layout = flex170('xe')
    moved = []
    for pf, bus in zip(layout['pfs'], ('5d', 'da')):
        copy = dict(pf, address='0000:%s:00.0' % bus)
        copy['iommu_group'] = pf['iommu_group'] + 1000
        moved.append(copy)
    return layout['pfs'], moved


class MoveProfileTest(_ProfileTreeBase):
    """The profile follows the instance when it moves (resize, cold
    migration, evacuation): written on the destination for exactly the VF
    Nova allocated there, and the VF left behind gets its defaults back when
    Nova releases it (confirm, revert, the evacuated source coming back)."""

    def setUp(self):
        first, second = two_hosts()
        self.tree = self.useFixture(layouts.SysfsTree(
            {'pfs': first + second})).root
        pfs = sysfs.discover(self.tree)
        self.host_pfs = {
            'compute1': [pf for pf in pfs if pf.address.bus in (0x4d, 0xca)],
            'compute2': [pf for pf in pfs if pf.address.bus in (0x5d, 0xda)]}
        self._set_up_on(self.tree, pfs)

    @staticmethod
    def _no_disk_copy():
        """As Nova's own PCI resize tests: no disk copy between fake hosts."""
        return fixtures.MockPatch('nova.virt.libvirt.driver.LibvirtDriver'
                                  '.migrate_disk_and_power_off',
                                  return_value='{}')

    def _start(self, host):
        self.start_compute(hostname=host, pci_info=(
            generated.fake_libvirt_devices(self.host_pfs[host])))

    def _vfs_of(self, host):
        return [vf.address for pf in self.host_pfs[host] for vf in pf.vfs]

    def _assert_only(self, written, host):
        """On ``host``, ``written`` ({vf: profile}) and defaults elsewhere."""
        for vf in self._vfs_of(host):
            self.assertEqual(written.get(vf, DEFAULTS),
                             self.profiles.read(vf), '%s %s' % (host, vf))

    def _flavors(self):
        alias = {'pci_passthrough:alias': '%s:1' % self.alias}
        small = self._create_flavor(extra_spec=dict(PROFILE, **alias))
        big = self._create_flavor(memory_mb=4096, extra_spec=dict(
            alias, **{'multimodal_virt:gpu_sched_priority': 'normal',
                      'multimodal_virt:gpu_exec_quantum_ms': '5'}))
        return small, big

    def _vf(self, server, host):
        ctxt = nova_context.get_admin_context()
        buses = {pf.address.bus for pf in self.host_pfs[host]}
        (vf,) = [pci_address.PciAddress.parse(dev.address) for dev in
                 objects.PciDeviceList.get_by_instance_uuid(ctxt,
                                                            server['id'])
                 if pci_address.PciAddress.parse(dev.address).bus in buses]
        return vf

    def test_resize_to_another_host_then_confirm_and_delete(self):
        self._start('compute1')
        alias = {'pci_passthrough:alias': '%s:1' % self.alias}
        small = self._create_flavor(extra_spec=dict(PROFILE, **alias))
        big = self._create_flavor(memory_mb=4096, extra_spec=dict(
            alias, **{'multimodal_virt:gpu_sched_priority': 'normal',
                      'multimodal_virt:gpu_exec_quantum_ms': '5'}))
        server = self._create_server(flavor_id=small, networks='none')
        source = self._vf(server, 'compute1')
        self.assertEqual('high', self.profiles.read(source)['sched_priority'])

        self._start('compute2')
        with self._no_disk_copy():
            server = self._resize_server(server, big)
        self.assertEqual('compute2', server['OS-EXT-SRV-ATTR:host'])
        dest = self._vf(server, 'compute2')
        self.assertEqual({'exec_quantum_ms': '5', 'preempt_timeout_us': '0',
                          'sched_priority': 'normal'},
                         self.profiles.read(dest))
        # Not confirmed yet: the source keeps its VF and profile (revert).
        self.assertEqual('high', self.profiles.read(source)['sched_priority'])

        self._confirm_resize(server)
        self.assertEqual(DEFAULTS, self.profiles.read(source))
        self.assertEqual('normal', self.profiles.read(dest)['sched_priority'])
        self._delete_server(server)
        self.assertEqual(DEFAULTS, self.profiles.read(dest))

    def test_resize_revert_restores_dest_and_reapplies_the_old_flavor(self):
        self._start('compute1')
        small, big = self._flavors()
        server = self._create_server(flavor_id=small, networks='none')
        source = self._vf(server, 'compute1')
        self._start('compute2')
        with self._no_disk_copy():
            server = self._resize_server(server, big)
        dest = self._vf(server, 'compute2')
        self._assert_only({dest: BIG}, 'compute2')
        # Overwrite the source VF, so the revert has to write the old
        # flavor's values, not merely leave them in place.
        self.profiles.write(source, DEFAULTS)

        server = self._revert_resize(server)
        self.assertEqual('compute1', server['OS-EXT-SRV-ATTR:host'])
        self._assert_only({}, 'compute2')
        self._assert_only({source: SMALL}, 'compute1')
        self.assertEqual([str(source)], self._instance_vfs(server))
        self._delete_server(server)
        self._assert_only({}, 'compute1')

    def test_cold_migrate_then_confirm(self):
        self._start('compute1')
        small, _ = self._flavors()
        server = self._create_server(flavor_id=small, networks='none')
        source = self._vf(server, 'compute1')
        self._start('compute2')
        with self._no_disk_copy():
            server = self._migrate_server(server)
        self.assertEqual('compute2', server['OS-EXT-SRV-ATTR:host'])
        dest = self._vf(server, 'compute2')
        self._assert_only({dest: SMALL}, 'compute2')
        self._assert_only({source: SMALL}, 'compute1')  # until confirmed

        self._confirm_resize(server)
        self._assert_only({}, 'compute1')
        self._assert_only({dest: SMALL}, 'compute2')

    def test_evacuate_then_the_source_comes_back(self):
        self._evacuate_then_the_source_comes_back(guest_kept=True)

    def test_evacuate_then_the_source_comes_back_without_the_guest(self):
        # The source lost its domain (reinstalled host): Nova destroys
        # nothing there, the driver's init_host restores from Nova's
        # evacuation record.
        self._evacuate_then_the_source_comes_back(guest_kept=False)

    def _evacuate_then_the_source_comes_back(self, guest_kept):
        self._start('compute1')
        small, _ = self._flavors()
        server = self._create_server(flavor_id=small, networks='none')
        source = self._vf(server, 'compute1')
        self._start('compute2')

        self.computes['compute1'].stop()
        self.api.put_service(self.computes['compute1'].service_ref.uuid,
                             {'forced_down': True})
        server = self._evacuate_server(server, expected_host='compute2')
        dest = self._vf(server, 'compute2')
        self._assert_only({dest: SMALL}, 'compute2')
        # The source is down: nothing can reach its VF yet.
        self._assert_only({source: SMALL}, 'compute1')

        # It comes back: Nova destroys the evacuated guest on init_host
        # (_destroy_evacuated_instances) and our driver restores the VF.
        connection = self.computes['compute1'].driver._host.get_connection()
        self.assertEqual(1, len(connection._vms))
        if not guest_kept:
            connection._vms.clear()
            connection._running_vms.clear()
        destroyed = []
        original = libvirt_driver.LibvirtDriver.destroy

        def destroy(driver, context, instance, *args, **kwargs):
            destroyed.append(instance.uuid)
            return original(driver, context, instance, *args, **kwargs)

        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.driver.LibvirtDriver.destroy', destroy))
        self.restart_compute_service('compute1')
        self.assertEqual([server['id']] if guest_kept else [], destroyed)
        self.api.put_service(self.computes['compute1'].service_ref.uuid,
                             {'forced_down': False})
        self._assert_only({}, 'compute1')
        self._assert_only({dest: SMALL}, 'compute2')
        self.assertEqual([str(dest)], self._instance_vfs(server))
        self._delete_server(server)
        self._assert_only({}, 'compute2')

    def _instance_vfs(self, server):
        ctxt = nova_context.get_admin_context()
        return sorted(dev.address for dev in
                      objects.PciDeviceList.get_by_instance_uuid(
                          ctxt, server['id']))
