"""Nova API validators for our flavor extra specs.

Loaded by Nova through the ``nova.api.extra_spec_validators`` entry point,
so ``openstack flavor set --property multimodal_virt:io_p99_us=abc`` (or a
misspelt key in the ``multimodal_virt`` namespace) is refused by the API.

Three families: latency SLOs (read by the LatencyFilter), guest disk tuning
and GPU VF scheduling profiles (both applied by the nova-compute driver
hook, :mod:`multimodal_virt.compute.specs`, whose bounds these reuse).
"""

from nova.api.validation.extra_specs import base

from multimodal_virt.compute import specs
from multimodal_virt.metrics import vocabulary
from multimodal_virt.scheduler import slo

EXTRA_SPEC_VALIDATORS = [
    base.ExtraSpecValidator(
        name=vocabulary.SLO_KEY_FORMAT,
        description=(
            'Latency SLO enforced by the multimodal-virt LatencyFilter: '
            'hosts whose live {metric} latency {percentile} (from eBPF '
            'histograms) is above the value are not chosen.'),
        value={
            'type': int,
            'min': 1,
            'max': slo.MAX_LIMIT_US,
            'description': 'Latency limit in microseconds.',
        },
        parameters=[
            {
                'name': 'metric',
                'pattern': '|'.join(vocabulary.LATENCY_METRICS),
                'description': '; '.join(
                    '%s: %s' % (metric, vocabulary.METRIC_DESCRIPTIONS[metric])
                    for metric in vocabulary.LATENCY_METRICS),
            },
            {
                'name': 'percentile',
                'pattern': '|'.join(vocabulary.PERCENTILE_NAMES),
                'description': 'Latency percentile.',
            },
        ],
    ),
    base.ExtraSpecValidator(
        name=specs.DISK_IOTHREADS,
        description=(
            'Dedicated QEMU iothreads for the guest disks (applied by '
            'compute_driver = multimodal_virt.LibvirtDriver): virtio disks '
            'are spread round robin over them.'),
        value={
            'type': int,
            'min': 1,
            'max': specs.MAX_IOTHREADS,
            'description': 'Number of iothreads.',
        },
    ),
    base.ExtraSpecValidator(
        name=specs.DISK_IO,
        description=(
            "I/O mode of the guest's file and block disks: native (Linux "
            'AIO, needs cache none or directsync), io_uring or threads.'),
        value={
            'type': str,
            'enum': specs.IO_MODES,
            'description': 'libvirt <driver io=...> of each disk.',
        },
    ),
    base.ExtraSpecValidator(
        name=specs.DISK_QUEUES,
        description='virtio-blk queues of each guest disk.',
        value={
            'type': int,
            'min': 1,
            'max': specs.MAX_DISK_QUEUES,
            'description': 'Number of queues.',
        },
    ),
    base.ExtraSpecValidator(
        name=specs.GPU_SCHED_PRIORITY,
        description=(
            'Scheduling priority written to the profile of each GPU VF the '
            'instance gets (xe sriov_admin/vfN/profile/sched_priority).'),
        value={
            'type': str,
            'enum': specs.SCHED_PRIORITIES,
            'description': 'low, normal or high.',
        },
    ),
    base.ExtraSpecValidator(
        name=specs.GPU_EXEC_QUANTUM_MS,
        description=(
            'Execution quantum of each GPU VF the instance gets '
            '(profile/exec_quantum_ms; 0 = no limit).'),
        value={
            'type': int,
            'min': 0,
            'max': specs.MAX_EXEC_QUANTUM_MS,
            'description': 'Milliseconds.',
        },
    ),
    base.ExtraSpecValidator(
        name=specs.GPU_PREEMPT_TIMEOUT_US,
        description=(
            'Preemption timeout of each GPU VF the instance gets '
            '(profile/preempt_timeout_us; 0 = no limit).'),
        value={
            'type': int,
            'min': 0,
            'max': specs.MAX_PREEMPT_TIMEOUT_US,
            'description': 'Microseconds.',
        },
    ),
]


def register():
    """Return our validators (called by Nova's validator loader)."""
    return EXTRA_SPEC_VALIDATORS
