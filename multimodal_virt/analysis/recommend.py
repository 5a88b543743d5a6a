"""Recommendations tied to what this suite and Nova apply.

Every recommendation carries artefacts an operator can use as they are:

* ``flavor_extra_spec``: one concrete flavor property each, Nova's own
  (``hw:cpu_policy``, ``hw:emulator_threads_policy``, ``hw:mem_page_size``,
  ``hw:numa_nodes``) or ours (latency SLOs for the LatencyFilter; disk
  tuning and GPU VF profiles applied by ``compute_driver =
  multimodal_virt.LibvirtDriver``). Every one passes Nova's API validators.
* ``command``: a ``multimodal-virt`` command to run, among them a
  ``flavor create`` that sets all of a recommendation's properties.
"""

import dataclasses

from multimodal_virt.compute import specs as compute_specs
from multimodal_virt.metrics import vocabulary

FLAVOR_PLACEHOLDER = 'FLAVOR'
ALIAS_PLACEHOLDER = '<alias from pci config>'
#: xe's order of magnitude for a shared engine's time slice.
GPU_EXEC_QUANTUM_MS = 10


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """One action for one path.

    :param path: the path it relieves (``gpu_exec``, ``gpu_submit``,
        ``io``, ``vm_exit``, ``irq``) or ``collector`` for a stale or empty
        sample.
    :param action: what to do, in one sentence.
    :param why: the measurement that calls for it.
    :param artefacts: tuple of ``(kind, text)``.
    """

    path: str
    action: str
    why: str
    artefacts: tuple = ()

    def to_dict(self):
        return {'path': self.path, 'action': self.action, 'why': self.why,
                'artefacts': [{'kind': kind, 'text': text}
                              for kind, text in self.artefacts]}


def _slo(metric, thresholds):
    return (vocabulary.slo_key(metric, thresholds.percentile),
            str(thresholds.slo_us(metric)))


def _flavor(pairs, *commands):
    """Artefacts: one property per pair, then a flavor command setting all."""
    artefacts = [('flavor_extra_spec', '%s=%s' % kv) for kv in pairs]
    artefacts.extend(('command', c) for c in commands)
    artefacts.append(('command', 'multimodal-virt flavor create %s %s' % (
        FLAVOR_PLACEHOLDER, ' '.join('--property %s=%s' % kv
                                     for kv in pairs))))
    return tuple(artefacts)


# Guest vCPUs on dedicated host CPUs, QEMU's emulator threads (and the
# iothreads our driver pins with them) on other CPUs.
_ISOLATE = (('hw:cpu_policy', 'dedicated'),
            ('hw:emulator_threads_policy', 'isolate'))
# Guest memory on one NUMA node, backed by huge pages.
_LOCAL_MEMORY = (('hw:numa_nodes', '1'), ('hw:mem_page_size', 'large'))


_GPU_ACTIONS = {
    'gpu_exec': 'GPU jobs wait for a shared GPU',
    'gpu_submit': 'GPU command submission is congested',
    'gpu_queue': "GPU jobs queue behind other tenants' jobs",
}


def _gpu(sample, over, thresholds):
    """One recommendation for every GPU path over its threshold.

    :param over: the GPU :class:`~.bottleneck.PathPressure` objects over
        their thresholds, highest first; the SLOs name each of them, the
        preemption budget follows the first.
    """
    first = over[0].path
    return Recommendation(
        path=first,
        action='%s: move the GPU workload to an SR-IOV GPU virtual function '
               '(vfio passthrough) with a scheduling profile, so its jobs '
               'and commands go straight to a VF with its own time slice '
               'instead of a shared path; keep flavors with GPU latency '
               'needs away from this host with GPU SLOs'
               % '; '.join(_GPU_ACTIONS[p.path] for p in over),
        why='; '.join(p.describe(thresholds.percentile) for p in over),
        artefacts=_flavor(
            (('multimodal_virt:gpu_sched_priority', 'high'),
             ('multimodal_virt:gpu_exec_quantum_ms',
              str(GPU_EXEC_QUANTUM_MS)),
             # A competing context is preempted within the latency budget.
             ('multimodal_virt:gpu_preempt_timeout_us',
              str(min(compute_specs.MAX_PREEMPT_TIMEOUT_US,
                      thresholds.slo_us(first))))) + _LOCAL_MEMORY
            + tuple(_slo(p.path, thresholds) for p in over),
            'multimodal-virt pci discover --format text',
            'multimodal-virt pci config --format ini --hostname %s'
            % sample.host,
            'multimodal-virt flavor create %s --pci-alias %s:1'
            % (FLAVOR_PLACEHOLDER, ALIAS_PLACEHOLDER)))


