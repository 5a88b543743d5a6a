"""Bind VFs to vfio-pci (and back) through the privsep daemon.

The entrypoints take plain strings (they cross the privsep channel) and
validate them again on the privileged side: the sysfs root, the PCI
address and the driver name. ``bind_vfio``/``unbind_vfio`` are the
unprivileged wrappers callers use; they verify the result by reading sysfs.
"""

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.pci import vfio as pci_vfio
from multimodal_virt import privsep

LOG = logging.getLogger(__name__)


@privsep.sys_admin_pctxt.entrypoint
def set_driver(sysfs_root, address, driver):
    """Privileged: bind ``address`` to ``driver`` via driver_override.

    :param sysfs_root: validated sysfs root (``/sys``).
    :param address: PCI address string ``DDDD:BB:SS.F``.
    :param driver: driver name, e.g. ``vfio-pci``.
    :returns: the previous driver name or None.
    """
    return pci_vfio.rebind(pci_vfio.validate_sysfs_root(sysfs_root),
                           pci_vfio.as_address(address),
                           pci_vfio.validate_driver(driver))


@privsep.sys_admin_pctxt.entrypoint
def clear_driver(sysfs_root, address, driver):
    """Privileged: clear the override, unbind from ``driver``, re-probe.

    :returns: the previous driver name or None.
    """
    return pci_vfio.restore(pci_vfio.validate_sysfs_root(sysfs_root),
                            pci_vfio.as_address(address),
                            pci_vfio.validate_driver(driver))


def bind_vfio(address, sysfs_root='/sys', driver='vfio-pci'):
    """Bind a VF to ``driver`` (through privsep) and check it took.

    :param address: :class:`PciAddress` (or its string form).
    :param sysfs_root: sysfs root, ``[multimodal_virt_libvirt] sysfs_root``.
    :param driver: ``[multimodal_virt_libvirt] vfio_driver``.
    :returns: the driver the VF had before (for :func:`unbind_vfio`).
    :raises VfioBindError: when the kernel did not bind it.
    """
    address = pci_vfio.as_address(address)
    pci_vfio.device_dir(sysfs_root, address)  # clear errors before the hop
    pci_vfio.driver_dir(sysfs_root, driver)
    previous = set_driver(sysfs_root, str(address), driver)
    now = pci_vfio.current_driver(sysfs_root, address)
    if now != driver:
        raise exception.VfioBindError(
            'PCI device %s is bound to %s after the bind, expected %s (is '
            'its IOMMU group viable and the driver loaded?)'
            % (address, now or '(no driver)', driver))
    LOG.debug('PCI device %s bound to %s (was %s)', address, driver,
              previous)
    return previous


def unbind_vfio(address, sysfs_root='/sys', driver='vfio-pci'):
    """Release a VF from ``driver`` so the host driver can take it back.

    :returns: the driver now bound (host driver or None).
    """
    address = pci_vfio.as_address(address)
    pci_vfio.device_dir(sysfs_root, address)
    clear_driver(sysfs_root, str(address), driver)
    return pci_vfio.current_driver(sysfs_root, address)


def bind_configured(conf, address):
    """:func:`bind_vfio` with ``[multimodal_virt_libvirt]`` sysfs_root and
    vfio_driver from ``conf``.

    :returns: the driver the VF had before.
    """
    group = conf.multimodal_virt_libvirt
    return bind_vfio(address, group.sysfs_root, group.vfio_driver)


def unbind_configured(conf, address):
    """:func:`unbind_vfio` with the configured sysfs root and driver.

    :returns: the driver now bound (host driver or None).
    """
    group = conf.multimodal_virt_libvirt
    return unbind_vfio(address, group.sysfs_root, group.vfio_driver)
