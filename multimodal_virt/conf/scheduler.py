"""Options for the scheduler filter and weigher (``[multimodal_virt_scheduler]``)."""

from oslo_config import cfg
from oslo_config import types

from multimodal_virt.conf import groups
from multimodal_virt.metrics import vocabulary


class MetricWeights(types.Dict):
    """``metric:weight`` pairs; unknown metric names are refused."""

    def __init__(self):
        super().__init__(value_type=types.Float(min=0.0),
                         type_name='metric weights')

    def __call__(self, value):
        weights = super().__call__(value)
        unknown = sorted(set(weights) - set(vocabulary.LATENCY_METRICS))
        if unknown:
            raise ValueError('unknown metrics %s in metric_weights (known: '
                             '%s)' % (', '.join(unknown),
                                      ', '.join(vocabulary.LATENCY_METRICS)))
        return weights


GROUP = cfg.OptGroup(
    'multimodal_virt_scheduler',
    title='Latency-aware scheduling',
    help='LatencyFilter and LatencyWeigher settings (nova-scheduler).')

STALE_POLICIES = ('neutral', 'penalize', 'reject')

OPTS = [
    cfg.FloatOpt('refresh_interval',
                 default=5.0,
                 min=0.0,
                 help="""
Seconds between reads of the stats store by the scheduler's background
refresher. It reads all hosts in one batched call and swaps in a new
snapshot; scheduling requests never wait for the store, they read the
latest snapshot (a dictionary lookup per host).

Possible values:

* 0 or more seconds; below 0.01 the refresher still pauses 0.01 s.

Related options:

* ``stale_after``: a store outage keeps the last samples, which become
  stale after this many seconds.
"""),
    cfg.BoolOpt('refresh_worker',
                default=True,
                help="""
Run each refresh (reading, verifying and scoring every compute node's
sample) in one long-lived child process of nova-scheduler, so its CPU work
never competes with scheduling requests for the interpreter. The child
reads the same ``[multimodal_virt_store]`` options and holds the store
connection; nova-scheduler keeps only the scores it sends back. When the
child fails, that refresh runs in nova-scheduler and a warning is logged.

Possible values:

* true: refresh in a child process (recommended from a few hundred
  compute nodes).
* false: refresh in a background thread of nova-scheduler.

Related options:

* ``refresh_timeout``, ``refresh_interval``
"""),
    cfg.FloatOpt('refresh_timeout',
                 default=60.0,
                 min=1.0,
                 help="""
Seconds the refresh worker may take to answer one refresh. A worker that
takes longer is killed, that refresh runs in nova-scheduler, and the next
one starts a new worker.

Possible values:

* 1 or more seconds; well above one refresh of every node.

Related options:

* ``refresh_worker``
"""),
    cfg.FloatOpt('stale_after',
                 default=60.0,
                 min=1.0,
                 help="""
Age in seconds after which a host sample is stale and ``stale_policy``
applies.

Related options:

* ``stale_policy``
"""),
    cfg.StrOpt('stale_policy',
               default='penalize',
               choices=[
                   ('neutral', 'treat the host as if it had no sample: it '
                               'passes the filter and gets the neutral score'),
                   ('penalize', 'the host passes the filter but is weighed '
                                'as the worst reporting host'),
                   ('reject', 'the LatencyFilter rejects the host for '
                              'flavors with latency SLOs (flavors without '
                              'them are never filtered); it is weighed as '
                              'the worst reporting host'),
               ],
               help='What to do with a host whose sample is stale.'),
    cfg.FloatOpt('forget_after',
                 default=86400.0,
                 min=0.0,
                 help="""
Seconds after its last sample during which the scheduler remembers a host
whose sample disappeared from the store (a memcached key that expired, a
deleted file). Until then the host is judged by that last sample, which is
stale, so a dead host stays rejected (``stale_policy = reject``) or
penalised instead of passing as a host with no sample. The memory is per
scheduler process and starts empty when it restarts.

Possible values:

* Seconds; values below ``stale_after`` act as ``stale_after``.

Related options:

* ``stale_after``, ``stale_policy``, ``missing_policy``
"""),
    cfg.StrOpt('missing_policy',
               default='neutral',
               choices=[
                   ('neutral', 'hosts with no sample pass and get the '
                               'neutral (median) score'),
                   ('penalize', 'hosts with no sample are weighed as the '
                                'worst reporting host'),
               ],
               help="""
What to do with a host that has no sample at all. A missing host never
makes the scheduler fail and never erases the ranking of the others.
"""),
    cfg.StrOpt('percentile',
               default='p99',
               choices=['p50', 'p95', 'p99'],
               help='Latency percentile the weigher ranks by.'),
    cfg.Opt('metric_weights',
            type=MetricWeights(),
            default={},
            help="""
Share of each latency metric in the blended latency score, as
``metric:weight`` pairs. The blend is the sum over metrics of
``weight * metric_pXX`` (microseconds); 0 leaves a metric out. A metric not
listed keeps its default: ``gpu_exec``, ``gpu_queue``, ``gpu_submit`` and
``io`` 1.0, ``gpu_wait`` 0 (it measures how a program synchronises),
``gpu_cmd`` 0 (a deprecated alias: a weight given for it sets
``gpu_submit``'s).

Possible values:

* Pairs whose names are the latency metrics of the vocabulary
  (``gpu_cmd``, ``io``, and any metric a newer release adds); an unknown
  name is refused. Example: ``gpu_cmd:2.0,io:0.5``.

Related options:

* ``percentile``; ``gpu_cmd_weight`` and ``io_weight`` (deprecated)
"""),
    cfg.FloatOpt('gpu_cmd_weight',
                 default=1.0,
                 min=0.0,
                 deprecated_for_removal=True,
                 deprecated_reason='Use metric_weights = gpu_cmd:<weight>.',
                 help="""
Deprecated alias of ``metric_weights`` ``gpu_cmd``: used when set away from
1.0 and ``metric_weights`` does not name ``gpu_cmd``.
"""),
    cfg.FloatOpt('io_weight',
                 default=1.0,
                 min=0.0,
                 deprecated_for_removal=True,
                 deprecated_reason='Use metric_weights = io:<weight>.',
                 help="""
Deprecated alias of ``metric_weights`` ``io``: used when set away from 1.0
and ``metric_weights`` does not name ``io``.
"""),
    cfg.FloatOpt('weight_multiplier',
                 default=10.0,
                 help="""
Multiplier of the LatencyWeigher. Positive values prefer low-latency hosts;
0 disables it. Can be overridden per aggregate with the
``multimodal_virt_latency_weight_multiplier`` aggregate metadata key.

Nova normalises every weigher to 0..1 and adds them up, multiplied. With
Nova's default weighers kept (``nova.scheduler.weights.all_weighers``), the
RAM, disk, CPU, I/O ops, PCI, hypervisor version, metrics and soft
(anti-)affinity weighers have multipliers of 1 each (about 9 together): at 1
the latency ranking is outvoted by free RAM and CPU. The default 10 lets
latency decide between hosts whose latency differs and Nova's weighers
break near ties; keep it far below the build failure and cross-cell
weighers (1000000), which must still win.

Possible values:

* A float; 0 disables the weigher; negative prefers high latency.

Related options:

* ``[filter_scheduler] weight_classes`` and Nova's ``*_weight_multiplier``
  options.
"""),
    cfg.FloatOpt('herd_penalty_us',
                 default=0.0,
                 min=0.0,
                 help="""
Herd guard: microseconds added to a node's blended latency for each boot
the scheduler placed on it since its last sample (its own selections across
requests, or the node's instance count growth if larger).

Possible values:

* 0 (default): automatic; the gap between the best and the next-best fresh
  blended latency (at least 5 % of the median) divided by
  ``herd_spread_boots - 0.5``.
* A positive number of microseconds per boot.

Related options:

* ``herd_spread_boots``
"""),
    cfg.IntOpt('herd_spread_boots',
               default=3,
               min=1,
               help="""
With the automatic herd penalty, how many boots in a row the best node
takes before the next-best node gets one: after that many boots on the best
node, the next boot goes to the next-best (sooner when the two are within
5 % of the median latency).

Related options:

* ``herd_penalty_us``: a positive value replaces the automatic penalty.
"""),
    cfg.BoolOpt('gpu_slo_requires_measurement',
                default=True,
                help="""
Whether a flavor with a GPU latency SLO (``multimodal_virt:gpu_exec_*``,
``gpu_submit_*``, ``gpu_wait_*``, ``gpu_cmd_*``) may only land on hosts
that can measure that metric. A host measures it when its sample has
events for it or its collector declares it observable (``gpu_observed``):
a GPU device node with the gpu_fence / gpu_ioctl probes attached. A guest
with a passthrough VF submits GPU work without entering the host kernel,
so such a host cannot measure GPU latency at all.

Possible values:

* ``True``: the LatencyFilter rejects a host that cannot measure a metric
  the flavor has a GPU SLO on (the SLO cannot be checked there)
* ``False``: such a host passes, as a host with no events always did

Related options:

* ``[multimodal_virt_collector] probes``: ``gpu_fence``, ``gpu_ioctl``
"""),
]


def register_opts(conf):
    groups.register(conf, GROUP, OPTS)


def list_opts():
    return [(GROUP, OPTS)]
