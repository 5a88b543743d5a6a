"""Shim that lets Nova load the multimodal-virt libvirt driver.

Nova 34 imports ``[DEFAULT] compute_driver`` only as ``nova.virt.<name>``
(``nova.virt.driver.load_compute_driver``), so this distribution ships this
one module under ``nova/virt/`` and operators set::

    [DEFAULT]
    compute_driver = multimodal_virt.LibvirtDriver

All logic lives in :mod:`multimodal_virt.compute`; this file only re-exports.
"""

from multimodal_virt.compute.driver import LibvirtDriver

__all__ = ['LibvirtDriver']
