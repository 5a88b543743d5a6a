"""oslo.privsep contexts of multimodal-virt.

Entrypoints decorated with a context here run in a separate root daemon
that keeps only the listed capabilities. The daemon is started on first
use through ``privsep-helper`` (option group ``[multimodal_virt_privsep]``,
registered by oslo.privsep, e.g. ``helper_command``).
"""

from oslo_privsep import capabilities
from oslo_privsep import priv_context

sys_admin_pctxt = priv_context.PrivContext(
    'multimodal_virt',
    cfg_section='multimodal_virt_privsep',
    pypath=__name__ + '.sys_admin_pctxt',
    capabilities=[capabilities.CAP_SYS_ADMIN,
                  capabilities.CAP_DAC_OVERRIDE],
)
