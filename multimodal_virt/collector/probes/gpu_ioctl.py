"""GPU command-submission latency: ioctl() time on GPU device nodes.

The libbpf backend selects ioctls by the device number of the fd (CO-RE
reads of the fd table, ``gpu_device_globs``). The bcc backend has no CO-RE
and may compile against headers of another kernel, so it selects by the
ioctl type byte of the request number instead (``gpu_ioctl_types``).
"""

import glob
import os
import stat

from oslo_log import log as logging

from multimodal_virt.collector.bpf import backend as bpf_backend
from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.bpf import probe
from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import base
from multimodal_virt import exception

LOG = logging.getLogger(__name__)

SPEC = spec.ProbeSpec(
    source='gpu_ioctl',
    programs=(
        spec.Program('mmv_sys_enter_ioctl', 'syscalls:sys_enter_ioctl',
                     'tracepoint'),
        spec.Program('mmv_sys_exit_ioctl', 'syscalls:sys_exit_ioctl',
                     'tracepoint'),
    ),
    maps=(
        spec.Map('start', 'Q', 'Q', 'inflight_max_entries'),
        spec.Map('hist', 'I', '32Q'),
    ),
    # targ_ndevs/targ_devs: libbpf (.rodata); targ_ntypes/targ_types: bcc.
    rodata={'targ_ndevs': 'I', 'targ_devs': 'I',
            'targ_ntypes': 'I', 'targ_types': 'B'},
)

#: Most ioctl types the bcc program compares (MMV_MAX_TYPES in the source).
MAX_IOCTL_TYPES = 32


def resolve_devices(patterns, limit):
    """Kernel ``dev_t`` numbers of the character devices matching globs.

    :param patterns: absolute glob patterns (``/dev/dri/*``).
    :param limit: most devices to return.
    :returns: sorted list of distinct kernel device numbers.
    :raises ProbeError: for a pattern that is not an absolute path.
    """
    devices = set()
    for pattern in patterns:
        if not pattern.startswith('/'):
            raise exception.ProbeError(
                'gpu_device_globs entries must be absolute paths, got %r'
                % pattern)
        for path in glob.glob(pattern):
            try:
                info = os.stat(path)
            except OSError:
                continue
            if stat.S_ISCHR(info.st_mode):
                devices.add(decode.kernel_dev_from_rdev(info.st_rdev))
    result = sorted(devices)
    if len(result) > limit:
        LOG.warning('%(n)d GPU device nodes match, only the first %(limit)d '
                    'are timed', {'n': len(result), 'limit': limit})
    return result[:limit]


def ioctl_types(values):
    """Validated, sorted, distinct ioctl type bytes for the bcc program.

    :param values: ``gpu_ioctl_types`` (ints 0-255, parsed by oslo.config).
    :returns: sorted list of distinct ints.
    :raises ProbeError: for an empty list, more than
        :data:`MAX_IOCTL_TYPES` types or a value outside 0-255.
    """
    types = sorted(set(values))
    if not types:
        raise exception.ProbeError(
            'gpu_ioctl_types is empty: the bcc backend needs at least one '
            'ioctl type (like d, F, K) to time')
    if len(types) > MAX_IOCTL_TYPES:
        raise exception.ProbeError(
            'gpu_ioctl_types lists %d distinct types, at most %d are '
            'supported' % (len(types), MAX_IOCTL_TYPES))
    for value in types:
        if not isinstance(value, int) or not 0 <= value <= 0xff:
            raise exception.ProbeError(
                'gpu_ioctl_types entries must be bytes 0-255, got %r'
                % (value,))
    return types


def format_ioctl_type(value):
    """``'d' (0x64)`` for a printable type byte, else ``0xNN``."""
    if 0x21 <= value <= 0x7e:
        return "'%s' (0x%02x)" % (chr(value), value)
    return '0x%02x' % value


class GpuIoctlProbe(probe.BpfProbe):
    """Log2 histogram of ioctl() latency on the configured device nodes.

    Enable with ``[multimodal_virt_collector] probes = gpu_ioctl,...``.
    With libbpf, nodes are chosen with ``gpu_device_globs``; with no
    matching node nothing is attached and readings carry no histogram.
    With bcc, ioctls are chosen by type with ``gpu_ioctl_types`` and the
    device globs are not used.
    """

    name = 'gpu_ioctl'
    spec = SPEC

    def __init__(self, conf, host=None):
        super().__init__(conf, host)
        self._previous = None
        self._devices = None
        self._idle = False
        self._backend = None

    def backend(self):
        """Backend whose selector applies: the one started, else the one
        :meth:`start` would choose (the option value if none is usable).
        """
        if self._backend is not None:
            return self._backend
        try:
            return bpf_backend.select(
                self.group.backend,
                self._host or bpf_backend.HostProbe(self.group))
        except exception.BPFUnavailable:
            return self.group.backend

    def by_type(self):
        """True when ioctls are selected by type (bcc), not device."""
        return self.backend() == 'bcc'

    def devices(self):
        """Kernel device numbers to time (resolved once per start)."""
        if self._devices is None:
            self._devices = resolve_devices(self.group.gpu_device_globs,
                                            self.group.max_gpu_devices)
        return self._devices

    def settings(self):
        if self.by_type():
            types = ioctl_types(self.group.gpu_ioctl_types)
            return {'targ_ntypes': len(types), 'targ_types': types}
        devices = self.devices()
        return {'targ_ndevs': len(devices), 'targ_devs': devices}

    def start(self):
        if self.loaded is not None:
            return
        self._devices = None
        try:
            self._backend = bpf_backend.get_backend(self.group,
                                                    self._host).name
        except exception.BPFUnavailable:
            # bcc: start() below raises; else idle without nodes or raise.
            self._backend = self.group.backend
        if self.by_type():
            LOG.info('gpu_ioctl (bcc) times ioctl types %s',
                     ', '.join(format_ioctl_type(t) for t in
                               ioctl_types(self.group.gpu_ioctl_types)))
            self._idle = False
            super().start()
            return
        if not self.devices():
            LOG.warning('No character device matches gpu_device_globs %s; '
                        'gpu_ioctl attaches nothing',
                        ','.join(self.group.gpu_device_globs))
            self._idle = True
            return
        self._idle = False
        super().start()

    def collect(self):
        if self._idle:
            return base.ProbeReading(source='ebpf')
        return super().collect()

    def stop(self):
        self._idle = False
        self._backend = None
        super().stop()

    def read(self):
        slots = self.loaded.read('hist').get((0,), ())
        delta = decode.slots_delta(slots, self._previous)
        self._previous = slots
        return base.ProbeReading(source='ebpf',
                                 gpu_cmd=decode.histogram_from_slots(delta),
                                 events=self.events)

    def describe(self):
        text = super().describe()
        if self.by_type():
            types = ', '.join(format_ioctl_type(t) for t in
                              ioctl_types(self.group.gpu_ioctl_types))
            return ('%s\n  selector: ioctl type (bcc backend, '
                    'gpu_ioctl_types): %s' % (text, types))
        devices = ', '.join('%d:%d' % decode.split_kernel_dev(d)
                            for d in self.devices()) or 'none'
        return ('%s\n  selector: device number (%s backend, '
                'gpu_device_globs)\n  device numbers: %s'
                % (text, self.backend(), devices))
