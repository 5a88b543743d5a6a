"""Options for the bottleneck analysis (``[multimodal_virt_analysis]``).

Used by ``multimodal-virt analyze``, ``multimodal-virt status`` and the
demo. Each threshold is the level at which a path counts as a bottleneck;
a path's *pressure* is its measured value divided by its threshold, and the
path with the highest pressure dominates.
"""

from oslo_config import cfg

from multimodal_virt.conf import groups

GROUP = cfg.OptGroup(
    'multimodal_virt_analysis',
    title='Bottleneck analysis',
    help='Thresholds of the operator bottleneck analysis (multimodal-virt '
         'analyze) and the demo flavor SLOs.')

OPTS = [
    cfg.StrOpt('percentile',
               default='p99',
               choices=['p50', 'p95', 'p99'],
               help="""
Latency percentile compared with the latency thresholds.

Related options:

* ``gpu_exec_threshold_us``, ``gpu_submit_threshold_us``,
  ``io_threshold_us``
"""),
    cfg.FloatOpt('gpu_exec_threshold_us',
                 default=20000.0,
                 min=1.0,
                 help="""
GPU job latency (``gpu_exec``: dma_fence emitted to signaled, microseconds,
at ``percentile``) above which GPU execution is a bottleneck: jobs wait for
a shared GPU. The analysis then recommends an SR-IOV GPU VF with a
scheduling profile and a flavor ``gpu_exec`` SLO at this value.

Possible values:

* a latency in microseconds >= 1

Related options:

* ``percentile``, ``slo_headroom``, ``gpu_submit_threshold_us``
"""),
    cfg.FloatOpt('gpu_submit_threshold_us',
                 default=2000.0,
                 min=1.0,
                 deprecated_name='gpu_cmd_threshold_us',
                 help="""
GPU command-submission latency (``gpu_submit``: the submission ioctls,
microseconds, at ``percentile``) above which the submission path is a
bottleneck. The analysis then recommends an SR-IOV GPU VF and a flavor
``gpu_submit`` SLO at this value. Formerly ``gpu_cmd_threshold_us``
(still read, deprecated).

Possible values:

* a latency in microseconds >= 1

Related options:

* ``percentile``, ``slo_headroom``, ``gpu_exec_threshold_us``
"""),
    cfg.FloatOpt('gpu_queue_threshold_us',
                 default=10000.0,
                 min=1.0,
                 help="""
GPU queue wait (``gpu_queue``: a DRM GPU scheduler job queued on its entity
to handed to the hardware ring, microseconds, at ``percentile``) above which
GPU queueing is a bottleneck: jobs wait behind other tenants' jobs. The
analysis then recommends an SR-IOV GPU VF with a scheduling profile and a
flavor ``gpu_queue`` SLO at this value. Measured only where the gpu-sched
module is loaded (probe ``gpu_sched``).

Possible values:

* a latency in microseconds >= 1

Related options:

* ``percentile``, ``slo_headroom``, ``gpu_exec_threshold_us``
"""),
    cfg.FloatOpt('io_threshold_us',
                 default=10000.0,
                 min=1.0,
                 help="""
Block I/O latency (microseconds, at ``percentile``) above which storage I/O
is a bottleneck. The analysis then recommends dedicated iothreads with
``io='native'`` and a flavor I/O SLO at this value.

Possible values:

* a latency in microseconds >= 1

Related options:

* ``percentile``; ``[multimodal_virt_compute] io_latency_medium_max_us``
"""),
    cfg.FloatOpt('vm_exit_rate_threshold',
                 default=50000.0,
                 min=1.0,
                 help="""
VM exits per second on a host above which VM exits are a bottleneck (guests
spend their time trapping into the hypervisor, typically emulated devices).

Possible values:

* exits per second >= 1
"""),
    cfg.FloatOpt('irq_rate_threshold',
                 default=100000.0,
                 min=1.0,
                 help="""
Hard interrupts per second on a host above which interrupt handling is a
bottleneck.

Possible values:

* interrupts per second >= 1
"""),
    cfg.FloatOpt('slo_headroom',
                 default=1.0,
                 min=0.1,
                 max=1.0,
                 help="""
Fraction of a threshold used as the flavor SLO the analysis recommends and
the demo flavor asks for: ``multimodal_virt:<metric>_<percentile>_us =
threshold * slo_headroom``.

Possible values:

* 0.1 to 1.0 (1.0: the SLO equals the threshold)

Related options:

* ``gpu_exec_threshold_us``, ``gpu_submit_threshold_us``,
  ``io_threshold_us``
"""),
    cfg.IntOpt('top_instances',
               default=3,
               min=0,
               help="""
How many instances with the most VM exits the analysis names when VM exits
dominate (0: none).
"""),
]


def register_opts(conf):
    groups.register(conf, GROUP, OPTS)


def list_opts():
    return [(GROUP, OPTS)]
