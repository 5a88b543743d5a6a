"""Options of the bcc eBPF backend (``[multimodal_virt_bcc]``).

bcc compiles the probes at load time against the kernel headers; it is the
fallback where the kernel has no BTF. ``[multimodal_virt_probes] backend``
chooses between this backend and libbpf
(:mod:`multimodal_virt.conf.libbpf`). Imports nothing beyond oslo.config.
"""

from oslo_config import cfg

from multimodal_virt.conf import groups

GROUP = cfg.OptGroup(
    'multimodal_virt_bcc',
    title='multimodal-virt bcc eBPF backend',
    help='Where the collector finds bcc (used when [multimodal_virt_probes] '
         'backend is bcc, or auto on a host without kernel BTF).')

OPTS = [
    cfg.ListOpt(
        'python_path',
        default=['/usr/lib/python3/dist-packages'],
        help="""
Directories searched for bcc's Python module when the collector's own
environment cannot import it. Distributions install bcc for the system
Python only (Debian and Ubuntu ``python3-bpfcc`` in
``/usr/lib/python3/dist-packages``; Fedora and RHEL ``python3-bcc`` in
``/usr/lib/python3.X/site-packages``), while the collector usually runs in
a virtualenv or container of its own. Each directory is added to the
module search path, in order, only when bcc is first needed.

Possible values:

* a list of absolute directory paths; empty: only the collector's own
  environment

Related options:

* ``[multimodal_virt_probes] backend``
"""),
]


def register_opts(conf):
    """Register the ``[multimodal_virt_bcc]`` options on ``conf``."""
    groups.register(conf, GROUP, OPTS)


def list_opts():
    return [(GROUP, OPTS)]
