"""Entry point for oslo-config-generator (``oslo.config.opts``).

Imports only the option modules: no libvirt, BPF or Nova code.
"""

from multimodal_virt.conf import aggregator
from multimodal_virt.conf import analysis
from multimodal_virt.conf import bcc
from multimodal_virt.conf import collector
from multimodal_virt.conf import compute
from multimodal_virt.conf import libbpf
from multimodal_virt.conf import libvirt
from multimodal_virt.conf import pci
from multimodal_virt.conf import probes
from multimodal_virt.conf import scheduler
from multimodal_virt.conf import store

_MODULES = (store, scheduler, collector, aggregator, probes, pci, libvirt,
            analysis, compute)
# The eBPF backends' own groups.
_MODULES += (libbpf, bcc)


def list_opts():
    """Return ``[(group, [opts])]`` for every option group."""
    result = []
    for module in _MODULES:
        result.extend(module.list_opts())
    return result
