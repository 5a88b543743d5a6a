"""GPU ioctl latency by exact request number, per class.

Only the ioctls of the per-driver table
(:mod:`~multimodal_virt.collector.bpf.gpu_ioctl_table`) are timed, entry
to return, in three histograms: ``gpu_submit`` (command submission, returns
once work is queued), ``gpu_wait`` (blocks until GPU work completes) and
``gpu_nvidia_rm`` (NVIDIA resource-manager escapes, setup and control, not
GPU job time). Both backends load the same table. The libbpf backend also
keeps only ioctls on the device nodes of ``gpu_device_globs`` (CO-RE reads
of the fd table); bcc cannot read kernel structs safely and selects by the
number alone.
"""

import glob
import os
import stat

from oslo_log import log as logging

from multimodal_virt.collector.bpf import backend as bpf_backend
from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.bpf import gpu_ioctl_table as table
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
        spec.Map('start', 'Q', 'QII', 'inflight_max_entries'),
        spec.Map('hist', 'I', '32Q'),
    ),
    # targ_ndevs/targ_devs: libbpf only (bcc does not read the fd table).
    # targ_cmds: (class << 32) | request number (gpu_ioctl_table.pack).
    rodata={'targ_ndevs': 'I', 'targ_devs': 'I', 'targ_ncmds': 'I',
            'targ_cmds': 'Q'},
    drops=('start',),
)

#: ProbeReading field of each class id of the ``hist`` map.
READING_FIELDS = {table.SUBMIT: 'gpu_submit', table.WAIT: 'gpu_wait',
                  table.NVIDIA_RM: 'gpu_nvidia_rm'}


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


def ioctl_entries(group):
    """The table entries the options select (drivers plus extra ones).

    :raises ProbeError: for an unknown driver or a malformed extra entry.
    """
    return table.select(group.gpu_ioctl_drivers,
                        table.parse_extra(group.gpu_extra_ioctls))


class GpuIoctlProbe(probe.BpfProbe):
    """Per-class log2 histograms of listed GPU ioctls.

    Enable with ``[multimodal_virt_collector] probes = gpu_ioctl,...``.
    Ioctls are chosen by exact number (``gpu_ioctl_drivers``,
    ``gpu_extra_ioctls``). With libbpf only ioctls on the nodes of
    ``gpu_device_globs`` count; with no matching node nothing is attached
    and readings carry no histogram. bcc does not filter by node.
    """

    name = 'gpu_ioctl'
    spec = SPEC

    def __init__(self, conf, host=None):
        super().__init__(conf, host)
        self._previous = {}
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
                self._host or bpf_backend.HostProbe(self.conf))
        except exception.BPFUnavailable:
            return self.group.backend

    def by_device(self):
        """True when ioctls are also filtered by device node (libbpf)."""
        return self.backend() != 'bcc'

    def devices(self):
        """Kernel device numbers to time (resolved once per start)."""
        if self._devices is None:
            self._devices = resolve_devices(
                self.group.gpu_device_globs,
                self.conf.multimodal_virt_libbpf.max_gpu_devices)
        return self._devices

    def settings(self):
        values = table.settings(ioctl_entries(self.group))
        if self.by_device():
            devices = self.devices()
            values.update(targ_ndevs=len(devices), targ_devs=devices)
        return values

    def start(self):
        if self.loaded is not None:
            return
        self._devices = None
        self._previous = {}
        entries = ioctl_entries(self.group)
        try:
            self._backend = bpf_backend.get_backend(self.conf,
                                                    self._host).name
        except exception.BPFUnavailable:
            # bcc: start() below raises; else idle without nodes or raise.
            self._backend = self.group.backend
        if self.by_device() and not self.devices():
            LOG.warning('No character device matches gpu_device_globs %s; '
                        'gpu_ioctl attaches nothing',
                        ','.join(self.group.gpu_device_globs))
            self._idle = True
            return
        LOG.info('gpu_ioctl times %(n)d ioctl numbers (%(drivers)s)',
                 {'n': len(entries),
                  'drivers': ', '.join(sorted({e.driver for e in entries}))})
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
        entries = self.loaded.read('hist')
        histograms = {}
        for klass, field in READING_FIELDS.items():
            slots = entries.get((klass,), ())
            delta = decode.slots_delta(slots, self._previous.get(klass))
            self._previous[klass] = slots
            histograms[field] = decode.histogram_from_slots(delta)
        # Attached to device nodes that exist: submissions and waits are
        # observable here even in a window without any.
        return base.ProbeReading(source='ebpf', events=self.events,
                                 gpu_observed=('gpu_submit', 'gpu_wait'),
                                 **histograms)

    def describe(self):
        text = super().describe()
        lines = [text, '  selector: exact ioctl number (gpu_ioctl_drivers, '
                       'gpu_extra_ioctls)']
        try:
            entries = ioctl_entries(self.group)
        except exception.ProbeError as err:
            entries = []
            lines.append('  ioctl table: invalid (%s)' % err)
        for entry in entries:
            lines.append('  ioctl 0x%08x %-9s %s %s'
                         % (entry.number, entry.klass, entry.driver,
                            entry.name))
        if self.by_device():
            devices = ', '.join('%d:%d' % decode.split_kernel_dev(d)
                                for d in self.devices()) or 'none'
            lines.append('  device numbers (%s backend, gpu_device_globs): '
                         '%s' % (self.backend(), devices))
        else:
            lines.append('  device numbers: not filtered (bcc backend)')
        return '\n'.join(lines)