def _io(sample, pressure, thresholds):
    return Recommendation(
        path='io',
        action='give guest disks dedicated iothreads with native Linux AIO '
               "and several queues so I/O leaves QEMU's main loop, keep "
               "those threads off the guest's vCPUs, and keep "
               'latency-sensitive flavors off this host with an I/O SLO',
        why=pressure.describe(thresholds.percentile),
        artefacts=_flavor(
            ((compute_specs.DISK_IOTHREADS, '2'),
             (compute_specs.DISK_IO, 'native'),
             (compute_specs.DISK_QUEUES, '4')) + _ISOLATE
            + (_slo('io', thresholds),)))


def _top_instances(sample, count):
    ranked = sorted(sample.vm_exits_by_instance.items(),
                    key=lambda kv: (-kv[1], kv[0]))
    return ranked[:count]


def _vm_exit(sample, pressure, thresholds):
    top = _top_instances(sample, thresholds.top_instances)
    artefacts = []
    if top:
        artefacts.append(('instances', ', '.join(
            '%s %.0f exits/s' % (uuid, rate) for uuid, rate in top)))
    artefacts.extend(_flavor(
        _ISOLATE + _LOCAL_MEMORY + ((compute_specs.DISK_IOTHREADS, '1'),),
        'multimodal-virt pci config --format ini --hostname %s'
        % sample.host))
    return Recommendation(
        path='vm_exit',
        action='cut trapped device access: give the busiest guests a '
               'passthrough VF for their accelerator and virtio disks on '
               'iothreads instead of emulated devices',
        why=pressure.describe(thresholds.percentile),
        artefacts=tuple(artefacts))


def _irq(sample, pressure, thresholds):
    return Recommendation(
        path='irq',
        action='keep interrupt handling off the CPUs running the guest: '
               'dedicated vCPUs, emulator threads and iothreads isolated '
               "on other CPUs (nova.conf [compute] cpu_shared_set should "
               'hold the CPUs serving the busy IRQ lines in '
               '/proc/interrupts)',
        why=pressure.describe(thresholds.percentile),
        artefacts=_flavor(_ISOLATE + ((compute_specs.DISK_IOTHREADS, '1'),)))


_BUILDERS = {'io': _io, 'vm_exit': _vm_exit, 'irq': _irq}


def for_finding(sample, verdict, over, thresholds):
    """Recommendations for one analysed host.

    :param sample: the host sample.
    :param verdict: the finding's verdict.
    :param over: every :class:`PathPressure` over its threshold, highest
        first.
    :param thresholds: the analysis thresholds.
    :returns: list of :class:`Recommendation`, most urgent first.
    """
    result = []
    if verdict in ('stale', 'no-data'):
        result.append(Recommendation(
            path='collector',
            action='check the collector on %s: it is not publishing fresh '
                   'samples' % sample.host,
            why='sample from %s, %s source' % (verdict, sample.source),
            artefacts=(
                ('command', 'systemctl status multimodal-virt-collector'),
                ('command', 'multimodal-virt-collector --once'),
            )))
    gpu = [p for p in over if p.path in _GPU_ACTIONS]
    for pressure in over:
        if pressure.path in _GPU_ACTIONS:
            if pressure is gpu[0]:
                result.append(_gpu(sample, gpu, thresholds))
            continue
        result.append(_BUILDERS[pressure.path](sample, pressure, thresholds))
    return result
