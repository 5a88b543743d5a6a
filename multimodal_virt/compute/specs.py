"""Flavor extra specs read by the nova-compute hook, parsed once.

Guest tuning (applied to the domain XML Nova builds)::

    multimodal_virt:disk_iothreads=2      # dedicated QEMU iothreads, virtio
                                          # disks spread over them
    multimodal_virt:disk_io=native        # native | io_uring | threads
    multimodal_virt:disk_queues=4         # virtio-blk queues per disk

GPU VF scheduling profile (written to each VF Nova allocated)::

    multimodal_virt:gpu_sched_priority=high       # low | normal | high
    multimodal_virt:gpu_exec_quantum_ms=20
    multimodal_virt:gpu_preempt_timeout_us=50000

The same parsers back the API validators
(:mod:`multimodal_virt.scheduler.extra_specs`), so a value Nova's API
accepts is a value the compute hook can apply.
"""

import dataclasses

from multimodal_virt.conf import compute as compute_conf
from multimodal_virt import exception
from multimodal_virt.metrics import vocabulary

NAMESPACE = vocabulary.NAMESPACE
DISK_IOTHREADS = NAMESPACE + ':disk_iothreads'
DISK_IO = NAMESPACE + ':disk_io'
DISK_QUEUES = NAMESPACE + ':disk_queues'
GPU_SCHED_PRIORITY = NAMESPACE + ':gpu_sched_priority'
GPU_EXEC_QUANTUM_MS = NAMESPACE + ':gpu_exec_quantum_ms'
GPU_PREEMPT_TIMEOUT_US = NAMESPACE + ':gpu_preempt_timeout_us'

IO_MODES = ('native', 'io_uring', 'threads')
MAX_IOTHREADS = 32
MAX_DISK_QUEUES = 64
SCHED_PRIORITIES = compute_conf.SCHED_PRIORITIES
MAX_EXEC_QUANTUM_MS = compute_conf.MAX_EXEC_QUANTUM_MS
MAX_PREEMPT_TIMEOUT_US = compute_conf.MAX_PREEMPT_TIMEOUT_US


def _int(specs, key, minimum, maximum):
    value = specs.get(key)
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or not minimum <= int(text) <= maximum:
        raise exception.InvalidExtraSpec(
            'extra spec %s=%r must be a whole number from %d to %d'
            % (key, value, minimum, maximum))
    return int(text)


def _choice(specs, key, choices):
    value = specs.get(key)
    if value is None:
        return None
    if value not in choices:
        raise exception.InvalidExtraSpec(
            'extra spec %s=%r must be one of %s'
            % (key, value, ', '.join(choices)))
    return value


@dataclasses.dataclass(frozen=True)
class GuestTuning:
    """Disk tuning a flavor asks for; all None means "leave Nova's XML"."""

    iothreads: int = None
    io: str = None
    queues: int = None

    def __bool__(self):
        return any(v is not None for v in (self.iothreads, self.io,
                                           self.queues))


@dataclasses.dataclass(frozen=True)
class GpuProfile:
    """A VF scheduling profile; None fields are not written."""

    sched_priority: str = None
    exec_quantum_ms: int = None
    preempt_timeout_us: int = None

    def __bool__(self):
        return bool(self.attributes())

    def attributes(self):
        """``{sysfs attribute name: text}`` of the set fields."""
        return {name: str(value) for name, value in (
            ('sched_priority', self.sched_priority),
            ('exec_quantum_ms', self.exec_quantum_ms),
            ('preempt_timeout_us', self.preempt_timeout_us))
            if value is not None}


def guest_tuning(extra_specs):
    """Parse the guest tuning of a flavor's extra specs.

    :param extra_specs: the flavor's ``extra_specs`` dict.
    :returns: :class:`GuestTuning` (false when the flavor asks for none).
    :raises InvalidExtraSpec: naming the key and what was expected.
    """
    return GuestTuning(
        iothreads=_int(extra_specs, DISK_IOTHREADS, 1, MAX_IOTHREADS),
        io=_choice(extra_specs, DISK_IO, IO_MODES),
        queues=_int(extra_specs, DISK_QUEUES, 1, MAX_DISK_QUEUES))


def gpu_profile(extra_specs):
    """Parse the GPU VF scheduling profile of a flavor's extra specs.

    :returns: :class:`GpuProfile` (false when the flavor asks for none).
    :raises InvalidExtraSpec: naming the key and what was expected.
    """
    return GpuProfile(
        sched_priority=_choice(extra_specs, GPU_SCHED_PRIORITY,
                               SCHED_PRIORITIES),
        exec_quantum_ms=_int(extra_specs, GPU_EXEC_QUANTUM_MS, 0,
                             MAX_EXEC_QUANTUM_MS),
        preempt_timeout_us=_int(extra_specs, GPU_PREEMPT_TIMEOUT_US, 0,
                                MAX_PREEMPT_TIMEOUT_US))


def default_gpu_profile(group):
    """The profile restored on delete, from ``[multimodal_virt_compute]``."""
    return GpuProfile(sched_priority=group.gpu_default_sched_priority,
                      exec_quantum_ms=group.gpu_default_exec_quantum_ms,
                      preempt_timeout_us=group.gpu_default_preempt_timeout_us)
