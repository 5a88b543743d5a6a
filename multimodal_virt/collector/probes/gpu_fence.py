"""GPU job latency from dma_fence: emit to signaled, per driver and process.

Clock: ``dma_fence_emit`` (the driver hands the job to the GPU, or to the
host renderer for virtio-gpu) to ``dma_fence_signaled`` (the job is done),
kernel monotonic time, one event per fence. Vendor-agnostic: every DRM
driver emits these tracepoints. The emitting process is the one that
submitted the job for drivers that emit in the ioctl (virtio-gpu, i915
execlists); drivers behind the DRM GPU scheduler emit from its kernel
thread, whose pid maps to no instance. Queue wait and execution of DRM GPU
scheduler jobs, attributed to the submitting process, come from the
gpu_sched probe (:mod:`~multimodal_virt.collector.probes.gpu_sched`).
"""

import glob
import os
import time

import struct

from oslo_log import log as logging

from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.bpf import probe
from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import base

LOG = logging.getLogger(__name__)

#: Slots of the ``anomalies`` map (gpu_fence.bpf.c): events that lose no
#: measurement of ours (a fence emitted before the probe attached, or one
#: whose emit was already counted as a drop).
ANOMALIES = ('unmatched_signal',)
#: A slot still held this long after its emit belongs to a fence released
#: without signaling (no program runs on dma_fence_destroy): user space
#: frees it (counted as ``expired``). Far above any GPU job timeout.
FENCE_MAX_AGE_S = 120.0
#: Expired slots are looked for at most this often (one batched read of
#: the in-flight table).
SWEEP_INTERVAL_S = 30.0
_SLOT = struct.Struct('=QQQII')

_MAPS = (
    # Slots (fence, emit ns, driver, tgid, pad); fence 0 is a free slot.
    spec.Map('inflight', 'I', 'QQQII', 'fence_inflight_max_entries'),
    spec.Map('hist', 'QII', '32Q', 'max_gpu_fence_keys'),
    spec.Map('anomalies', 'I', 'Q'),
)
#: Bounded maps in the slot order of the object's ``drops`` array.
_DROPS = ('inflight', 'hist')
#: ``targ_inflight_mask``: slots - 1 of the ``inflight`` array.
_RODATA = {'targ_inflight_mask': 'Q'}

SPEC = spec.ProbeSpec(
    source='gpu_fence',
    programs=(
        spec.Program('mmv_fence_emit', 'dma_fence:dma_fence_emit', 'tp_btf'),
        spec.Program('mmv_fence_signaled', 'dma_fence:dma_fence_signaled',
                     'tp_btf'),
    ),
    maps=_MAPS,
    rodata=_RODATA,
    drops=_DROPS,
)

#: The same object's raw_tp programs, loaded unattached and driven with
#: BPF_PROG_TEST_RUN: args (fence, clock ns or 0 for now, driver).
SYNTH_SPEC = spec.ProbeSpec(
    source='gpu_fence',
    programs=(
        spec.Program('mmv_fence_emit_synth', 'dma_fence:dma_fence_emit',
                     'raw_tp', attach=False),
        spec.Program('mmv_fence_signaled_synth',
                     'dma_fence:dma_fence_signaled', 'raw_tp', attach=False),
    ),
    maps=_MAPS,
    rodata=_RODATA,
    drops=_DROPS,
)

KALLSYMS = '/proc/kallsyms'
_SUFFIXES = ('_fence_get_driver_name', '_get_driver_name')


def inflight_slots(size):
    """Slots of the in-flight table: ``size`` rounded up to a power of 2."""
    return 1 << max(0, int(size) - 1).bit_length()


def synth_settings(slots):
    """``(settings, max_entries)`` to load :data:`SYNTH_SPEC` with."""
    slots = inflight_slots(slots)
    return {'targ_inflight_mask': slots - 1}, {'inflight': slots}


def driver_label(symbol, module):
    """Label of a fence driver from its get_driver_name symbol.

    ``virtio_gpu`` for a module's function, else the symbol without its
    ``_get_driver_name`` suffix (built-in drivers).
    """
    if module:
        return module
    for suffix in _SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[:-len(suffix)]
    return symbol


def resolve_symbols(addresses, path=KALLSYMS):
    """``{address: label}`` for the addresses found in ``path``.

    :param addresses: kernel text addresses (ints) to name.
    :returns: labels for those present; kallsyms that hides addresses
        (all zero, kptr_restrict) names nothing.
    """
    wanted = set(addresses)
    found = {}
    if not wanted:
        return found
    try:
        with open(path) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) < 3:
                    continue
                try:
                    address = int(parts[0], 16)
                except ValueError:
                    continue
                if address in wanted:
                    module = parts[3].strip('[]') if len(parts) > 3 else ''
                    found[address] = driver_label(parts[2], module)
                    if len(found) == len(wanted):
                        break
    except OSError as err:
        LOG.warning('Cannot read %(path)s to name GPU fence drivers: %(err)s',
                    {'path': path, 'err': err})
    return found


