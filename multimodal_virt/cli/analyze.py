"""``multimodal-virt analyze [HOST]``: which path dominates, what to do.

Examples::

    multimodal-virt analyze
    multimodal-virt analyze compute-12 --format json
    multimodal-virt analyze --store-dir ./demo-output/stats

Thresholds come from ``[multimodal_virt_analysis]``; staleness from
``[multimodal_virt_scheduler] stale_after``.
"""

import json
import sys
import time

from multimodal_virt.analysis import bottleneck
from multimodal_virt.cli import status
from multimodal_virt import exception

ARTEFACT_TITLES = {
    'command': '$ ',
    'flavor_extra_spec': 'flavor property: ',
    'instances': 'busiest instances: ',
}


def select(samples, host):
    """``{host: sample}`` for ``host`` (all when ``None``).

    :raises UnknownHost: naming the host and listing the known ones.
    """
    if host is None:
        return samples
    if host not in samples:
        known = sorted(samples)
        shown = ', '.join(known[:20]) + (
            ' (and %d more)' % (len(known) - 20) if len(known) > 20 else '')
        raise exception.UnknownHost(
            'host %r has no sample in the store; known hosts: %s. Use one '
            'of those names (as `multimodal-virt status` lists them), or '
            'check that the collector on %s publishes to this store'
            % (host, shown, host))
    return {host: samples[host]}


def format_finding(finding, percentile):
    """Human text of one :class:`~...bottleneck.Finding`."""
    lines = ['== %s: %s ==' % (finding.host, finding.verdict.upper()),
             finding.reason, 'paths (highest pressure first):']
    for pressure in finding.pressures:
        events = (' from %d events' % pressure.events
                  if pressure.path in bottleneck.LATENCY_PATHS and
                  pressure.measured else '')
        lines.append('  %s%s' % (pressure.describe(percentile), events))
    if finding.recommendations:
        lines.append('recommendations:')
    for number, rec in enumerate(finding.recommendations, 1):
        lines.append('  %d. [%s] %s' % (number, rec.path, rec.action))
        lines.append('     why: %s' % rec.why)
        for kind, text in rec.artefacts:
            if kind == 'libvirt_xml':
                lines.append('     libvirt domain XML:')
                lines.extend('       ' + line for line in text.splitlines())
            else:
                lines.append('     %s%s' % (ARTEFACT_TITLES.get(kind, ''),
                                            text))
    return '\n'.join(lines) + '\n'


def findings_for(conf, samples, now=None):
    """Analyse ``samples`` with the configured thresholds.

    :returns: ``(Thresholds, {host: Finding})``.
    """
    thresholds = bottleneck.Thresholds.from_conf(
        conf.multimodal_virt_analysis)
    now = time.time() if now is None else now
    return thresholds, bottleneck.analyze_all(
        samples, thresholds, now,
        conf.multimodal_virt_scheduler.stale_after)


def cmd_analyze(args, out=None):
    """Print the bottleneck analysis of one host or all hosts."""
    out = out or sys.stdout
    conf = status.load_conf(args)
    samples = select(status.read_samples(conf), args.host)
    thresholds, findings = findings_for(conf, samples)
    if args.format == 'json':
        json.dump({'percentile': thresholds.percentile,
                   'hosts': [f.to_dict() for f in findings.values()]},
                  out, indent=2)
        out.write('\n')
        return 0
    for finding in findings.values():
        out.write(format_finding(finding, thresholds.percentile) + '\n')
    return 0


def add_parser(subparsers):
    """Register ``analyze``.

    :param subparsers: the top-level parser's ``add_subparsers()`` result.
    :returns: the ``analyze`` parser.
    """
    parser = subparsers.add_parser(
        'analyze', help='bottleneck analysis: which path dominates (GPU '
                        'commands, storage I/O, VM exits, interrupts) and '
                        'what to change')
    parser.add_argument('host', nargs='?', metavar='HOST',
                        help='host to analyse (default: every host)')
    status.add_store_arguments(parser)
    parser.add_argument('--format', choices=('text', 'json'),
                        default='text')
    parser.set_defaults(func=cmd_analyze)
    return parser
