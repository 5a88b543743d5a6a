"""Options for the probes (``[multimodal_virt_probes]``)."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'multimodal_virt_probes',
    title='multimodal-virt probes')

OPTS = []


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
