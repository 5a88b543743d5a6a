"""procfs fallback probe: I/O latency and IRQ counts without BPF.

Used when no eBPF probe can start (no root, no BTF, no libbpf). It needs no
privileges: it reads ``/proc/diskstats`` and ``/proc/interrupts`` and
reports deltas between two ``collect()`` calls.

I/O latency is an **approximation**: the kernel only exposes, per device,
the number of completed requests and the total time they took. For each
whole disk the probe computes the window's mean latency
(``delta(time spent) / delta(completed requests)``) and records that mean
once per completed request in a log2 histogram. Percentiles of the result
are therefore percentiles of per-device means weighted by request count,
not of individual requests: tails inside one device are invisible. The
eBPF ``block_io`` probe measures every request.

Only whole disks are counted (partitions would count one request twice);
the devices of ``[multimodal_virt_probes] exclude_block_drivers`` (by
default loop, device-mapper, md, zram, ramdisk: stacked or virtual
devices) are skipped, as the eBPF ``block_io`` probe does. IRQ counts
cover numbered device interrupt lines only (the lines
``irq_handler_entry`` fires for), not architecture counters such as
``LOC`` or ``TLB``.
"""

import os
import re

from oslo_config import cfg
from oslo_log import log as logging

from multimodal_virt.collector import block_devices
from multimodal_virt.collector.probes import base
from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt import ratelimit

LOG = logging.getLogger(__name__)

SOURCE = 'procfs'
EVENTS = ('procfs:diskstats', 'procfs:interrupts')
DEVICE_NAME = re.compile(r'^[A-Za-z0-9._!:-]{1,64}$')
# Completed I/O counter columns (after major, minor, name) and the matching
# "time spent" columns, in milliseconds: reads, writes, discards, flushes.
COMPLETED_COLUMNS = (0, 4, 11, 15)
TIME_COLUMNS = (3, 7, 14, 16)
MAX_DEVICES = 4096
MAX_IRQ_LINES = 8192


def parse_diskstats(text):
    """Parse ``/proc/diskstats`` into ``{device: (ios, time_ms)}``.

    ``ios`` sums completed reads, writes, discards and flushes (the columns
    the kernel has); ``time_ms`` sums the time they spent.

    :param text: file content.
    :returns: dict; malformed lines are skipped.
    """
    result = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 14 or not DEVICE_NAME.match(fields[2]):
            continue
        try:
            counters = [int(value) for value in fields[3:]]
        except ValueError:
            continue
        ios = sum(counters[i] for i in COMPLETED_COLUMNS if i < len(counters))
        time_ms = sum(counters[i] for i in TIME_COLUMNS if i < len(counters))
        result[fields[2]] = (ios, time_ms)
        if len(result) >= MAX_DEVICES:
            break
    return result


def parse_interrupts(text):
    """Parse ``/proc/interrupts`` into ``{irq number: count on all CPUs}``.

    :param text: file content.
    :returns: dict of numbered lines only; other lines are skipped.
    """
    lines = text.splitlines()
    if not lines:
        return {}
    cpus = len(lines[0].split())
    result = {}
    for line in lines[1:]:
        label, sep, rest = line.partition(':')
        label = label.strip()
        if not sep or not label.isdigit():
            continue
        total = 0
        for value in rest.split()[:cpus]:
            if not value.isdigit():
                break
            total += int(value)
        result[int(label)] = total
        if len(result) >= MAX_IRQ_LINES:
            break
    return result


def latency_histogram(deltas):
    """Histogram of per-device mean latencies, weighted by request count.

    :param deltas: ``{device: (ios, time_ms)}`` over one window.
    :returns: :class:`LatencyHistogram` (empty if there was no I/O).
    """
    counts = [0] * hist.MAX_BUCKETS
    top = -1
    for ios, time_ms in deltas.values():
        if ios <= 0:
            continue
        index = hist.bucket_of(time_ms * 1000.0 / ios)
        counts[index] += ios
        top = max(top, index)
    return hist.LatencyHistogram(tuple(counts[:top + 1]))


