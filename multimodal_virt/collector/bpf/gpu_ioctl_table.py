"""Per-driver table of GPU ioctls, by exact request number.

A GPU driver's ioctls do very different things: some queue work and return
(i915/xe exec, amdgpu CS), some block until the GPU is done (syncobj and
per-driver waits), most set things up (allocation, context creation). The
gpu_ioctl probe times only the ioctls listed here, each in its class:

* ``submit``: command submission, returns once the work is queued.
* ``wait``: blocks until GPU work (a fence) completes.
* ``nvidia_rm``: NVIDIA's resource-manager escapes on ``/dev/nvidiactl``.
  CUDA launches work through user-mode doorbells with no ioctl, so these
  are setup and control calls, never GPU job time; published apart.

Both eBPF backends load the same table (libbpf as ``const volatile``
arrays, bcc as ``-D`` macros). Numbers are built with the kernel's
``_IOC`` encoding from the uapi struct sizes; ``source`` names the header
and struct each comes from. ``tests/unit/collector/bpf/test_gpu_ioctl_table``
checks them against the C headers where they are installed.

Pure logic: no BPF, no I/O.
"""

import dataclasses

from multimodal_virt import exception

# linux/ioctl.h (asm-generic): nr 8 bits, type 8, size 14, dir 2.
IOC_NONE = 0
IOC_WRITE = 1
IOC_READ = 2
_IOC_SIZEBITS = 14


def ioc(direction, kind, nr, size):
    """``_IOC(dir, type, nr, size)`` of ``asm-generic/ioctl.h``."""
    if not 0 <= size < (1 << _IOC_SIZEBITS):
        raise ValueError('ioctl argument size %r does not fit 14 bits'
                         % (size,))
    return (direction << 30) | (size << 16) | (kind << 8) | nr


def io(kind, nr):
    return ioc(IOC_NONE, kind, nr, 0)


def iow(kind, nr, size):
    return ioc(IOC_WRITE, kind, nr, size)


def ior(kind, nr, size):
    return ioc(IOC_READ, kind, nr, size)


def iowr(kind, nr, size):
    return ioc(IOC_READ | IOC_WRITE, kind, nr, size)


DRM_IOCTL_BASE = ord('d')
DRM_COMMAND_BASE = 0x40
NV_IOCTL_MAGIC = ord('F')

#: Class ids shared with gpu_ioctl.{bpf,bcc}.c (0 is "not timed").
SUBMIT = 1
WAIT = 2
NVIDIA_RM = 3
CLASSES = {'submit': SUBMIT, 'wait': WAIT, 'nvidia_rm': NVIDIA_RM}
CLASS_NAMES = {value: name for name, value in CLASSES.items()}
#: Histogram slots in the BPF map: one per class id (0 unused).
NUM_CLASSES = 4

#: Most entries the BPF programs compare (MMV_MAX_CMDS in the sources; bcc
#: keeps the table on the 512-byte BPF stack, 8 bytes an entry).
MAX_ENTRIES = 48


@dataclasses.dataclass(frozen=True)
class IoctlEntry:
    """One timed ioctl.

    :param driver: table name (``i915``, ``drm`` for the core, ...).
    :param name: the uapi macro, e.g. ``DRM_IOCTL_I915_GEM_EXECBUFFER2``.
    :param klass: ``submit``, ``wait`` or ``nvidia_rm``.
    :param number: the request number (``cmd``) as the kernel sees it.
    :param source: uapi header and struct the number is built from.
    """

    driver: str
    name: str
    klass: str
    number: int
    source: str

    def __post_init__(self):
        if self.klass not in CLASSES:
            raise exception.ProbeError(
                'ioctl %s: class must be one of %s, got %r'
                % (self.name, ', '.join(sorted(CLASSES)), self.klass))
        if not isinstance(self.number, int) or not (
                0 < self.number <= 0xffffffff):
            raise exception.ProbeError(
                'ioctl %s: number must be a 32-bit request number, got %r'
                % (self.name, self.number))


def _drm(nr, size, direction):
    """DRM_IOW/DRM_IOWR(DRM_COMMAND_BASE + nr, struct of ``size``)."""
    return ioc(direction, DRM_IOCTL_BASE, DRM_COMMAND_BASE + nr, size)


_W = IOC_WRITE
_RW = IOC_READ | IOC_WRITE