class DriverNames(object):
    """Stable labels for driver addresses; a kernel address is never shown.

    :param resolver: callable(addresses) -> ``{address: label}``.
    """

    def __init__(self, resolver=resolve_symbols):
        self._resolver = resolver
        self._labels = {0: 'unknown'}

    def labels(self, addresses):
        """``{address: label}`` for every address (new ones resolved)."""
        unknown = set(addresses) - set(self._labels)
        if unknown:
            found = self._resolver(unknown)
            for address in sorted(unknown):
                self._labels[address] = found.get(
                    address, 'driver%d' % len(self._labels))
        return {a: self._labels[a] for a in addresses}


def gpu_nodes(patterns):
    """Paths of the GPU device nodes matching ``patterns`` (globs)."""
    return sorted(path for pattern in patterns
                  for path in glob.glob(pattern)
                  if os.path.exists(path))


class GpuFenceProbe(probe.BpfProbe):
    """Log2 histograms of dma_fence emit-to-signaled time.

    Enable with ``[multimodal_virt_collector] probes = gpu_fence,...``.
    Readings carry ``gpu_exec`` (all fences), ``gpu_exec_by_device`` (per
    driver) and ``gpu_exec_by_pid`` (per emitting process); ``gpu_exec``
    is declared observable when a GPU device node
    (``[multimodal_virt_probes] gpu_device_globs``) exists.
    """

    name = 'gpu_fence'
    spec = SPEC

    def __init__(self, conf, host=None, names=None):
        super().__init__(conf, host)
        self._names = names or DriverNames()
        self._swept = None
        #: Totals of :data:`ANOMALIES` and of expired slots since start
        #: (debug figures).
        self.anomalies = dict.fromkeys(ANOMALIES + ('expired',), 0)

    def settings(self):
        slots = inflight_slots(self.group.fence_inflight_max_entries)
        return {'targ_inflight_mask': slots - 1}

    def max_entries(self):
        sizes = super().max_entries()
        sizes['inflight'] = inflight_slots(sizes['inflight'])
        return sizes

    def read(self):
        entries = self.loaded.pop('hist')
        labels = self._names.labels({key[0] for key in entries})
        by_device = {}
        by_pid = {}
        total = None
        for (driver, tgid, _pad), slots in entries.items():
            histogram = decode.histogram_from_slots(slots)
            if not histogram.count:
                continue
            label = labels[driver]
            for table, key in ((by_device, label), (by_pid, tgid)):
                before = table.get(key)
                table[key] = (histogram if before is None
                              else before.merged(histogram))
            total = histogram if total is None else total.merged(histogram)
        self.count_anomalies(ANOMALIES)
        self._sweep()
        if total is None:
            total = decode.histogram_from_slots(())
        observed = (('gpu_exec',) if gpu_nodes(self.group.gpu_device_globs)
                    else ())
        return base.ProbeReading(source='ebpf', gpu_exec=total,
                                 gpu_exec_by_device=by_device,
                                 gpu_exec_by_pid=by_pid,
                                 gpu_observed=observed, events=self.events)

    def _sweep(self, now_ns=None):
        """Free the slots of fences emitted more than
        :data:`FENCE_MAX_AGE_S` ago (released without signaling), at most
        every :data:`SWEEP_INTERVAL_S`.

        A fence signaled in the microseconds between the read and the
        write, whose slot another emit took at once, would lose that emit
        (its signal counted unmatched): a fence 120 s in flight is not
        expected to signal at all.
        """
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        if (self._swept is not None
                and now_ns - self._swept < SWEEP_INTERVAL_S * 1e9):
            return
        self._swept = now_ns
        oldest = now_ns - int(FENCE_MAX_AGE_S * 1e9)
        raw = self.loaded.read_array('inflight')
        expired = [index for index, (fence, emitted, _d, _t, _p)
                   in enumerate(_SLOT.iter_unpack(raw))
                   if fence and emitted and emitted < oldest]
        for index in expired:
            self.loaded.clear_slot('inflight', index)
        self.anomalies['expired'] += len(expired)
        if expired:
            LOG.debug('gpu_fence: freed %d slot(s) of fences released '
                      'without signaling', len(expired))
