"""Options for the host stats store (``[multimodal_virt_store]``)."""

from oslo_config import cfg

from multimodal_virt.conf import groups

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

* ``file``: one signed sample file per compute node in ``file_path`` (the
  embedded default; a single host or a shared filesystem).
* ``memcached``: memcached, raw bytes through pymemcache (many hosts).

Related options:

* ``file_path``, ``memcached_servers``
"""),
    cfg.StrOpt('file_path',
               default='/var/lib/multimodal-virt/stats',
               help="""
Directory of the ``file`` store. Each node's sample is written atomically
(temporary file + rename), so readers never see a partial document. The
directory is created mode 0755; a group- or world-writable directory is
refused. Only regular files are read (no symlinks, FIFOs or devices).
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
Seconds a sample lives in memcached before it expires (0 = never), set on
each key. Staleness is judged by the scheduler from the signed sample
timestamp, not by this TTL.
"""),
    cfg.FloatOpt('socket_timeout',
                 default=0.5,
                 min=0.01,
                 help='Seconds before a memcached call is abandoned.'),
    cfg.ListOpt('signing_keys',
                default=[],
                secret=True,
                help="""
Secrets that sign and verify host samples (HMAC-SHA256). The first key
signs what this process publishes; every key verifies what it reads. Set the
same list on every collector and nova-scheduler. Without a key a store
refuses to start unless ``allow_unsigned`` is true. Whoever can write the
store but lacks the key can only make a sample unreadable, not forge one.

Possible values:

* A list of secrets of at least 16 characters, e.g. the output of
  ``openssl rand -hex 32``. To rotate: prepend the new key everywhere, then
  remove the old one once every collector signs with the new one.

Related options:

* ``allow_unsigned``
"""),
    cfg.BoolOpt('allow_unsigned',
                default=False,
                help="""
Accept unsigned samples, and publish unsigned ones when ``signing_keys`` is
empty. Only for a single host where nobody else can write the store (the
embedded demo): anyone who can write the store can then forge any host's
latency.

Related options:

* ``signing_keys``
"""),
    cfg.IntOpt('max_hosts',
               default=100000,
               min=1,
               help="""
Bound on the compute nodes a store read returns. The memcached host index
is split in 64 shards of at most ``2 * max_hosts / 64`` names each; a
larger shard is truncated on read (with a warning), so a corrupt index
cannot make a refresh slow.
"""),
    cfg.BoolOpt('memcached_tls_enabled',
                default=False,
                help="""
Talk TLS to memcached (memcached 1.6 ``-Z``).

Related options:

* ``memcached_tls_cafile``, ``memcached_tls_certfile``,
  ``memcached_tls_keyfile``, ``memcached_tls_allowed_ciphers``
"""),
    cfg.StrOpt('memcached_tls_cafile',
               help='CA bundle that verifies the memcached server '
                    'certificate (default: the system CAs).'),
    cfg.StrOpt('memcached_tls_certfile',
               help='Client certificate presented to memcached, if it '
                    'asks for one.'),
    cfg.StrOpt('memcached_tls_keyfile',
               help='Private key of ``memcached_tls_certfile``.'),
    cfg.StrOpt('memcached_tls_allowed_ciphers',
               help='OpenSSL cipher list for memcached TLS (default: '
                    'OpenSSL\'s).'),
    cfg.FloatOpt('aggregate_max_age',
                 default=15.0,
                 min=0.0,
                 help="""
Seconds for which a refresh uses the aggregate that
``multimodal-virt-aggregator`` publishes in the store (every sample it
verified, in one signed object) instead of reading and verifying every
compute node's sample itself. An aggregate that is older, missing or
refused is ignored and that refresh reads every sample, as without an
aggregator. Each sample inside keeps its own timestamp, judged by
``[multimodal_virt_scheduler] stale_after``.

Possible values:

* 0: never use an aggregate.
* Seconds; a few ``[multimodal_virt_aggregator] interval``.

Related options:

* ``[multimodal_virt_aggregator] interval``
"""),
    cfg.IntOpt('max_sample_bytes',
               default=65536,
               min=1024,
               help="""
Largest serialised sample accepted on read or write. Larger payloads are
rejected with a logged reason.
"""),
]


def register_opts(conf):
    groups.register(conf, GROUP, OPTS)


def list_opts():
    return [(GROUP, OPTS)]
