"""Block I/O latency (issue to complete) per device, from eBPF."""

from oslo_log import log as logging

from multimodal_virt.collector import block_devices
from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.bpf import probe
from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import base

LOG = logging.getLogger(__name__)

#: Room for excluded majors in the object (``MMV_MAX_SKIP``).
MAX_SKIP_MAJORS = 16

SPEC = spec.ProbeSpec(
    source='block_io',
    programs=(
        spec.Program('mmv_block_rq_issue', 'block:block_rq_issue', 'tp_btf'),
        spec.Program('mmv_block_rq_complete', 'block:block_rq_complete',
                     'tp_btf'),
    ),
    maps=(
        # Slots (struct request *, issue ns); 0: free.
        spec.Map('start', 'I', 'QQ', 'inflight_max_entries', evicts=True),
        spec.Map('hists', 'I', '32Q', 'max_block_devices'),
    ),
    rodata={'targ_dev': 'I', 'targ_nskip': 'I', 'targ_skip_majors': 'I',
            'targ_start_mask': 'Q'},
    drops=('start', 'hists'),
)


def start_slots(size):
    """Slots of the issue-time table: ``size`` rounded up to a power of 2."""
    return 1 << max(0, int(size) - 1).bit_length()


class BlockIOProbe(probe.BpfProbe):
    """Log2 histogram of block I/O latency, total and per device.

    Devices of the drivers in ``[multimodal_virt_probes]
    exclude_block_drivers`` are not timed (filtered in the kernel by
    major number). Histogram entries of devices that disappeared are
    deleted at every collection, and of devices that had no I/O in the
    window when the table is more than half full, so device churn never
    fills the table.
    Enable with ``[multimodal_virt_probes] enabled = block_io,...``.
    """

    name = 'block_io'
    spec = SPEC

    def __init__(self, conf, host=None, sysfs='/sys',
                 proc_devices='/proc/devices'):
        super().__init__(conf, host)
        self._previous = {}
        self._sysfs = sysfs
        self._proc_devices = proc_devices

    def settings(self):
        drivers = self.group.exclude_block_drivers
        majors = block_devices.excluded_majors(drivers, self._proc_devices)
        if len(majors) > MAX_SKIP_MAJORS:
            LOG.warning('block_io: %(n)d majors to exclude, only the first '
                        '%(max)d are filtered in the kernel',
                        {'n': len(majors), 'max': MAX_SKIP_MAJORS})
            majors = majors[:MAX_SKIP_MAJORS]
        return {'targ_dev': 0, 'targ_nskip': len(majors),
                'targ_skip_majors': majors,
                'targ_start_mask': start_slots(
                    self.group.inflight_max_entries) - 1}

    def max_entries(self):
        sizes = super().max_entries()
        sizes['start'] = start_slots(sizes['start'])
        return sizes

    def _prune(self, devs):
        """Delete the entries of vanished devices, and of idle ones when the
        table is more than half full; return the rest.

        An entry whose device is gone is deleted at once. An entry whose
        counts did not move since the previous collection (a detached loop
        device, an idle disk) is deleted only when the table holds more than
        half of ``max_block_devices`` entries, so device churn never fills
        it; an idle disk's next request creates its entry again. Deleting an
        idle entry races with a completion that lands between the read and
        the delete (that one I/O is lost): with room left, idle entries are
        kept, so a disk that turns busy right at a collection loses nothing.
        """
        crowded = len(devs) > self.group.max_block_devices // 2
        kept = {}
        for dev, slots in devs.items():
            major, minor = decode.split_kernel_dev(dev)
            idle = crowded and self._previous.get(dev) == slots
            if not idle and block_devices.device_exists(major, minor,
                                                        self._sysfs):
                kept[dev] = slots
                continue
            self.loaded.delete('hists', (dev,))
            LOG.debug('block_io: deleted the entry of %(state)s device '
                      '%(major)d:%(minor)d',
                      {'state': 'idle' if idle else 'vanished',
                       'major': major, 'minor': minor})
        return kept

    def read(self):
        current = self._prune(
            {dev: slots
             for (dev,), slots in self.loaded.read('hists').items()})
        drivers = self.group.exclude_block_drivers
        total = decode.histogram_from_slots(())
        by_device = {}
        for dev, slots in current.items():
            delta = decode.slots_delta(slots, self._previous.get(dev))
            if not any(delta):
                continue
            name = decode.block_device_name(dev, self._sysfs)
            if block_devices.excluded_name(name, drivers):
                continue  # a driver registered after the probe started
            hist = decode.histogram_from_slots(delta)
            by_device[name] = hist
            total = total.merged(hist)
        self._previous = current
        return base.ProbeReading(source='ebpf', io=total,
                                 io_by_device=by_device,
                                 events=self.events)
