"""``multimodal-virt demo``: the whole data path on this machine.

Examples::

    multimodal-virt demo
    multimodal-virt demo --intervals 3 --interval 1 --output-dir /tmp/d
    multimodal-virt demo --no-ebpf --format json

Collects on this host (eBPF where allowed, procfs otherwise) while a small
multimodal workload writes frames and sensor packets, publishes next to
recorded remote hosts, ranks every host through Nova's filter and weigher
handlers and explains the ranking. Progress goes to stderr with
``--format json``, so stdout is one JSON document.
"""

import json
import sys

from multimodal_virt.analysis import report
from multimodal_virt.cli import status

DEFAULT_OUTPUT = './demo-output'


def _ranking_text(result):
    lines = ['flavor %s: %s' % (result['flavor']['name'], ' '.join(
        '%s=%s' % kv for kv in sorted(result['flavor']['extra_specs']
                                      .items())))]
    width = max(len(p['host']) for p in result['ranking'])
    for place in result['ranking']:
        rank = '-' if place['rank'] is None else str(place['rank'])
        weight = ('' if place['weight'] is None
                  else 'weight %.3f' % place['weight'])
        lines.append('%3s  %s  %-12s %s' % (rank, place['host'].ljust(width),
                                            weight, place['explanation']))
    lines.append('chosen host: %s' % (result['chosen'] or
                                      'none (every host was filtered out)'))
    return '\n'.join(lines) + '\n'


def _analysis_text(result):
    lines = []
    for host, finding in sorted(result['analysis'].items()):
        lines.append('%s: %s, %s' % (host, finding['verdict'].upper(),
                                     finding['reason']))
        for rec in finding['recommendations']:
            lines.append('    -> %s' % rec['action'])
            for artefact in rec['artefacts']:
                if artefact['kind'] == 'libvirt_xml':
                    lines.append('       libvirt XML: multimodal-virt '
                                 'analyze --store-dir %s %s'
                                 % (result['store'], host))
                else:
                    lines.append('       %s: %s' % (artefact['kind'],
                                                    artefact['text']))
    return '\n'.join(lines) + '\n'


def to_text(result):
    """Human report of a demo result (the JSON document)."""
    collector = result['collector']
    work = result['workload']
    rows = [report.HostRow(**row) for row in result['status']]
    commands = ''
    if work['command_node']:
        commands = ', %d stand-in GPU commands on %s' % (
            work['commands'], work['command_node'])
    parts = [
        '\n== this host: %s, %s collector, %d window(s) of %.1f s ==\n'
        'workload wrote %d frames and %d sensor packets (%d MiB, %s)%s\n'
        % (collector['host'], collector['mode'], collector['windows'],
           collector['interval_s'], work['frames'], work['packets'],
           work['bytes_written'] // (1024 * 1024), work['io_mode'],
           commands),
        '\n== hosts (multimodal-virt status) ==\n',
        report.format_table(rows, result['percentile']),
        '\n== ranking by Nova\'s HostFilterHandler + HostWeightHandler '
        '(LatencyFilter, LatencyWeigher) ==\n',
        _ranking_text(result),
        '\n== analysis (multimodal-virt analyze) ==\n',
        _analysis_text(result),
    ]
    if result['plot']:
        parts.append('\nplot: %s\n' % result['plot'])
    parts.append('next: multimodal-virt status --store-dir %s --plot '
                 'hosts.png; multimodal-virt analyze --store-dir %s HOST\n'
                 % (result['store'], result['store']))
    return ''.join(parts)


def cmd_demo(args, out=None, err=None):
    """Run the demo and print its report (text or JSON)."""
    from multimodal_virt.demo import runner
    out = out or sys.stdout
    err = err or sys.stderr
    progress_stream = err if args.format == 'json' else out

    def progress(line):
        progress_stream.write(line + '\n')
        progress_stream.flush()

    conf = status.load_conf(args)
    demo = runner.DemoRunner(
        conf, args.output_dir, intervals=args.intervals,
        interval_s=args.interval, ebpf=not args.no_ebpf, host=args.host,
        plot=not args.no_plot, progress=progress,
        workload_options={'fps': args.fps,
                          'frame_bytes': args.frame_kib * 1024,
                          'sensor_hz': args.sensor_hz})
    result = demo.run()
    if args.format == 'json':
        json.dump(result, out, indent=2)
        out.write('\n')
    else:
        out.write(to_text(result))
    return 0


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value <= 0:
            import argparse
            raise argparse.ArgumentTypeError(
                'expected a number > 0, got %r' % text)
        return value
    return parse


def add_parser(subparsers):
    """Register ``demo``.

    :param subparsers: the top-level parser's ``add_subparsers()`` result.
    :returns: the ``demo`` parser.
    """
    parser = subparsers.add_parser(
        'demo', help='collect on this host under a multimodal workload, '
                     'rank it with recorded hosts through Nova, explain')
    parser.add_argument('--output-dir', default=DEFAULT_OUTPUT,
                        help='store, workload files and plot go here '
                             '(default: %(default)s)')
    parser.add_argument('--intervals', type=_positive(int), default=5,
                        help='collection windows (default: %(default)s)')
    parser.add_argument('--interval', type=_positive(float), default=2.0,
                        help='seconds per window (default: %(default)s)')
    parser.add_argument('--no-ebpf', action='store_true',
                        help='use the procfs probe only')
    parser.add_argument('--host',
                        help='name of this host in samples (default: '
                             'hostname)')
    parser.add_argument('--fps', type=_positive(float), default=30.0,
                        help='video frames per second (default: '
                             '%(default)s)')
    parser.add_argument('--frame-kib', type=_positive(int), default=256,
                        help='KiB per frame (default: %(default)s)')
    parser.add_argument('--sensor-hz', type=_positive(float), default=200.0,
                        help='sensor packets per second (default: '
                             '%(default)s)')
    parser.add_argument('--no-plot', action='store_true',
                        help='do not draw demo.png')
    parser.add_argument('--format', choices=('text', 'json'),
                        default='text')
    parser.set_defaults(func=cmd_demo)
    return parser
