"""Configuration options, one module per option group.

``multimodal_virt.conf.CONF`` is the global config object used by the
console scripts. Plugins (filters, weighers, stores, probes) receive a
config object or their own group instead of importing the global.
"""

from oslo_config import cfg

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

CONF = cfg.CONF

_MODULES = (store, scheduler, collector, aggregator, probes, pci, libvirt,
            analysis, compute)
# The eBPF backends' own groups.
_MODULES += (libbpf, bcc)


def register_opts(conf):
    """Register every multimodal-virt option group on ``conf``."""
    for module in _MODULES:
        module.register_opts(conf)


register_opts(CONF)
