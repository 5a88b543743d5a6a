"""Options for the pci (``[multimodal_virt_pci]``)."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'multimodal_virt_pci',
    title='multimodal-virt pci')

OPTS = []


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
