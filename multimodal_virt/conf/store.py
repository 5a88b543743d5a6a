"""Options for the host stats store (``[multimodal_virt_store]``)."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'multimodal_virt_store',
    title='Host latency stats store',
    help='Where collectors publish host samples and the scheduler reads them.')

OPTS = [
    cfg.StrOpt('driver',
               default='file',
               help="""
Stats store driver, loaded from the ``multimodal_virt.stores`` entry point
namespace.

Possible values:

* ``file``: one JSON document per host in ``file_path`` (the embedded
  default; good for a single host or a shared filesystem).
* ``memcached``: memcached through oslo.cache (many hosts).

Related options:

* ``file_path``, ``memcached_servers``
"""),
    cfg.StrOpt('file_path',
               default='/var/lib/multimodal-virt/stats',
               help="""
Directory of the ``file`` store. Each host's sample is written atomically
(temporary file + rename), so readers never see a partial document.
"""),
    cfg.ListOpt('memcached_servers',
                default=['127.0.0.1:11211'],
                help="""
memcached ``host:port`` list for the ``memcached`` store.
"""),
    cfg.StrOpt('key_prefix',
               default='multimodal_virt',
               help='Prefix of every key the memcached store writes.'),
    cfg.IntOpt('sample_ttl',
               default=3600,
               min=0,
               help="""
Seconds a sample lives in memcached before it expires (0 = never). Staleness
is judged by the scheduler from the sample timestamp, not by this TTL.
"""),
    cfg.FloatOpt('socket_timeout',
                 default=0.5,
                 min=0.01,
                 help='Seconds before a memcached call is abandoned.'),
    cfg.IntOpt('max_sample_bytes',
               default=65536,
               min=1024,
               help="""
Largest serialised sample accepted on read or write. Larger payloads are
rejected with a logged reason.
"""),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
