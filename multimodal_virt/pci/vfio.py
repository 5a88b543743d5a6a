"""Validated sysfs paths and the writes that move a VF to the vfio driver.

The sequence (the kernel's documented one for ``driver_override``)::

    echo vfio-pci     > <sysfs>/bus/pci/devices/<addr>/driver_override
    echo <addr>       > <sysfs>/bus/pci/devices/<addr>/driver/unbind
    echo <addr>       > <sysfs>/bus/pci/drivers/vfio-pci/bind

Every path is built from a validated sysfs root, a :class:`PciAddress` and
a driver name matching ``[A-Za-z0-9_-]+``, and must resolve inside the
sysfs root. Files are opened for writing without ``O_CREAT`` (sysfs files
always exist) and without following a final symlink. The functions here do
the writes with the caller's privileges; :mod:`multimodal_virt.privileged`
runs them in the privsep daemon.
"""

import os
import re

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address

LOG = logging.getLogger(__name__)

_DRIVER_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')


def validate_sysfs_root(root):
    """Check a sysfs root: absolute, normalised, symlink-free, has PCI.

    :param root: e.g. ``/sys`` (or a fake tree in tests).
    :returns: ``root`` unchanged.
    :raises VfioBindError: naming the bad root.
    """
    if not isinstance(root, str) or not os.path.isabs(root):
        raise exception.VfioBindError(
            'sysfs root %r must be an absolute path such as /sys' % (root,))
    if os.path.normpath(root) != root or os.path.realpath(root) != root:
        raise exception.VfioBindError(
            'sysfs root %r must be normalised and free of symlinks '
            '(resolves to %r)' % (root, os.path.realpath(root)))
    if not os.path.isdir(os.path.join(root, 'bus', 'pci', 'devices')):
        raise exception.VfioBindError(
            'sysfs root %r has no bus/pci/devices directory' % root)
    return root


def validate_driver(driver):
    """Check a kernel driver name (``vfio-pci``).

    :raises VfioBindError: naming the bad name.
    """
    if not isinstance(driver, str) or not _DRIVER_RE.match(driver):
        raise exception.VfioBindError(
            'driver name %r: expected letters, digits, "-" or "_" '
            '(e.g. vfio-pci)' % (driver,))
    return driver


def as_address(address):
    """Return ``address`` as a :class:`PciAddress` (parsing a string).

    :raises InvalidPciAddress: naming the bad address.
    """
    if isinstance(address, pci_address.PciAddress):
        return address
    return pci_address.PciAddress.parse(address)


def _inside(root, path):
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep):
        raise exception.VfioBindError(
            'sysfs path %s resolves to %s, outside the sysfs root %s'
            % (path, real, root))
    return path


def device_dir(root, address):
    """Return ``<root>/bus/pci/devices/<address>`` after checking it.

    :param root: a sysfs root (validated here).
    :param address: :class:`PciAddress` or its string form.
    :raises VfioBindError: when the device does not exist or escapes root.
    """
    root = validate_sysfs_root(root)
    address = as_address(address)
    path = os.path.join(root, 'bus', 'pci', 'devices', str(address))
    if not os.path.isdir(path):
        raise exception.VfioBindError(
            'PCI device %s not found (%s does not exist)' % (address, path))
    return _inside(root, path)


def driver_dir(root, driver):
    """Return ``<root>/bus/pci/drivers/<driver>`` after checking it.

    :raises VfioBindError: when the driver is not loaded.
    """
    root = validate_sysfs_root(root)
    path = os.path.join(root, 'bus', 'pci', 'drivers',
                        validate_driver(driver))
    if not os.path.isdir(path):
        raise exception.VfioBindError(
            'PCI driver %s is not loaded (%s does not exist; try '
            '"modprobe %s")' % (driver, path, driver))
    return _inside(root, path)


def current_driver(root, address):
    """Return the name of the driver bound to a device, or None.

    :param root: a sysfs root.
    :param address: :class:`PciAddress` or its string form.
    """
    link = os.path.join(device_dir(root, address), 'driver')
    if not os.path.islink(link):
        return None
    return os.path.basename(os.readlink(link))


def _write(root, path, text):
    _inside(root, os.path.dirname(path))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW
                     | os.O_CLOEXEC)  # as "echo >": no O_CREAT
    except OSError as err:
        raise exception.VfioBindError('cannot open %s for writing: %s'
                                      % (path, err))
    try:
        os.write(fd, text.encode('ascii'))
    except OSError as err:
        raise exception.VfioBindError('writing %r to %s failed: %s'
                                      % (text, path, err))
    finally:
        os.close(fd)


def rebind(root, address, driver):
    """Bind a device to ``driver`` through ``driver_override``.

    Idempotent: a device already on ``driver`` only gets its override set.

    :param root: a sysfs root.
    :param address: :class:`PciAddress` or its string form.
    :param driver: target driver name (``vfio-pci``).
    :returns: the name of the driver the device had before, or None.
    :raises VfioBindError: naming the path that failed.
    """
    address = as_address(address)
    dev = device_dir(root, address)
    target = driver_dir(root, driver)
    previous = current_driver(root, address)
    _write(root, os.path.join(dev, 'driver_override'), driver + '\n')
    if previous == driver:
        return previous
    if previous is not None:
        _write(root, os.path.join(dev, 'driver', 'unbind'), str(address))
    _write(root, os.path.join(target, 'bind'), str(address))
    LOG.info('Rebound PCI device %s from %s to %s', address,
             previous or '(no driver)', driver)
    return previous


def restore(root, address, driver):
    """Undo :func:`rebind`: clear the override and let the host re-probe.

    :param root: a sysfs root.
    :param address: :class:`PciAddress` or its string form.
    :param driver: the driver to release the device from (``vfio-pci``).
    :returns: the name of the driver the device had before, or None.
    """
    address = as_address(address)
    dev = device_dir(root, address)
    validate_driver(driver)
    previous = current_driver(root, address)
    _write(root, os.path.join(dev, 'driver_override'), '\n')
    if previous == driver:
        _write(root, os.path.join(dev, 'driver', 'unbind'), str(address))
    _write(root, os.path.join(root, 'bus', 'pci', 'drivers_probe'),
           str(address))
    return previous
