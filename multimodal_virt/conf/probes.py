"""Options for the probes (``[multimodal_virt_probes]``).

Which backend loads the eBPF programs, and what each probe measures. Each
backend owns its options: :mod:`multimodal_virt.conf.libbpf`
(``[multimodal_virt_libbpf]``) and :mod:`multimodal_virt.conf.bcc`
(``[multimodal_virt_bcc]``).
"""

from oslo_config import cfg

from multimodal_virt.conf import groups

GROUP = cfg.OptGroup(
    'multimodal_virt_probes',
    title='multimodal-virt probes',
    help='Which eBPF backend the collector uses and what its probes '
         'measure.')


#: Drivers of the built-in GPU ioctl table (gpu_ioctl_table.DRIVERS; a
#: unit test keeps the two equal, conf imports no collector code).
GPU_IOCTL_DRIVERS = ('amdgpu', 'drm', 'i915', 'msm', 'nouveau', 'nvidia',
                     'virtio_gpu', 'xe')

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

* ``[multimodal_virt_libbpf]``: the libbpf backend's own options (build
  directory, clang, bpftool)
* ``[multimodal_virt_bcc]``: the bcc backend's own options
"""),
    cfg.ListOpt(
        'gpu_device_globs',
        default=['/dev/nvidia*', '/dev/dri/*', '/dev/kfd', '/dev/accel/*'],
        help="""
Character device nodes on which the listed GPU ioctls are timed (libbpf
backend). Resolved to device numbers when the gpu_ioctl probe starts; the
kernel filters by device number after matching the request number. The bcc
backend cannot read the fd table safely and does not use this option.

Possible values:

* shell-style globs of device node paths

Related options:

* ``[multimodal_virt_libbpf] max_gpu_devices``
* ``gpu_ioctl_drivers``, ``gpu_extra_ioctls``: which ioctls are timed
"""),
    cfg.ListOpt(
        'gpu_ioctl_drivers',
        default=list(GPU_IOCTL_DRIVERS),
        help="""
Drivers whose ioctls the gpu_ioctl probe times, by exact request number
from the built-in table (``multimodal_virt.collector.bpf.gpu_ioctl_table``):
command submission (``gpu_submit``: i915/xe exec, amdgpu CS, nouveau
pushbuf/exec, virtio-gpu execbuffer and transfers, msm submit), waits
(``gpu_wait``: syncobj waits, i915 GEM_WAIT, xe WAIT_USER_FENCE, amdgpu
WAIT_CS/WAIT_FENCES, nouveau CPU_PREP, virtio-gpu WAIT, msm WAIT_FENCE/
CPU_PREP) and NVIDIA resource-manager escapes (``gpu_nvidia_rm``, control
calls: CUDA launches work with no ioctl). Setup calls (allocation, context
creation) are never timed.

Possible values:

* a list of ``drm`` (core syncobj waits), ``i915``, ``xe``, ``amdgpu``,
  ``nouveau``, ``virtio_gpu``, ``msm``, ``nvidia``

Related options:

* ``gpu_extra_ioctls``: numbers the table does not list
* ``gpu_device_globs``: the device nodes (libbpf backend)
"""),
    cfg.ListOpt(
        'gpu_extra_ioctls',
        default=[],
        help="""
More ioctls to time, for drivers the built-in table does not list. Each
entry is ``CLASS:NUMBER[:NAME]``: the class is ``submit``, ``wait`` or
``nvidia_rm``, the number the full 32-bit request number (``_IOWR(...)``
value, decimal or 0x hex). At most 48 numbers in all are timed.

Possible values:

* a list like ``submit:0xc0206442:my_exec,wait:0xc0086448``

Related options:

* ``gpu_ioctl_drivers``
"""),
    cfg.IntOpt(
        'inflight_max_entries',
        default=10240, min=128,
        help="""
Size of the tables that hold start timestamps of in-flight block requests
and of listed ioctl calls. Block requests: a lock-free table of this many
slots rounded up to a power of two (16 bytes each), each request hashed to
four of them; a request whose four slots are taken is not timed, and its
completion is counted (``block_io.start``).
Ioctl calls: one entry per thread inside a listed ioctl, freed when the
call returns; a call that finds the table full is not timed and counted
(``gpu_ioctl.start``). Both are published in every sample's ``dropped``
and logged once.

Possible values:

* an integer >= 128
"""),
    cfg.IntOpt(
        'fence_inflight_max_entries',
        default=16384, min=128,
        help="""
Slots of the gpu_fence probe's lock-free table of emitted, not yet
signaled GPU fences, rounded up to a power of two. Each fence hashes to a
group of four neighbouring slots; it leaves its slot when it signals (the
slot of a fence released without signaling is taken over by the next fence
at its address, or freed 120 s after its emit). An emit that finds its
four slots taken is not measured and counted as dropped
(``gpu_fence.inflight``, logged once): keep the table a few times larger
than the fences in flight at once (32 bytes per slot; with a quarter of
the slots taken, about 0.4 % of emits are lost).

Possible values:

* an integer >= 128

Related options:

* ``max_gpu_fence_keys``
"""),
    cfg.IntOpt(
        'max_gpu_fence_keys',
        default=1024, min=16,
        help="""
Most (driver, process) histograms the gpu_fence probe keeps per
collection window (emptied at every collection). A fence of a further
pair is not measured and counted as dropped (logged).

Possible values:

* an integer >= 16

Related options:

* ``fence_inflight_max_entries``
"""),
    cfg.IntOpt(
        'sched_inflight_max_entries',
        default=8192, min=128,
        help="""
Jobs of the DRM GPU scheduler the gpu_sched probe follows at once, from
queued to done (24 bytes each). A job queued when the table is full is not
measured and counted as dropped (``gpu_sched.inflight``, logged once). A
job left in the table more than 300 s (its done event never came: an
entity killed with jobs queued) is deleted at the next collection.

Possible values:

* an integer >= 128

Related options:

* ``max_gpu_sched_keys``
"""),
    cfg.IntOpt(
        'max_gpu_sched_keys',
        default=1024, min=16,
        help="""
Most (driver, process, queue or execution) histograms the gpu_sched probe
keeps per collection window (emptied at every collection). A job of a
further key is not measured and counted as dropped (``gpu_sched.hist``,
logged once).

Possible values:

* an integer >= 16

Related options:

* ``sched_inflight_max_entries``
"""),
    cfg.IntOpt(
        'max_block_devices',
        default=64, min=1,
        help="""
Most block devices with a latency histogram at one time. Entries of
devices that disappeared are deleted at every collection; I/O on further
devices is not counted, and the loss is published in every sample
(``dropped``, ``block_io.hists``) and logged once.

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
    groups.register(conf, GROUP, OPTS)


def list_opts():
    return [(GROUP, OPTS)]
