"""Options for the libvirt (``[multimodal_virt_libvirt]``)."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'multimodal_virt_libvirt',
    title='multimodal-virt libvirt')

OPTS = []


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
