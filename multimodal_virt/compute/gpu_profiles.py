"""GPU VF scheduling profiles for the VFs Nova allocated to an instance.

On spawn (and when a resize or migration lands here) the flavor's profile
(:func:`multimodal_virt.compute.specs.gpu_profile`) is written through
privsep to every flavor-alias VF of the instance on this host; when the
instance is deleted or leaves this host the configured defaults are written
back. Only VFs whose ``compute_node_id`` is one of this host's compute
nodes are touched, so a move never rewrites another host's addresses here.
"""

from nova import exception as nova_exception
from nova import objects
from nova.objects import fields
from nova import utils as nova_utils
from oslo_log import log as logging

from multimodal_virt.compute import errors
from multimodal_virt.compute import specs
from multimodal_virt import exception
from multimodal_virt.privileged import gpu_profile

LOG = logging.getLogger(__name__)


def _port_request_ids(instance):
    """Request ids of the instance's Neutron-port PCI requests, current and
    on both sides of a move in progress."""
    lists = [instance.pci_requests]
    context = instance.migration_context
    if context is not None:
        lists += [context.old_pci_requests, context.new_pci_requests]
    return {req.request_id for requests in lists if requests
            for req in requests.requests
            if req.source == objects.InstancePCIRequest.NEUTRON_PORT}


def _flavor_vfs(instance, devices=None):
    """The VFs among ``devices`` (default: the instance's) that no Neutron
    port asked for.

    Not Nova's ``Instance.get_pci_devices(source=...)``: it looks requests
    up in ``instance.pci_requests`` only, and during a resize revert or
    after an evacuation the devices of the other side carry request ids of
    the other side's requests (a KeyError there). A VF whose request is no
    longer known is a flavor-alias VF unless a Neutron port names it.
    """
    if devices is None:
        devices = instance.pci_devices.objects if instance.pci_devices else []
    ports = _port_request_ids(instance)
    return [dev for dev in devices
            if dev.dev_type == fields.PciDeviceType.SRIOV_VF and (
                dev.request_id is None or dev.request_id not in ports)]


class GpuProfiles:
    """Applies and restores profiles for one nova-compute.

    :param group: the ``[multimodal_virt_compute]`` option group.
    :param host: nova-compute's ``CONF.host``.
    :param writer: callable(vf address, {attribute: value}); the privsep
        entry point by default.
    :param restorer: callable(vf address) writing the defaults; the privsep
        entry point by default.
    """

    def __init__(self, group, host, writer=None, restorer=None):
        self.group = group
        self.host = host
        self._write = writer or gpu_profile.write_vf_profile
        self._restore_vf = restorer or gpu_profile.restore_vf_profile
        self._node_ids = None

    def _local_ids(self, context):
        if not self._node_ids:  # none yet on a first start: ask again
            nodes = objects.ComputeNodeList.get_all_by_host(context,
                                                            self.host)
            self._node_ids = {node.id for node in nodes}
        return self._node_ids

    def _local(self, context, devices):
        ids = self._local_ids(context)
        return [dev for dev in devices if dev.compute_node_id in ids]

    def apply(self, context, instance, flavor=None):
        """Write the flavor's profile to the instance's local VFs.

        :raises UnsupportedFlavorSpec: the flavor asks for a profile and a
            VF cannot take it (no VF, driver without profiles, device_spec).
        """
        flavor = flavor or instance.flavor
        try:
            profile = specs.gpu_profile(flavor.extra_specs)
        except exception.InvalidExtraSpec as err:
            raise errors.UnsupportedFlavorSpec(reason=str(err))
        if not profile:
            return []
        vfs = self._local(context, _flavor_vfs(instance))
        if not vfs:
            raise errors.UnsupportedFlavorSpec(
                reason='the flavor asks for a GPU VF scheduling profile '
                       '(multimodal_virt:gpu_*) but the instance has no VF '
                       'from a pci_passthrough:alias on this host')
        written = []
        for dev in vfs:
            try:
                self._write(dev.address, profile.attributes())
            except exception.MultimodalVirtError as err:
                self.restore(context, instance, devices=written,
                             flavor=flavor)
                raise errors.UnsupportedFlavorSpec(
                    reason='GPU VF %s cannot take the scheduling profile: '
                           '%s' % (dev.address, err))
            written.append(dev)
            LOG.info('GPU VF %(vf)s scheduling profile: %(profile)s',
                     {'vf': dev.address, 'profile': profile.attributes()},
                     instance=instance)
        return [dev.address for dev in written]

    def restore(self, context, instance, devices=None, flavor=None):
        """Write the defaults back; failures are logged, never raised.

        :param devices: the PCI devices released (default: the instance's
            devices on this host).
        :param flavor: the flavor whose profile was applied (default: the
            instance's).
        :returns: the VF addresses restored.
        """
        try:
            return self._restore(context, instance, devices, flavor)
        except Exception as err:  # never fail a delete, a move, a restart
            LOG.warning('Could not restore the default GPU VF scheduling '
                        'profiles: %s', err, instance=instance)
            return []

    def restore_evacuated(self, context):
        """Defaults on the VFs that instances evacuated from this host left
        here; called when nova-compute starts (driver ``init_host``).

        Nova destroys an evacuated guest it still finds in this hypervisor
        (then :meth:`restore` runs from ``cleanup``); a guest that is gone
        (host reinstalled, domain lost) is never destroyed, so its VFs are
        found from Nova's evacuation records instead (the ones Nova's
        ``_destroy_evacuated_instances`` reads). Writing the defaults twice
        is harmless. Never raises.

        :returns: the VF addresses restored.
        """
        try:
            with nova_utils.temporary_mutation(context, read_deleted='yes'):
                migrations = objects.MigrationList.get_by_filters(context, {
                    'source_compute': self.host,
                    'status': ['accepted', 'pre-migrating', 'done'],
                    'migration_type': fields.MigrationType.EVACUATION})
            restored = []
            for migration in migrations:
                restored += self._restore_left(context,
                                               migration.instance_uuid)
            return restored
        except Exception as err:  # never stop nova-compute from starting
            LOG.warning('Could not restore the GPU VF scheduling profiles '
                        'of instances evacuated from %(host)s: %(err)s',
                        {'host': self.host, 'err': err})
            return []

    def _restore_left(self, context, instance_uuid):
        devices = objects.PciDeviceList.get_by_instance_uuid(
            context, instance_uuid).objects
        if not self._local(context, devices):
            return []
        try:
            with nova_utils.temporary_mutation(context, read_deleted='yes'):
                instance = objects.Instance.get_by_uuid(
                    context, instance_uuid,
                    expected_attrs=['flavor', 'pci_requests',
                                    'migration_context'])
        except nova_exception.InstanceNotFound:
            return []
        return self.restore(context, instance, devices=devices)

    def _restore(self, context, instance, devices, flavor):
        flavor = flavor or instance.flavor
        try:
            if not specs.gpu_profile(flavor.extra_specs):
                return []
        except exception.InvalidExtraSpec:
            pass  # whatever was written, put the defaults back
        devices = _flavor_vfs(instance, devices)
        restored = []
        for dev in self._local(context, devices):
            try:
                self._restore_vf(dev.address)
                restored.append(dev.address)
            except Exception as err:  # never fail a delete
                LOG.warning('Could not restore the default scheduling '
                            'profile of GPU VF %(vf)s: %(err)s',
                            {'vf': dev.address, 'err': err},
                            instance=instance)
        return restored
