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
* spawn / delete / resize: the flavor's GPU VF scheduling profile written
  to the VFs Nova allocated, defaults restored when they are released
  (:mod:`.gpu_profiles`).

Tested with Nova 34 (``nova>=34,<35`` in requirements): it overrides the
private ``_get_guest_xml``, whose signature changes between releases.
"""

from nova.virt.libvirt import driver as libvirt_driver
from oslo_log import log as logging

from multimodal_virt.compute import guest_tuning
from multimodal_virt.compute import latency_traits
from multimodal_virt.compute import specs
from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt.libvirt_xml import validate
from multimodal_virt.stores import loader

LOG = logging.getLogger(__name__)
CONF = mmv_conf.CONF


class LibvirtDriver(libvirt_driver.LibvirtDriver):
    """Nova's ``LibvirtDriver`` with the multimodal-virt hooks."""

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        group = CONF.multimodal_virt_compute
        self._domain_schema = validate.DomainSchema(
            CONF.multimodal_virt_libvirt.domain_schema)
        self._latency_traits = latency_traits.LatencyTraits(
            group, CONF.host, lambda: loader.get_store(CONF))

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
            raise guest_tuning.errors.UnsupportedFlavorSpec(reason=str(err))
        if not tuning:
            return xml
        guest_tuning.check_host(tuning, self._host)
        tuned = guest_tuning.tune(xml, tuning, self._domain_schema)
        LOG.debug('Tuned guest XML: %s', tuned, instance=instance)
        return tuned
