"""oslo.privsep contexts of multimodal-virt.

Entrypoints decorated with a context here run in a separate root daemon
that keeps only the listed capabilities. nova-compute starts the daemon on
first use through ``privsep-helper`` (option group
``[multimodal_virt_privsep]``, registered by oslo.privsep, e.g.
``helper_command``), with nova-compute's own config files: the daemon reads
its sysfs root and Nova's ``[pci] device_spec`` from them, never from the
caller.
"""

from oslo_privsep import capabilities
from oslo_privsep import priv_context

#: Writes root-owned sysfs attributes (GPU VF profiles): DAC override only.
sysfs_pctxt = priv_context.PrivContext(
    'multimodal_virt',
    cfg_section='multimodal_virt_privsep',
    pypath=__name__ + '.sysfs_pctxt',
    capabilities=[capabilities.CAP_DAC_OVERRIDE],
)
