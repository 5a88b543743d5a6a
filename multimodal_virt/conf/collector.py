"""Options for the collector (``[multimodal_virt_collector]``).

Latency-tier traits are reported by nova-compute itself
(``[multimodal_virt_compute]``, :mod:`multimodal_virt.conf.compute`).
Imports nothing beyond oslo.config.
"""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'multimodal_virt_collector',
    title='multimodal-virt collector',
    help='The per-host collector service (multimodal-virt-collector).')

OPTS = [
    cfg.FloatOpt('interval',
                 default=10.0,
                 min=0.1,
                 help="""
Seconds between two collections. Every interval the collector reads and
resets the probe histograms, builds one host sample and publishes it.

Related options:

* ``[multimodal_virt_scheduler] stale_after`` should be several intervals.
"""),
    cfg.ListOpt('probes',
                default=['block_io', 'gpu_ioctl', 'kvm_exit', 'irq'],
                help="""
Probes to load, by name in the ``multimodal_virt.probes`` entry point
namespace. A probe that fails to load or start is reported and skipped; the
others keep running.

Possible values:

* ``block_io``, ``gpu_ioctl``, ``kvm_exit``, ``irq`` (eBPF, need CAP_BPF and
  CAP_PERFMON or root, and kernel BTF)
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
    cfg.FloatOpt('publish_error_log_interval',
                 default=60.0,
                 min=0.0,
                 help="""
Minimum seconds between two logged failures of one publisher or probe, so a
store outage does not flood the log.
"""),
]


def register_opts(conf):
    """Register the ``[multimodal_virt_collector]`` options on ``conf``."""
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