#: The table. Struct sizes are those of the uapi headers (x86-64, which
#: matches every 64-bit ABI since the structs use fixed-width fields).
TABLE = (
    # Core DRM, every driver with syncobj support (include/uapi/drm/drm.h).
    IoctlEntry('drm', 'DRM_IOCTL_SYNCOBJ_WAIT', 'wait',
               iowr(DRM_IOCTL_BASE, 0xC3, 32),
               'drm.h: DRM_IOWR(0xC3, struct drm_syncobj_wait), 32 bytes'),
    IoctlEntry('drm', 'DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT', 'wait',
               iowr(DRM_IOCTL_BASE, 0xCA, 40),
               'drm.h: DRM_IOWR(0xCA, struct drm_syncobj_timeline_wait), '
               '40 bytes'),
    # i915 (include/uapi/drm/i915_drm.h).
    IoctlEntry('i915', 'DRM_IOCTL_I915_GEM_EXECBUFFER2', 'submit',
               _drm(0x29, 64, _W),
               'i915_drm.h: DRM_IOW(BASE+0x29, struct '
               'drm_i915_gem_execbuffer2), 64 bytes'),
    IoctlEntry('i915', 'DRM_IOCTL_I915_GEM_EXECBUFFER2_WR', 'submit',
               _drm(0x29, 64, _RW),
               'i915_drm.h: DRM_IOWR(BASE+0x29, struct '
               'drm_i915_gem_execbuffer2), 64 bytes'),
    IoctlEntry('i915', 'DRM_IOCTL_I915_GEM_WAIT', 'wait',
               _drm(0x2c, 16, _RW),
               'i915_drm.h: DRM_IOWR(BASE+0x2c, struct drm_i915_gem_wait), '
               '16 bytes'),
    # xe (include/uapi/drm/xe_drm.h, Linux 6.8+).
    IoctlEntry('xe', 'DRM_IOCTL_XE_EXEC', 'submit',
               _drm(0x09, 56, _W),
               'xe_drm.h: DRM_IOW(BASE+0x09, struct drm_xe_exec), 56 bytes'),
    IoctlEntry('xe', 'DRM_IOCTL_XE_WAIT_USER_FENCE', 'wait',
               _drm(0x0a, 72, _RW),
               'xe_drm.h: DRM_IOWR(BASE+0x0a, struct '
               'drm_xe_wait_user_fence), 72 bytes'),
    # amdgpu (include/uapi/drm/amdgpu_drm.h).
    IoctlEntry('amdgpu', 'DRM_IOCTL_AMDGPU_CS', 'submit',
               _drm(0x04, 24, _RW),
               'amdgpu_drm.h: DRM_IOWR(BASE+0x04, union drm_amdgpu_cs), '
               '24 bytes'),
    IoctlEntry('amdgpu', 'DRM_IOCTL_AMDGPU_WAIT_CS', 'wait',
               _drm(0x09, 32, _RW),
               'amdgpu_drm.h: DRM_IOWR(BASE+0x09, union drm_amdgpu_wait_cs), '
               '32 bytes'),
    IoctlEntry('amdgpu', 'DRM_IOCTL_AMDGPU_WAIT_FENCES', 'wait',
               _drm(0x12, 24, _RW),
               'amdgpu_drm.h: DRM_IOWR(BASE+0x12, union '
               'drm_amdgpu_wait_fences), 24 bytes'),
    # nouveau (include/uapi/drm/nouveau_drm.h).
    IoctlEntry('nouveau', 'DRM_IOCTL_NOUVEAU_GEM_PUSHBUF', 'submit',
               _drm(0x41, 64, _RW),
               'nouveau_drm.h: DRM_IOWR(BASE+0x41, struct '
               'drm_nouveau_gem_pushbuf), 64 bytes'),
    IoctlEntry('nouveau', 'DRM_IOCTL_NOUVEAU_EXEC', 'submit',
               _drm(0x12, 40, _RW),
               'nouveau_drm.h (6.6+): DRM_IOWR(BASE+0x12, struct '
               'drm_nouveau_exec), 40 bytes'),
    IoctlEntry('nouveau', 'DRM_IOCTL_NOUVEAU_GEM_CPU_PREP', 'wait',
               _drm(0x42, 8, _W),
               'nouveau_drm.h: DRM_IOW(BASE+0x42, struct '
               'drm_nouveau_gem_cpu_prep), 8 bytes'),
    # virtio-gpu (include/uapi/drm/virtgpu_drm.h). Transfers queue host
    # work with a fence, like an execbuffer.
    IoctlEntry('virtio_gpu', 'DRM_IOCTL_VIRTGPU_EXECBUFFER', 'submit',
               _drm(0x02, 32, _RW),
               'virtgpu_drm.h: DRM_IOWR(BASE+0x02, struct '
               'drm_virtgpu_execbuffer), 32 bytes'),
    IoctlEntry('virtio_gpu', 'DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST',
               'submit', _drm(0x06, 36, _RW),
               'virtgpu_drm.h: DRM_IOWR(BASE+0x06, struct '
               'drm_virtgpu_3d_transfer_from_host), 36 bytes'),
    IoctlEntry('virtio_gpu', 'DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST', 'submit',
               _drm(0x07, 36, _RW),
               'virtgpu_drm.h: DRM_IOWR(BASE+0x07, struct '
               'drm_virtgpu_3d_transfer_to_host), 36 bytes'),
    IoctlEntry('virtio_gpu', 'DRM_IOCTL_VIRTGPU_WAIT', 'wait',
               _drm(0x08, 8, _RW),
               'virtgpu_drm.h: DRM_IOWR(BASE+0x08, struct '
               'drm_virtgpu_3d_wait), 8 bytes'),
    # msm (include/uapi/drm/msm_drm.h).
    IoctlEntry('msm', 'DRM_IOCTL_MSM_GEM_SUBMIT', 'submit',
               _drm(0x06, 40, _RW),
               'msm_drm.h: DRM_IOWR(BASE+0x06, struct drm_msm_gem_submit), '
               '40 bytes'),
    IoctlEntry('msm', 'DRM_IOCTL_MSM_WAIT_FENCE', 'wait',
               _drm(0x07, 32, _W),
               'msm_drm.h: DRM_IOW(BASE+0x07, struct drm_msm_wait_fence), '
               '32 bytes'),
    IoctlEntry('msm', 'DRM_IOCTL_MSM_GEM_CPU_PREP', 'wait',
               _drm(0x04, 24, _W),
               'msm_drm.h: DRM_IOW(BASE+0x04, struct drm_msm_gem_cpu_prep), '
               '24 bytes'),
    # NVIDIA proprietary / open kernel modules: escapes on /dev/nvidiactl
    # (src/nvidia/arch/nvalloc/unix/include/nv_escape.h, nvos.h).
    IoctlEntry('nvidia', 'NV_ESC_RM_CONTROL', 'nvidia_rm',
               iowr(NV_IOCTL_MAGIC, 0x2A, 32),
               "nv_escape.h/nvos.h: _IOWR('F', 0x2A, NVOS54_PARAMETERS), "
               '32 bytes'),
    IoctlEntry('nvidia', 'NV_ESC_RM_ALLOC', 'nvidia_rm',
               iowr(NV_IOCTL_MAGIC, 0x2B, 48),
               "nv_escape.h/nvos.h: _IOWR('F', 0x2B, NVOS64_PARAMETERS), "
               '48 bytes'),
)