def counter_deltas(previous, current, what, log):
    """Per-key ``current - previous``; keys new or going backwards dropped.

    :param previous: ``{key: value or tuple of values}`` from the last read.
    :param current: the same, now.
    :param what: name of the counter set, for the log line.
    :param log: a :class:`RateLimitedLog` for counter resets.
    :returns: ``{key: delta}`` with every delta >= 0.
    """
    deltas = {}
    for key, now in current.items():
        before = previous.get(key)
        if before is None:
            continue
        if isinstance(now, tuple):
            delta = tuple(a - b for a, b in zip(now, before))
            negative = any(d < 0 for d in delta)
        else:
            delta = now - before
            negative = delta < 0
        if negative:
            log.warning((what, key), 'Counter of %(what)s %(key)s went '
                        'backwards (reset or wrap); dropping this window',
                        {'what': what, 'key': key})
            continue
        deltas[key] = delta
    return deltas


class ProcfsProbe(base.Probe):
    """``procfs`` probe: deltas of /proc/diskstats and /proc/interrupts.

    :param conf: ``ConfigOpts`` (unused: the probe has no options).
    :param proc_root: procfs mount point (recorded files in tests).
    :param sys_root: sysfs mount point, used to tell disks from partitions.
    """

    name = 'procfs'

    def __init__(self, conf, proc_root='/proc', sys_root='/sys'):
        super().__init__(conf)
        self.proc_root = proc_root
        self.sys_root = sys_root
        self._disks = None
        self._irqs = None
        self._reset_log = ratelimit.RateLimitedLog(LOG, interval=300.0)

    def describe(self):
        return ('procfs: I/O latency from %s/diskstats deltas (per-device '
                'mean, an approximation), IRQ rate from %s/interrupts'
                % (self.proc_root, self.proc_root))

    def _read(self, name):
        path = os.path.join(self.proc_root, name)
        try:
            with open(path, encoding='ascii', errors='replace') as handle:
                return handle.read(4 * 1024 * 1024)
        except OSError as err:
            raise exception.ProbeError('procfs probe cannot read %s: %s'
                                       % (path, err))

    def _excluded_drivers(self):
        try:
            return self.conf.multimodal_virt_probes.exclude_block_drivers
        except (AttributeError, cfg.NoSuchOptError):
            return list(block_devices.DRIVER_NAME_PREFIXES)

    def _is_whole_disk(self, device):
        if block_devices.excluded_name(device, self._excluded_drivers()):
            return False
        block = os.path.join(self.sys_root, 'class', 'block')
        if not os.path.isdir(block):
            return True  # no sysfs: trust diskstats
        # sysfs uses "!" where a device name has "/" (cciss!c0d0).
        entry = os.path.join(block, device.replace('/', '!'))
        return not os.path.exists(os.path.join(entry, 'partition'))

    def _snapshot(self):
        disks = {name: value
                 for name, value in parse_diskstats(
                     self._read('diskstats')).items()
                 if self._is_whole_disk(name)}
        irqs = parse_interrupts(self._read('interrupts'))
        return disks, irqs

    def start(self):
        """Take the baseline snapshot. :raises ProbeError: if unreadable."""
        self._disks, self._irqs = self._snapshot()
        LOG.info('procfs probe started: %(disks)d disks, %(irqs)d IRQ lines',
                 {'disks': len(self._disks), 'irqs': len(self._irqs)})

    def collect(self):
        """Return the deltas since the previous call as a reading."""
        if self._disks is None:
            raise exception.ProbeError('procfs probe collected before start')
        disks, irqs = self._snapshot()
        disk_deltas = counter_deltas(self._disks, disks, 'disk',
                                     self._reset_log)
        irq_deltas = counter_deltas(self._irqs, irqs, 'IRQ', self._reset_log)
        self._disks, self._irqs = disks, irqs
        return base.ProbeReading(
            source=SOURCE,
            io=latency_histogram(disk_deltas),
            io_by_device={name: latency_histogram({name: delta})
                          for name, delta in disk_deltas.items()
                          if delta[0] > 0},
            irq_counts=irq_deltas,
            events=EVENTS)

    def stop(self):
        """Forget the baseline; nothing is attached."""
        self._disks = self._irqs = None
