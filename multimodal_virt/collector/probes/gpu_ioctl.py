"""GPU command-submission latency: ioctl() time on GPU device nodes."""

import glob
import os
import stat

from oslo_log import log as logging

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
    rodata={'targ_ndevs': 'I', 'targ_devs': 'I'},
)


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


class GpuIoctlProbe(probe.BpfProbe):
    """Log2 histogram of ioctl() latency on the configured device nodes.

    Enable with ``[multimodal_virt_probes] enabled = gpu_ioctl,...`` and
    choose nodes with ``gpu_device_globs``. With no matching node nothing
    is attached and readings carry no histogram.
    """

    name = 'gpu_ioctl'
    spec = SPEC

    def __init__(self, conf, host=None):
        super().__init__(conf, host)
        self._previous = None
        self._devices = None
        self._idle = False

    def devices(self):
        """Kernel device numbers to time (resolved once per start)."""
        if self._devices is None:
            self._devices = resolve_devices(self.group.gpu_device_globs,
                                            self.group.max_gpu_devices)
        return self._devices

    def settings(self):
        devices = self.devices()
        return {'targ_ndevs': len(devices), 'targ_devs': devices}

    def start(self):
        self._devices = None
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
        devices = ', '.join('%d:%d' % decode.split_kernel_dev(d)
                            for d in self.devices()) or 'none'
        return '%s\n  device numbers: %s' % (text, devices)