DRIVERS = tuple(sorted({entry.driver for entry in TABLE}))


def parse_extra(values):
    """Entries from ``gpu_extra_ioctls`` items ``class:number[:name]``.

    :param values: strings like ``submit:0xc0206442:my_exec``.
    :returns: list of :class:`IoctlEntry` (driver ``extra``).
    :raises ProbeError: naming the item that is malformed.
    """
    entries = []
    for item in values:
        parts = str(item).split(':')
        if len(parts) not in (2, 3) or parts[0] not in CLASSES:
            raise exception.ProbeError(
                'gpu_extra_ioctls entry %r must be CLASS:NUMBER[:NAME] with '
                'CLASS one of %s' % (item, ', '.join(sorted(CLASSES))))
        try:
            number = int(parts[1], 0)
        except ValueError:
            raise exception.ProbeError(
                'gpu_extra_ioctls entry %r: %r is not an integer (use 0x '
                'for hex)' % (item, parts[1]))
        name = parts[2] if len(parts) == 3 and parts[2] else '0x%08x' % (
            number & 0xffffffff)
        entries.append(IoctlEntry('extra', name, parts[0], number,
                                  'gpu_extra_ioctls option'))
    return entries


def select(drivers, extra=()):
    """The entries to time: the drivers' table rows plus extra entries.

    :param drivers: driver names from :data:`DRIVERS`.
    :param extra: more :class:`IoctlEntry` (see :func:`parse_extra`).
    :returns: list of entries, sorted by number, one per number.
    :raises ProbeError: for an unknown driver, a number listed with two
        classes, or more than :data:`MAX_ENTRIES` numbers.
    """
    unknown = sorted(set(drivers) - set(DRIVERS))
    if unknown:
        raise exception.ProbeError(
            'gpu_ioctl_drivers: unknown driver(s) %s (known: %s)'
            % (', '.join(unknown), ', '.join(DRIVERS)))
    chosen = {}
    for entry in [e for e in TABLE if e.driver in drivers] + list(extra):
        before = chosen.get(entry.number)
        if before is not None and before.klass != entry.klass:
            raise exception.ProbeError(
                'ioctl 0x%08x is listed as %s (%s) and as %s (%s)'
                % (entry.number, before.klass, before.name, entry.klass,
                   entry.name))
        chosen.setdefault(entry.number, entry)
    if len(chosen) > MAX_ENTRIES:
        raise exception.ProbeError(
            '%d GPU ioctl numbers selected, at most %d are supported'
            % (len(chosen), MAX_ENTRIES))
    return [chosen[number] for number in sorted(chosen)]


def pack(entry):
    """One ``targ_cmds`` word: ``(class id << 32) | request number``."""
    return (CLASSES[entry.klass] << 32) | entry.number


def settings(entries):
    """The programs' settings: ``targ_ncmds`` and packed ``targ_cmds``."""
    return {'targ_ncmds': len(entries),
            'targ_cmds': [pack(e) for e in entries]}
