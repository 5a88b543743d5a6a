"""Which of an instance's PCI devices get a GPU VF profile, and restore
never raising (pure logic over Nova objects, no database)."""

from unittest import mock
import uuid

from nova import objects
from nova.objects import fields

from multimodal_virt.compute import gpu_profiles
from tests import base

objects.register_all()
PORT = objects.InstancePCIRequest.NEUTRON_PORT
ALIAS = objects.InstancePCIRequest.FLAVOR_ALIAS
VF = fields.PciDeviceType.SRIOV_VF
PF = fields.PciDeviceType.SRIOV_PF


UUIDS = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name))
         for name in ('a', 'p', 'old', 'new', 'old-port')}


def _dev(address, request_id, dev_type=VF, node=1):
    return objects.PciDevice(address=address, request_id=UUIDS[request_id],
                             dev_type=dev_type, compute_node_id=node)


def _requests(*pairs):
    # Nova derives a request's source from alias_name (None: a port).
    return objects.InstancePCIRequests(requests=[
        objects.InstancePCIRequest(
            request_id=UUIDS[rid],
            alias_name='gpu' if source == ALIAS else None)
        for rid, source in pairs])


def _instance(devices, requests, old=None, new=None,
              extra_specs=None):
    instance = objects.Instance(
        uuid='6a5e1f4e-0f8a-4c1e-9d4c-6b1a2f0e9c11',
        pci_devices=objects.PciDeviceList(objects=devices),
        pci_requests=requests,
        flavor=objects.Flavor(extra_specs=extra_specs or {
            'multimodal_virt:gpu_sched_priority': 'high'}),
        migration_context=None)
    if old or new:
        instance.migration_context = objects.MigrationContext(
            old_pci_requests=old, new_pci_requests=new)
    return instance


class FlavorVfsTest(base.TestCase):

    def test_port_vfs_and_pfs_are_left_out(self):
        instance = _instance(
            [_dev('0000:4d:00.1', 'a'), _dev('0000:4d:00.2', 'p'),
             _dev('0000:4d:00.0', 'a', dev_type=PF)],
            _requests(('a', ALIAS), ('p', PORT)))
        self.assertEqual(['0000:4d:00.1'], [
            d.address for d in gpu_profiles._flavor_vfs(instance)])

    def test_a_vf_of_a_request_no_longer_known_counts(self):
        # After an evacuation or during a revert the other side's devices
        # carry request ids the current requests do not list (Nova's
        # get_pci_devices raises KeyError there).
        instance = _instance(
            [_dev('0000:4d:00.1', 'old'), _dev('0000:5d:00.1', 'new'),
             _dev('0000:5d:00.2', 'old-port')],
            _requests(('new', ALIAS)),
            old=_requests(('old-port', PORT)))
        self.assertEqual(['0000:4d:00.1', '0000:5d:00.1'], [
            d.address for d in gpu_profiles._flavor_vfs(instance)])


class RestoreTest(base.TestCase):

    def _profiles(self, restorer):
        profiles = gpu_profiles.GpuProfiles(
            self.conf.multimodal_virt_compute, 'h', writer=mock.Mock(),
            restorer=restorer)
        profiles._node_ids = {1}
        return profiles

    def test_restore_writes_defaults_to_local_vfs_only(self):
        writer = mock.Mock()
        instance = _instance([_dev('0000:4d:00.1', 'a'),
                              _dev('0000:5d:00.1', 'a', node=2)],
                             _requests(('a', ALIAS)))
        self.assertEqual(['0000:4d:00.1'],
                         self._profiles(writer).restore(None, instance))
        writer.assert_called_once_with('0000:4d:00.1')

    def test_restore_never_raises(self):
        instance = _instance([_dev('0000:4d:00.1', 'a')],
                             _requests(('a', ALIAS)))
        instance.pci_devices = None
        broken = mock.Mock(side_effect=AssertionError('not reached'))
        profiles = self._profiles(broken)
        with mock.patch.object(gpu_profiles, '_flavor_vfs',
                               side_effect=KeyError('request')):
            self.assertEqual([], profiles.restore(None, instance))
        broken.assert_not_called()

    def test_restore_evacuated_never_raises(self):
        profiles = self._profiles(mock.Mock())
        with mock.patch.object(objects.MigrationList, 'get_by_filters',
                               side_effect=RuntimeError('db down')):
            self.assertEqual([], profiles.restore_evacuated(
                mock.MagicMock()))
