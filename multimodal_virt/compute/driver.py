"""``multimodal_virt.LibvirtDriver``: Nova's libvirt driver plus our hooks.

Enable in nova.conf of a compute host::

    [DEFAULT]
    compute_driver = multimodal_virt.LibvirtDriver

Everything else is Nova's libvirt driver, unchanged. The subclass adds:

* ``update_provider_tree``: after Nova's own, latency-tier traits on the
  compute node provider (:mod:`.latency_traits`);
* ``_get_guest_xml``: the flavor's disk tuning applied to the XML Nova
  built and validated against libvirt's schema (:mod:`.guest_tuning`); a
  flavor without our specs gets Nova's XML byte for byte;
* spawn / delete / resize / cold migration / revert / evacuation: the
  flavor's GPU VF scheduling profile written to the VFs Nova allocated on
  this host, defaults restored when they are released, including the VF an
  evacuated instance left here, when this host comes back (``init_host``
  from Nova's evacuation records, and ``cleanup`` when Nova destroys the
  guest) (:mod:`.gpu_profiles`).

Tested with Nova 34 (``nova>=34,<35`` in requirements): it overrides the
private ``_get_guest_xml``, whose signature changes between releases.
"""

from nova import context as nova_context
from nova.virt.libvirt import driver as libvirt_driver
from nova import version as nova_version
from oslo_log import log as logging
from oslo_utils import excutils

from multimodal_virt.compute import errors
from multimodal_virt.compute import gpu_profiles
from multimodal_virt.compute import guest_tuning
from multimodal_virt.compute import latency_traits
from multimodal_virt.compute import specs
from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt.libvirt_xml import validate
from multimodal_virt.stores import loader

LOG = logging.getLogger(__name__)
CONF = mmv_conf.CONF
#: Nova release this driver is written and tested against.
TESTED_NOVA_MAJOR = 34


class LibvirtDriver(libvirt_driver.LibvirtDriver):
    """Nova's ``LibvirtDriver`` with the multimodal-virt hooks."""

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        running = nova_version.version_string()
        if running.split('.')[0] != str(TESTED_NOVA_MAJOR):
            LOG.warning('multimodal_virt.LibvirtDriver is tested with Nova '
                        '%(tested)s.x, this is Nova %(running)s: it overrides '
                        'private driver methods that change between releases',
                        {'tested': TESTED_NOVA_MAJOR, 'running': running})
        group = CONF.multimodal_virt_compute
        self._domain_schema = validate.DomainSchema(
            CONF.multimodal_virt_libvirt.domain_schema)
        self._latency_traits = latency_traits.LatencyTraits(
            group, CONF.host, lambda: loader.get_store(CONF))
        self._gpu_profiles = gpu_profiles.GpuProfiles(group, CONF.host)

    def init_host(self, host):
        super().init_host(host)
        # Before Nova's _destroy_evacuated_instances, which restores only
        # the VFs of guests it still finds here.
        self._gpu_profiles.restore_evacuated(
            nova_context.get_admin_context())

    # -- Placement -------------------------------------------------------

    def update_provider_tree(self, provider_tree, nodename,
                             allocations=None):
        super().update_provider_tree(provider_tree, nodename,
                                     allocations=allocations)
        self._latency_traits.update(provider_tree, nodename)

    # -- guest definition ------------------------------------------------

    def _get_guest_xml(self, context, instance, *args, **kwargs):
        xml = super()._get_guest_xml(context, instance, *args, **kwargs)
        try:
            tuning = specs.guest_tuning(instance.flavor.extra_specs)
        except exception.InvalidExtraSpec as err:
            raise errors.UnsupportedFlavorSpec(reason=str(err))
        if not tuning:
            return xml
        guest_tuning.check_host(tuning, self._host)
        tuned = guest_tuning.tune(xml, tuning, self._domain_schema)
        LOG.debug('Tuned guest XML: %s', tuned, instance=instance)
        return tuned

    # -- GPU VF scheduling profiles ---------------------------------------

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        # Before the guest starts, so its first GPU job already runs with
        # the flavor's profile.
        self._gpu_profiles.apply(context, instance)
        try:
            super().spawn(context, instance, image_meta, injected_files,
                          admin_password, allocations,
                          network_info=network_info,
                          block_device_info=block_device_info,
                          power_on=power_on, accel_info=accel_info)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._gpu_profiles.restore(context, instance)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        super().cleanup(context, instance, network_info,
                        block_device_info=block_device_info,
                        destroy_disks=destroy_disks,
                        migrate_data=migrate_data, destroy_vifs=destroy_vifs,
                        destroy_secrets=destroy_secrets)
        self._gpu_profiles.restore(context, instance)

    def finish_migration(self, context, migration, instance, disk_info,
                         network_info, image_meta, resize_instance,
                         allocations, block_device_info=None, power_on=True,
                         share_info=None):
        # Nova has applied the migration context: the instance's PCI
        # devices and flavor are the new ones, on this host.
        self._gpu_profiles.apply(context, instance)
        super().finish_migration(context, migration, instance, disk_info,
                                 network_info, image_meta, resize_instance,
                                 allocations,
                                 block_device_info=block_device_info,
                                 power_on=power_on, share_info=share_info)

    def confirm_migration(self, context, migration, instance, network_info):
        super().confirm_migration(context, migration, instance, network_info)
        mig_ctx = instance.migration_context
        if mig_ctx is not None and mig_ctx.old_pci_devices:
            self._gpu_profiles.restore(
                context, instance, devices=mig_ctx.old_pci_devices.objects,
                flavor=instance.old_flavor or instance.flavor)

    def finish_revert_migration(self, context, instance, network_info,
                                migration, block_device_info=None,
                                power_on=True, share_info=None):
        self._gpu_profiles.apply(context, instance)
        super().finish_revert_migration(
            context, instance, network_info, migration,
            block_device_info=block_device_info, power_on=power_on,
            share_info=share_info)
