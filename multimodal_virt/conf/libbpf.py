"""Options of the libbpf eBPF backend (``[multimodal_virt_libbpf]``).

The CO-RE objects' build cache and tools. ``[multimodal_virt_probes]
backend`` chooses between this backend and bcc
(:mod:`multimodal_virt.conf.bcc`). These options lived in
``[multimodal_virt_probes]`` before; the old group is still read.
Imports nothing beyond oslo.config.
"""

from oslo_config import cfg

from multimodal_virt.conf import groups

GROUP = cfg.OptGroup(
    'multimodal_virt_libbpf',
    title='multimodal-virt libbpf eBPF backend',
    help='How the collector builds its CO-RE eBPF objects and loads them '
         'with libbpf (used when [multimodal_virt_probes] backend is '
         'libbpf, or auto on a host with kernel BTF).')

_OLD_GROUP = 'multimodal_virt_probes'


def _moved(name):
    """The option's old place, named so the sample config shows it."""
    return [cfg.DeprecatedOpt(name, group=_OLD_GROUP)]


OPTS = [
    cfg.StrOpt(
        'bpf_build_dir',
        sample_default='/var/lib/multimodal-virt/bpf',
        deprecated_opts=_moved('bpf_build_dir'),
        help="""
Directory of the compiled CO-RE objects and the generated vmlinux.h
(``multimodal-virt-collector --build-bpf`` fills it at install time). An
object is rebuilt when its source or flags change. The collector refuses
the directory unless it is owned by the collector's user and writable by
nobody else (it is created 0700), and refuses any object that is not a
regular file owned by that user and unwritable by others.

Possible values:

* unset: ``/var/lib/multimodal-virt/bpf`` for root, else
  ``~/.cache/multimodal-virt/bpf``
* an absolute directory path

Related options:

* ``[multimodal_virt_probes] backend``
* ``clang``, ``bpftool``: only needed when an object must be (re)built
"""),
    cfg.StrOpt(
        'clang',
        default='clang',
        deprecated_opts=_moved('clang'),
        help="""
clang executable used to build the CO-RE objects. A host whose objects were
built at install time (``--build-bpf``) does not need it.

Possible values:

* a command name on PATH or an absolute path

Related options:

* ``bpf_build_dir``, ``bpftool``
"""),
    cfg.StrOpt(
        'bpftool',
        default='bpftool',
        deprecated_opts=_moved('bpftool'),
        help="""
bpftool executable used to generate vmlinux.h from the kernel BTF. A host
whose objects were built at install time (``--build-bpf``) does not need
it.

Possible values:

* a command name on PATH or an absolute path

Related options:

* ``bpf_build_dir``, ``clang``
"""),
    cfg.IntOpt(
        'max_gpu_devices',
        default=64, min=1, max=64,
        deprecated_opts=_moved('max_gpu_devices'),
        help="""
Most device numbers the libbpf gpu_ioctl object filters on (it resolves the
fd of each listed ioctl to its device; extra nodes are ignored with a
warning). The bcc backend does not filter by device.

Possible values:

* 1 to 64 (room in the object)

Related options:

* ``[multimodal_virt_probes] gpu_device_globs``
"""),
]


def register_opts(conf):
    """Register the ``[multimodal_virt_libbpf]`` options on ``conf``."""
    groups.register(conf, GROUP, OPTS)


def list_opts():
    return [(GROUP, OPTS)]
