"""Options of the nova-compute driver hook (``[multimodal_virt_compute]``).

Read inside nova-compute by ``compute_driver = multimodal_virt.LibvirtDriver``
(and by its privsep daemon for the GPU profile defaults). Imports oslo.config
and the (dependency-free) vocabulary only.
"""

from oslo_config import cfg

from multimodal_virt.conf import groups
from multimodal_virt.metrics import vocabulary

GROUP = cfg.OptGroup(
    'multimodal_virt_compute',
    title='multimodal-virt nova-compute driver hook',
    help='Latency-tier traits reported by nova-compute, guest tuning and '
         'GPU VF scheduling profiles.')

PERCENTILES = vocabulary.PERCENTILE_NAMES
SCHED_PRIORITIES = ('low', 'normal', 'high')
# Bounds of the GPU profile values (flavor extra specs and defaults).
MAX_EXEC_QUANTUM_MS = 100000
MAX_PREEMPT_TIMEOUT_US = 100000000

#: Latency metrics reported as tier traits: those with threshold options
#: below. A deprecated alias of one of them (``vocabulary.METRIC_ALIASES``:
#: ``gpu_cmd`` -> ``gpu_submit``) gets its own trait with the same tier.
TIER_METRICS = ('io', 'gpu_exec', 'gpu_submit')

