"""Privileged writes of GPU VF scheduling profiles (runs in the daemon).

The entry point takes only a VF address and ``{attribute: value}``; it
re-validates both and takes everything else from the daemon's own
configuration (nova-compute's config files):

* the sysfs root: ``[multimodal_virt_pci] sysfs_root``;
* which VFs may be touched: only VFs that Nova's ``[pci] device_spec``
  matches (checked with Nova's ``Whitelist``), whose PF lists them as a
  ``virtfn`` and is driven by a driver with per-VF profiles;
* attribute names from a fixed list, values within the flavor bounds, and
  only those the PF driver has (:data:`sriov_profile.DRIVER_ATTRIBUTES`);
* restored defaults from its own ``[multimodal_virt_compute]
  gpu_default_*`` options.

Paths are walked with ``openat``/``O_NOFOLLOW``
(:mod:`multimodal_virt.pci.sriov_profile`).
"""

from nova.pci import whitelist
from oslo_config import cfg

from multimodal_virt.compute import specs
from multimodal_virt import conf as mmv_conf  # noqa: F401 (registers opts)
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import device
from multimodal_virt.pci import sriov_profile
from multimodal_virt import privsep

CONF = cfg.CONF


def validate_attributes(attributes):
    """Return ``{name: text}`` checked against the flavor spec bounds.

    :raises ProfileError: unknown name or out-of-range value.
    """
    if not isinstance(attributes, dict) or not attributes:
        raise sriov_profile.ProfileError(
            'profile must be a non-empty dict, got %r' % (attributes,))
    keys = {'sched_priority': specs.GPU_SCHED_PRIORITY,
            'exec_quantum_ms': specs.GPU_EXEC_QUANTUM_MS,
            'preempt_timeout_us': specs.GPU_PREEMPT_TIMEOUT_US}
    unknown = set(attributes) - set(keys)
    if unknown:
        raise sriov_profile.ProfileError(
            'unknown profile attribute(s) %s' % ', '.join(sorted(
                map(repr, unknown))))
    try:
        profile = specs.gpu_profile({keys[name]: value for name, value
                                     in attributes.items()})
    except Exception as err:  # InvalidExtraSpec: name the value
        raise sriov_profile.ProfileError(str(err))
    return profile.attributes()


def _check_device_spec(profiles, vf):
    vendor, product, pf = profiles.vf_ids(vf)
    try:
        vendor = device.normalize_id(vendor, 'vendor')
        product = device.normalize_id(product, 'device')
    except Exception as err:
        raise sriov_profile.ProfileError('VF %s: %s' % (vf, err))
    spec = whitelist.Whitelist(CONF.pci.device_spec)
    if spec.device_assignable({
            'vendor_id': vendor, 'product_id': product,
            'address': str(vf), 'parent_addr': str(pf),
            'dev_type': device.DEV_TYPE_VF}) is None:
        raise sriov_profile.ProfileError(
            'VF %s is not matched by nova.conf [pci] device_spec' % vf)


def _profiles_for(vf):
    profiles = sriov_profile.SysfsProfiles(
        CONF.multimodal_virt_pci.sysfs_root)
    _check_device_spec(profiles, vf)
    return profiles


@privsep.sysfs_pctxt.entrypoint
def write_vf_profile(vf_address, attributes):
    """Privileged: write a scheduling profile to one VF.

    :param vf_address: VF PCI address string ``DDDD:BB:SS.F``.
    :param attributes: ``{attribute: value}`` (see
        :data:`~multimodal_virt.pci.sriov_profile.ATTRIBUTES`).
    :returns: the attributes written.
    """
    vf = pci_address.PciAddress.parse(vf_address)
    checked = validate_attributes(attributes)
    return _profiles_for(vf).write(vf, checked)


@privsep.sysfs_pctxt.entrypoint
def restore_vf_profile(vf_address):
    """Privileged: write the configured defaults back to one VF.

    The values come from the daemon's own ``[multimodal_virt_compute]
    gpu_default_*`` options, never from the caller; only the attributes the
    VF's PF driver has are written (i915 has no ``sched_priority``).

    :param vf_address: VF PCI address string ``DDDD:BB:SS.F``.
    :returns: the attributes written.
    """
    vf = pci_address.PciAddress.parse(vf_address)
    defaults = specs.default_gpu_profile(
        CONF.multimodal_virt_compute).attributes()
    return _profiles_for(vf).write(vf, defaults, only_supported=True)
