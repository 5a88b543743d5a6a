"""Options for the scheduler filter and weigher (``[multimodal_virt_scheduler]``)."""

from oslo_config import cfg

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
Seconds between reads of the stats store. The scheduler reads all hosts in
one batched call at most once per interval; between reads, filtering and
weighing a host is a dictionary lookup.
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
                   ('reject', 'the LatencyFilter rejects the host'),
               ],
               help='What to do with a host whose sample is stale.'),
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
    cfg.FloatOpt('gpu_cmd_weight',
                 default=1.0,
                 min=0.0,
                 help="""
Share of GPU-command latency in the blended latency score.

Related options:

* ``io_weight``: the blend is
  ``gpu_cmd_weight * gpu_pXX + io_weight * io_pXX`` (microseconds).
"""),
    cfg.FloatOpt('io_weight',
                 default=1.0,
                 min=0.0,
                 help='Share of I/O latency in the blended latency score.'),
    cfg.FloatOpt('weight_multiplier',
                 default=1.0,
                 help="""
Multiplier of the LatencyWeigher. Positive values prefer low-latency hosts;
0 disables it. Can be overridden per aggregate with the
``multimodal_virt_latency_weight_multiplier`` aggregate metadata key.
"""),
    cfg.FloatOpt('herd_penalty_us',
                 default=0.0,
                 min=0.0,
                 help="""
Herd guard: microseconds added to a host's blended latency for each boot
placed on it since its last sample. 0 selects an automatic penalty: the
spread (p90 - p10) of the blended latency across reporting hosts divided by
``herd_spread_boots``, so a burst spreads over the best hosts.
"""),
    cfg.IntOpt('herd_spread_boots',
               default=3,
               min=1,
               help="""
With the automatic herd penalty, how many boots on one host before it looks
as bad as a host one latency spread worse.
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
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