OPTS = [
    cfg.BoolOpt('latency_traits',
                default=True,
                help="""
Report latency-tier traits (``CUSTOM_MULTIMODAL_VIRT_<METRIC>_LAT_<TIER>``)
on this host's compute node resource provider from the latest local sample
in the stats store. nova-compute sets them in ``update_provider_tree`` with
its own Placement credentials.

Possible values:

* ``True``: report tiers (the collector on this host must publish to the
  ``[multimodal_virt_store]`` this nova-compute reads).
* ``False``: report none and remove the ones this hook set before.

Related options:

* ``tier_percentile``, ``tier_hysteresis``, ``tier_min_dwell``
"""),
    cfg.StrOpt('tier_percentile',
               default='p99',
               choices=PERCENTILES,
               help="""
Latency percentile compared with the tier thresholds.

Possible values:

* ``p50``, ``p95`` or ``p99``.

Related options:

* ``io_latency_low_max_us`` and the other thresholds
"""),
    cfg.FloatOpt('io_latency_low_max_us',
                 default=1000.0,
                 min=0.0,
                 help="""
Highest block I/O latency (microseconds, at ``tier_percentile``) of the LOW
tier: ``CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW``.

Possible values:

* A latency in microseconds, not above ``io_latency_medium_max_us``.

Related options:

* ``io_latency_medium_max_us``, ``tier_hysteresis``
"""),
    cfg.FloatOpt('io_latency_medium_max_us',
                 default=10000.0,
                 min=0.0,
                 help="""
Highest block I/O latency (microseconds) of the MEDIUM tier; anything above
is ``CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH``.

Possible values:

* A latency in microseconds, not below ``io_latency_low_max_us``.

Related options:

* ``io_latency_low_max_us``
"""),
    cfg.FloatOpt('gpu_exec_latency_low_max_us',
                 default=2000.0,
                 min=0.0,
                 help="""
Highest GPU job execution latency (microseconds, ``gpu_exec``: dma_fence
emitted to signaled) of the LOW tier:
``CUSTOM_MULTIMODAL_VIRT_GPU_EXEC_LAT_LOW``.

Possible values:

* A latency in microseconds, not above ``gpu_exec_latency_medium_max_us``.

Related options:

* ``gpu_exec_latency_medium_max_us``, ``tier_hysteresis``
"""),
    cfg.FloatOpt('gpu_exec_latency_medium_max_us',
                 default=20000.0,
                 min=0.0,
                 help="""
Highest GPU job execution latency (microseconds) of the MEDIUM tier;
anything above is ``CUSTOM_MULTIMODAL_VIRT_GPU_EXEC_LAT_HIGH``.

Possible values:

* A latency in microseconds, not below ``gpu_exec_latency_low_max_us``.

Related options:

* ``gpu_exec_latency_low_max_us``
"""),
    cfg.FloatOpt('gpu_submit_latency_low_max_us',
                 default=100.0,
                 min=0.0,
                 deprecated_name='gpu_cmd_latency_low_max_us',
                 help="""
Highest GPU command-submission latency (microseconds, ``gpu_submit``: entry
to return of the submission ioctls) of the LOW tier:
``CUSTOM_MULTIMODAL_VIRT_GPU_SUBMIT_LAT_LOW``. The deprecated
``CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_*`` traits carry the same tier.

Possible values:

* A latency in microseconds, not above ``gpu_submit_latency_medium_max_us``.

Related options:

* ``gpu_submit_latency_medium_max_us``; the deprecated name of this option
  is ``gpu_cmd_latency_low_max_us``
"""),
    cfg.FloatOpt('gpu_submit_latency_medium_max_us',
                 default=1000.0,
                 min=0.0,
                 deprecated_name='gpu_cmd_latency_medium_max_us',
                 help="""
Highest GPU command-submission latency (microseconds) of the MEDIUM tier;
anything above is ``CUSTOM_MULTIMODAL_VIRT_GPU_SUBMIT_LAT_HIGH`` (and the
deprecated ``CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_HIGH``).

Possible values:

* A latency in microseconds, not below ``gpu_submit_latency_low_max_us``.

Related options:

* ``gpu_submit_latency_low_max_us``; the deprecated name of this option is
  ``gpu_cmd_latency_medium_max_us``
"""),
    cfg.FloatOpt('tier_hysteresis',
                 default=0.1,
                 min=0.0,
                 max=0.9,
                 help="""
Relative band around each threshold inside which the tier does not change.
With 0.1 and a LOW/MEDIUM threshold of 1000 us, a LOW host becomes MEDIUM
only above 1100 us, and a MEDIUM host becomes LOW only below 900 us.

Possible values:

* A fraction from 0.0 (no band) to 0.9.

Related options:

* ``tier_min_dwell``
"""),
    cfg.IntOpt('tier_min_dwell',
               default=300,
               min=0,
               help="""
Seconds a tier is kept after it was set before another tier may replace it,
so a host whose latency swings does not flip its trait at every
``update_available_resource`` run. A tier removed because the sample went
stale is not subject to the dwell.

Possible values:

* Seconds; 0 disables the dwell.

Related options:

* ``tier_hysteresis``, ``[DEFAULT] update_resources_interval`` (Nova)
"""),
    cfg.IntOpt('sample_stale_after',
               default=120,
               min=1,
               help="""
Age in seconds after which this host's sample no longer sets tiers; the
tier traits are then removed (no trait means "not measured").

Possible values:

* Seconds; several ``[multimodal_virt_collector] interval`` long.

Related options:

* ``[multimodal_virt_scheduler] stale_after``
"""),
    cfg.StrOpt('gpu_default_sched_priority',
               default='low',
               choices=SCHED_PRIORITIES,
               help="""
``sched_priority`` written back to a VF's profile when its instance is
deleted or moves away (the xe driver's default for VFs is ``low``; i915 PFs
have no ``sched_priority``, nothing is written there).

Possible values:

* ``low``, ``normal`` or ``high``.

Related options:

* ``gpu_default_exec_quantum_ms``, ``gpu_default_preempt_timeout_us``
"""),
    cfg.IntOpt('gpu_default_exec_quantum_ms',
               default=0,
               min=0,
               max=MAX_EXEC_QUANTUM_MS,
               help="""
``exec_quantum_ms`` written back to a VF's profile when its instance is
deleted or moves away (0: no limit, the xe and i915 default; on i915 it is
written to every ``gt*`` of the VF).

Possible values:

* Milliseconds, 0 to 100000.

Related options:

* ``gpu_default_sched_priority``
"""),
    cfg.IntOpt('gpu_default_preempt_timeout_us',
               default=0,
               min=0,
               max=MAX_PREEMPT_TIMEOUT_US,
               help="""
``preempt_timeout_us`` written back to a VF's profile when its instance is
deleted or moves away (0: no limit, the xe and i915 default; on i915 it is
written to every ``gt*`` of the VF).

Possible values:

* Microseconds, 0 to 100000000.

Related options:

* ``gpu_default_sched_priority``
"""),
]


def register_opts(conf):
    """Register the ``[multimodal_virt_compute]`` options on ``conf``."""
    groups.register(conf, GROUP, OPTS)


def list_opts():
    """Return ``[(group, opts)]`` for oslo-config-generator."""
    return [(GROUP, OPTS)]
