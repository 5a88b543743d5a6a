"""Options for the collector (``[multimodal_virt_collector]``)."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'multimodal_virt_collector',
    title='multimodal-virt collector')

OPTS = []


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
