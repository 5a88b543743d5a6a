"""Options for the collector (``[multimodal_virt_collector]``).

Latency-tier traits are reported by nova-compute itself
(``[multimodal_virt_compute]``, :mod:`multimodal_virt.conf.compute`).
Imports nothing beyond oslo.config.
"""

from oslo_config import cfg
from oslo_config import types

from multimodal_virt.conf import groups
GROUP = cfg.OptGroup(
    'multimodal_virt_collector',
    title='multimodal-virt collector',
    help='The per-host collector service (multimodal-virt-collector).')

OPTS = [
    cfg.FloatOpt('interval',
                 default=10.0,
                 min=0.1,
                 mutable=True,
                 help="""
Seconds between two collections. Every interval the collector reads and
resets the probe histograms, builds one host sample and publishes it.

Related options:

* ``[multimodal_virt_scheduler] stale_after`` should be several intervals.
"""),
    cfg.ListOpt('probes',
                default=['block_io', 'gpu_ioctl', 'kvm_exit', 'irq',
                         'gpu_fence', 'gpu_vf_busy', 'gpu_sched'],
                help="""
Probes to load, by name in the ``multimodal_virt.probes`` entry point
namespace. A probe that fails to load or start is reported and skipped; the
others keep running.

Possible values:

* ``block_io``, ``gpu_ioctl``, ``kvm_exit``, ``irq``, ``gpu_fence`` (eBPF,
  need CAP_BPF and CAP_PERFMON or root, and kernel BTF)
* ``gpu_sched`` (eBPF, the DRM GPU scheduler's tracepoints: GPU queue
  wait; says "not observable" where the gpu-sched module is not loaded)
* ``gpu_vf_busy`` (xe PMU engine activity per SR-IOV VF, CAP_PERFMON; says
  "not observable" where no PF exposes it)
* ``procfs`` (no privileges: /proc/diskstats and /proc/interrupts)

Related options:

* ``fallback_probes``
"""),
    cfg.ListOpt('fallback_probes',
                default=['procfs'],
                help="""
Probes started when none of ``probes`` with an eBPF source could start (no
root, no BTF, no libbpf). An empty list disables the fallback.

Related options:

* ``probes``
"""),
    cfg.ListOpt('publishers',
                default=['store'],
                help="""
Publishers each sample goes to, by name in the ``multimodal_virt.publishers``
entry point namespace. A publisher that fails (store down) is logged,
rate-limited, and collection goes on.

Possible values:

* ``store``: the ``[multimodal_virt_store]`` stats store the scheduler (and
  this host's nova-compute, for its latency-tier traits) reads

Related options:

* ``[multimodal_virt_store] driver``
"""),
    cfg.HostDomainOpt('host',
                      default=None,
                      sample_default='<current hostname>',
                      help="""
Name of this compute host in published samples. Must match Nova's
``[DEFAULT] host`` of the nova-compute service on this host, which is what
the scheduler sees as ``HostState.host``. Unset means ``socket.gethostname()``.
"""),
    cfg.BoolOpt('attribution',
                default=True,
                help="""
Map the qemu processes that caused VM exits to Nova instance UUIDs (through
libvirt, with ``/proc/<pid>/cmdline`` ``-uuid`` as a fallback).

Related options:

* ``libvirt_uri``
"""),
    cfg.StrOpt('libvirt_uri',
               default='qemu:///system',
               help="""
libvirt connection used read-only for per-VM attribution.

Related options:

* ``attribution``
"""),
    cfg.FloatOpt('history_half_life',
                 default=120.0,
                 min=0.0,
                 mutable=True,
                 help="""
Half-life, in seconds, of the decayed merge of collection windows. Each
published latency histogram sums every past window's histogram weighted by
``0.5 ** (age / history_half_life)``, so a quiet host that completes a few
dozen requests per window keeps a stable p99 instead of publishing its
slowest request. The effective window (published per metric as
``effective_window_s``) settles at ``interval / (1 - 0.5 ** (interval /
history_half_life))`` seconds: about 178 s with the defaults. Reloaded on
SIGHUP.

Possible values:

* 0: publish every window alone (no merge)
* a number of seconds > 0

Related options:

* ``interval``, ``min_events``
"""),
    cfg.Opt('min_events',
            type=types.Dict(value_type=types.Integer(min=0)),
            default={'p50': 20, 'p95': 100, 'p99': 300},
            sample_default='p50:20,p95:100,p99:300',
            mutable=True,
            help="""
Minimum number of events a latency histogram must hold for each percentile
to count. Below it the percentile is *insufficient*: it is published with
the count and this minimum, and the scheduler treats it as not measured
(neutral for the host) instead of ranking the host by a handful of events.
Reloaded on SIGHUP.

Possible values:

* ``percentile:count`` pairs, percentiles among p50, p95, p99; a
  percentile left out has no minimum

Related options:

* ``history_half_life``: the merge that lets a quiet host reach the minimum
"""),
    cfg.IntOpt('published_devices',
               default=8,
               min=1,
               max=63,
               mutable=True,
               help="""
Block devices published by name in each sample's per-device I/O histograms
(the busiest first); the others are summed under ``other``. Reloaded on
SIGHUP.

Related options:

* ``[multimodal_virt_probes] exclude_block_drivers``
"""),
    cfg.FloatOpt('publish_timeout',
                 default=10.0,
                 min=0.1,
                 mutable=True,
                 help="""
Seconds one publisher may take to publish a sample. Each publisher runs on
its own worker thread, so a slow or hung one never delays the others (or the
next collection); a publisher over its timeout is logged (rate-limited) and,
while it is still busy, newer samples replace the one waiting for it (only
the latest is published when it returns). Reloaded on SIGHUP.

Related options:

* ``interval``, ``publishers``
"""),
    cfg.FloatOpt('publish_error_log_interval',
                 default=60.0,
                 min=0.0,
                 mutable=True,
                 help="""
Minimum seconds between two logged failures of one publisher or probe, so a
store outage does not flood the log.
"""),
]


def register_opts(conf):
    """Register the ``[multimodal_virt_collector]`` options on ``conf``."""
    groups.register(conf, GROUP, OPTS)


def list_opts():
    return [(GROUP, OPTS)]
