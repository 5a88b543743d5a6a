"""GPU queue wait and execution from the DRM GPU scheduler's tracepoints.

Clocks (kernel monotonic time, per job of the DRM GPU scheduler, keyed by
its scheduler fence; see ``gpu_sched.bpf.c``):

* ``gpu_queue``: the job is queued on its scheduler entity (``drm_sched_job``,
  6.17+: ``drm_sched_job_queue``; in the submitting process) to the job
  handed to the hardware ring (``drm_run_job`` / ``drm_sched_job_run``).
* execution: run to done (``drm_sched_process_job`` / ``drm_sched_job_done``,
  the hardware fence signaled). It feeds ``gpu_exec`` for the drivers whose
  fences the gpu_fence probe did not measure in the same window (most
  drm_sched drivers never call ``dma_fence_emit``), attributed to the
  submitting process; see :func:`exec_reading`.

The tracepoints belong to the gpu-sched module: where it is not loaded (or
the kernel predates them) no program attaches, the reading declares
nothing observable and carries no histogram, so the sample says
``gpu_queue`` is not observable instead of publishing a zero.
"""

import dataclasses
import time

from oslo_log import log as logging

from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.bpf import probe
from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import base
from multimodal_virt.collector.probes import gpu_fence
from multimodal_virt import exception

LOG = logging.getLogger(__name__)

#: Slots of the ``anomalies`` map: events that lose no measurement of ours
#: (a job queued before the probe attached).
ANOMALIES = ('run_unmatched', 'done_unmatched')
#: Histogram kinds (``mmv_sched_key.kind``).
QUEUE, EXEC = 0, 1
#: A job still in the table this long after it was queued lost its done
#: event (an entity killed with jobs queued): user space deletes it.
JOB_MAX_AGE_S = 300.0

_MAPS = (
    # Key: scheduler fence; value: (queued ns, run ns, tgid, pad).
    spec.Map('inflight', 'Q', 'QQII', 'sched_inflight_max_entries'),
    spec.Map('hist', 'QII', '32Q', 'max_gpu_sched_keys'),
    spec.Map('anomalies', 'I', 'Q'),
)
_DROPS = ('inflight', 'hist')
#: Byte offsets of module fields, set from the module's BTF.
_RODATA = {'targ_job_s_fence_off': 'I', 'targ_sfence_parent_off': 'I'}
#: (struct, member) -> setting.
OFFSETS = {('drm_sched_job', 's_fence'): 'targ_job_s_fence_off',
           ('drm_sched_fence', 'parent'): 'targ_sfence_parent_off'}

#: Event pairs per kernel generation: (queued, run, done).
GENERATIONS = (
    ('drm_sched_job', 'drm_run_job', 'drm_sched_process_job'),
    ('drm_sched_job_queue', 'drm_sched_job_run', 'drm_sched_job_done'),
)
_PROGRAMS = ('mmv_sched_queued', 'mmv_sched_run', 'mmv_sched_done')

SPEC = spec.ProbeSpec(
    source='gpu_sched',
    programs=tuple(
        spec.Program(name + suffix, 'gpu_scheduler:' + event, 'raw_tp',
                     required=False)
        for suffix, events in zip(('', '_v2'), GENERATIONS)
        for name, event in zip(_PROGRAMS, events)),
    maps=_MAPS,
    rodata=_RODATA,
    drops=_DROPS,
)

#: The same object's synthetic-event programs, driven with
#: BPF_PROG_TEST_RUN: args (scheduler fence, clock ns or 0, driver).
SYNTH_SPEC = spec.ProbeSpec(
    source='gpu_sched',
    programs=tuple(
        spec.Program(name + '_synth', 'gpu_scheduler:' + event, 'raw_tp',
                     attach=False)
        for name, event in zip(_PROGRAMS, GENERATIONS[0])),
    maps=_MAPS,
    rodata=_RODATA,
    drops=_DROPS,
)


