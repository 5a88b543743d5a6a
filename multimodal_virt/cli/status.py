"""``multimodal-virt status``: every host in the stats store, ranked.

Examples::

    multimodal-virt status
    multimodal-virt status --format json
    multimodal-virt status --store-dir ./demo-output/stats --plot hosts.png

Scores and ranks come from the LatencySnapshot the LatencyWeigher reads,
with ``[multimodal_virt_scheduler]`` as configured.
"""

import json
import sys
import time

from multimodal_virt.analysis import report
from multimodal_virt.cli import bootstrap
from multimodal_virt import exception
from multimodal_virt.scheduler import snapshot as snapshot_mod
from multimodal_virt.stores import loader


def load_conf(args):
    """A ``ConfigOpts`` from the config files and ``--store-dir``.

    :param args: parsed arguments (``config_file``, ``config_dir``,
        optional ``store_dir``); see :func:`bootstrap.conf_from_args`.
    :returns: a parsed ``ConfigOpts`` with every group registered.
    """
    conf = bootstrap.conf_from_args(args)
    store_dir = getattr(args, 'store_dir', None)
    if store_dir:
        conf.set_override('driver', 'file', 'multimodal_virt_store')
        conf.set_override('file_path', store_dir, 'multimodal_virt_store')
    return conf


def describe_store(conf):
    """``file store /path`` or ``memcached store host:port,...``."""
    options = conf.multimodal_virt_store
    if options.driver == 'file':
        return 'file store %s' % options.file_path
    if options.driver == 'memcached':
        return 'memcached store %s' % ','.join(options.memcached_servers)
    return '%s store' % options.driver


def read_samples(conf):
    """Read every host sample from the configured store.

    :returns: ``{host: HostSample}`` (never empty).
    :raises StoreError: if the store fails or holds no sample, saying
        what to do.
    """
    store = loader.get_store(conf)
    try:
        samples = store.get_all()
    finally:
        store.close()
    if not samples:
        raise exception.StoreError(
            'no host samples in the %s: start multimodal-virt-collector on '
            'the compute hosts (or `multimodal-virt demo`), or point '
            '--store-dir / --config-file at the store they publish to'
            % describe_store(conf))
    return samples


def snapshot_of(conf, samples, now):
    """The weigher's ``LatencySnapshot`` of ``samples`` at ``now``."""
    policy = snapshot_mod.ScoringPolicy.from_conf(
        conf.multimodal_virt_scheduler)
    return snapshot_mod.LatencySnapshot(samples, policy, now)


def status_rows(conf, samples, now=None):
    """Ranked :class:`~multimodal_virt.analysis.report.HostRow` list."""
    now = time.time() if now is None else now
    return report.host_rows(samples, snapshot_of(conf, samples, now), now)


def write_plot(rows, samples, path, err=None):
    """Render the status plot to ``path``, announcing it on ``err``."""
    from multimodal_virt.analysis import plot
    err = err or sys.stderr
    err.write('drawing %d host(s) to %s ...\n' % (len(rows), path))
    err.flush()
    plot.render(rows, samples, path)
    err.write('wrote %s\n' % path)
    return path


def cmd_status(args, out=None, err=None):
    """Print the ranked host table (or JSON) and optionally a plot."""
    out = out or sys.stdout
    conf = load_conf(args)
    samples = read_samples(conf)
    now = time.time()
    rows = status_rows(conf, samples, now)
    if args.format == 'json':
        json.dump({'store': describe_store(conf),
                   'percentile': conf.multimodal_virt_scheduler.percentile,
                   'stale_after': conf.multimodal_virt_scheduler.stale_after,
                   'hosts': [row.to_dict() for row in rows]}, out, indent=2)
        out.write('\n')
    else:
        out.write(report.format_table(
            rows, conf.multimodal_virt_scheduler.percentile))
    if args.plot:
        write_plot(rows, samples, args.plot, err)
    return 0


def add_store_arguments(parser):
    """``--store-dir`` (shared by status, analyze)."""
    parser.add_argument(
        '--store-dir', metavar='DIR',
        help='read the file store in DIR instead of the configured '
             '[multimodal_virt_store]')


def add_parser(subparsers):
    """Register ``status``.

    :param subparsers: the top-level parser's ``add_subparsers()`` result.
    :returns: the ``status`` parser.
    """
    parser = subparsers.add_parser(
        'status', help='hosts in the stats store: p50/p99 GPU-command and '
                       'I/O latency, VM-exit and IRQ rates, score and rank')
    add_store_arguments(parser)
    parser.add_argument('--format', choices=('table', 'json'),
                        default='table')
    parser.add_argument('--plot', metavar='FILE.png',
                        help='also draw per-host latency percentiles and '
                             'histograms into this PNG (matplotlib)')
    parser.set_defaults(func=cmd_status)
    return parser
