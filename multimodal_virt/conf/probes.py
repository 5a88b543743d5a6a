"""Options for the probes (``[multimodal_virt_probes]``)."""

from oslo_config import cfg
from oslo_config import types

GROUP = cfg.OptGroup(
    'multimodal_virt_probes',
    title='multimodal-virt probes',
    help='Which host probes the collector runs and how eBPF programs are '
         'built and loaded.')


class IoctlType(types.ConfigType):
    """An ioctl type byte (``_IOC_TYPE(cmd)``): one character or hex.

    ``d`` and ``0x64`` both give 100. Values are returned as ints.
    """

    def __init__(self, type_name='ioctl type'):
        super().__init__(type_name=type_name)

    def __call__(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and len(value) == 1:
            number = ord(value)
            if not 0x21 <= number <= 0x7e:
                number = -1
        elif isinstance(value, str) and value.lower().startswith('0x'):
            try:
                number = int(value, 16)
            except ValueError:
                number = -1
        else:
            number = -1
        if not 0 <= number <= 0xff:
            raise ValueError(
                'ioctl type must be one printable ASCII character (like d) '
                'or a hex byte 0x00-0xff (like 0x64), got %r' % (value,))
        return number

    def __repr__(self):
        return 'IoctlType'

    def __eq__(self, other):
        return self.__class__ == other.__class__

    def _formatter(self, value):
        if isinstance(value, str):
            return value
        return '0x%02x' % value


OPTS = [
    cfg.StrOpt(
        'backend',
        default='auto',
        choices=[
            ('auto', 'libbpf when the kernel has BTF and libbpf/clang are '
                     'installed, else bcc when kernel headers are installed'),
            ('libbpf', 'CO-RE objects built with clang, loaded with '
                       'libbpf.so.1; needs /sys/kernel/btf/vmlinux'),
            ('bcc', 'BPF compiled at load time by bcc (python3-bpfcc); '
                    'needs kernel headers in /lib/modules/<release>/build'),
        ],
        help="""
eBPF loader backend.

Possible values:

* ``auto``, ``libbpf`` or ``bcc`` (see the choices)

Related options:

* ``bpf_build_dir``, ``clang``, ``bpftool``
"""),
    cfg.StrOpt(
        'bpf_build_dir',
        sample_default='/var/lib/multimodal-virt/bpf',
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

* ``backend``
"""),
    cfg.StrOpt(
        'clang',
        default='clang',
        help="""
clang executable used to build the CO-RE objects.

Possible values:

* a command name on PATH or an absolute path
"""),
    cfg.StrOpt(
        'bpftool',
        default='bpftool',
        help="""
bpftool executable used to generate vmlinux.h from the kernel BTF.

Possible values:

* a command name on PATH or an absolute path
"""),
    cfg.ListOpt(
        'gpu_device_globs',
        default=['/dev/nvidia*', '/dev/dri/*', '/dev/kfd', '/dev/accel/*'],
        help="""
Character device nodes whose ioctl() time counts as GPU command submission.
Resolved to device numbers when the gpu_ioctl probe starts; the kernel
filters by device number.

Possible values:

* shell-style globs of device node paths

Related options:

* ``max_gpu_devices``
* ``gpu_ioctl_types``: the bcc backend selects by ioctl type instead
"""),
    cfg.ListOpt(
        'gpu_ioctl_types',
        item_type=IoctlType(),
        default=['d', 'F', 'K'],
        help="""
ioctl types (``_IOC_TYPE(cmd)``, bits 8-15 of the request number) whose
ioctl() time counts as GPU command submission with the bcc backend. The
type byte names the driver family: ``d`` (0x64) DRM and accel drivers,
``F`` (0x46) NVIDIA (``NV_IOCTL_MAGIC``), ``K`` (0x4B) AMD KFD. The bcc
backend compiles against the installed kernel headers without BTF, so it
does not walk kernel structs to find the device of the fd; it selects by
the ioctl request number alone, from the tracepoint arguments. An ioctl of
the same type on another file is counted too. The libbpf backend ignores
this option and selects by device number (``gpu_device_globs``).

Possible values:

* a list of one printable ASCII character (``d``) or a hex byte
  (``0x64``) per type; at least one

Related options:

* ``backend``
* ``gpu_device_globs``: the selector of the libbpf backend
"""),
    cfg.IntOpt(
        'max_gpu_devices',
        default=64, min=1, max=64,
        help="""
Most device numbers the gpu_ioctl probe filters on (extra nodes are
ignored with a warning).

Possible values:

* 1 to 64

Related options:

* ``gpu_device_globs``
"""),
    cfg.IntOpt(
        'inflight_max_entries',
        default=10240, min=128,
        help="""
Size of the LRU tables that hold start timestamps of in-flight block
requests and ioctl calls. When full, the oldest entry is evicted, so memory
stays bounded whatever the event rate.

Possible values:

* an integer >= 128
"""),
    cfg.IntOpt(
        'max_block_devices',
        default=64, min=1,
        help="""
Most block devices with a latency histogram at one time. Entries of
devices that disappeared are deleted at every collection; I/O on further
devices is not counted, and the loss is published in every sample
(``dropped_events``, ``block_io.hists``) and logged once.

Possible values:

* an integer >= 1
"""),
    cfg.ListOpt(
        'exclude_block_drivers',
        default=['loop', 'device-mapper', 'md', 'zram', 'ramdisk'],
        help="""
Block drivers whose devices are not counted as storage I/O, by their name in
the ``Block devices:`` section of ``/proc/devices``. These devices issue
block requests of their own on top of the disk's: counting them would count
one I/O twice and let, for example, a loop device's latency pass for the
disk's. The block_io probe filters them in the kernel by major number (so
they never take a histogram slot); the procfs probe skips them too.

Possible values:

* a list of driver names (``loop``, ``device-mapper``, ``md``, ``zram``,
  ``ramdisk``, ``nbd``, ...); names this kernel has not registered are
  ignored; an empty list counts every device

Related options:

* ``max_block_devices``
"""),
    cfg.IntOpt(
        'max_vm_exit_keys',
        default=8192, min=64,
        help="""
Size of the (qemu pid, event, exit reason) table of the kvm_exit probe,
emptied at every collection.

Possible values:

* an integer >= 64
"""),
    cfg.IntOpt(
        'max_irq_lines',
        default=1024, min=16,
        help="""
Most IRQ lines counted by the irq probe.

Possible values:

* an integer >= 16
"""),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