def observed_split(events):
    """True when the attached events time both halves of a job: queued,
    run and done of one generation."""
    attached = {event.split(':', 1)[-1] for event in events}
    return any(set(generation) <= attached for generation in GENERATIONS)


def module_offsets(find_offset):
    """``{setting: byte offset}`` of the module fields the programs read.

    :param find_offset: callable(struct, member) -> offset or ``None``
        (``libbpf.btf_member_offset``).
    :returns: the settings found; those whose type no BTF holds are left
        out (the scheduler is not loaded: nothing attaches).
    """
    found = {}
    for (struct, member), setting in OFFSETS.items():
        offset = find_offset(struct, member)
        if offset is not None:
            found[setting] = offset
    return found


class GpuSchedProbe(probe.BpfProbe):
    """Queue wait (``gpu_queue``) and execution of DRM GPU scheduler jobs.

    Enable with ``[multimodal_virt_collector] probes = gpu_sched,...``.
    The reading carries ``gpu_queue`` and ``gpu_sched_exec`` (``{(driver
    label, tgid): histogram}``) when the kernel offers one generation's
    three events, and declares ``gpu_queue`` observable then; otherwise it
    carries neither.
    """

    name = 'gpu_sched'
    spec = SPEC

    def __init__(self, conf, host=None, names=None, offsets=None):
        super().__init__(conf, host)
        self._names = names or gpu_fence.DriverNames()
        self._offsets = offsets
        #: Totals of :data:`ANOMALIES` and expired jobs since start.
        self.anomalies = dict.fromkeys(ANOMALIES + ('expired',), 0)

    def settings(self):
        if self._offsets is None:
            try:
                from multimodal_virt.collector.bpf import libbpf
                self._offsets = module_offsets(libbpf.btf_member_offset)
            except exception.BPFUnavailable as err:
                # No libbpf: nothing will load (dump mode describes).
                LOG.debug('gpu_sched: no BTF lookup: %s', err)
                return {}
        return dict(self._offsets)

    def start(self):
        settings = self.settings()
        if len(settings) < len(OFFSETS):
            # No module BTF with the scheduler's types: its programs would
            # read the wrong fields; load the maps only (not observable).
            self.spec = dataclasses.replace(SPEC, programs=())
        super().start()
        if not observed_split(self.events):
            LOG.info('Probe gpu_sched: the kernel offers no DRM GPU '
                     'scheduler tracepoints (module gpu-sched not loaded?): '
                     'gpu_queue is published as not observable')

    def read(self):
        entries = self.loaded.pop('hist')
        self._expire()
        self.count_anomalies(ANOMALIES)
        if not observed_split(self.events):
            return base.ProbeReading(source='ebpf', events=self.events)
        labels = self._names.labels({key[0] for key in entries
                                     if key[2] == EXEC})
        queue = decode.histogram_from_slots(())
        executed = {}
        for (driver, tgid, kind), slots in entries.items():
            histogram = decode.histogram_from_slots(slots)
            if not histogram.count:
                continue
            if kind == QUEUE:
                queue = queue.merged(histogram)
            elif kind == EXEC:
                key = (labels[driver], tgid)
                before = executed.get(key)
                executed[key] = (histogram if before is None
                                 else before.merged(histogram))
        return base.ProbeReading(source='ebpf', gpu_queue=queue,
                                 gpu_sched_exec=executed,
                                 gpu_observed=('gpu_queue',),
                                 events=self.events)

    def _expire(self, now_ns=None):
        """Delete jobs queued more than :data:`JOB_MAX_AGE_S` ago."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        limit = now_ns - int(JOB_MAX_AGE_S * 1e9)
        for key, (queued, _run, _tgid, _pad) in self.loaded.read(
                'inflight').items():
            if queued < limit:
                self.loaded.delete('inflight', key)
                self.anomalies['expired'] += 1
