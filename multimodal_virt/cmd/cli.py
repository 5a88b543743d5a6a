"""``multimodal-virt``: operator command line."""

import argparse
import importlib
import sys

from multimodal_virt import exception

# Sub-command modules under multimodal_virt.cli, in help order. Imported
# lazily so one command's optional dependency cannot break the others.
SUBCOMMAND_MODULES = ('pci', 'flavor', 'status', 'analyze', 'demo')


def build_parser():
    """Return the top-level argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog='multimodal-virt',
        description='Latency-aware placement and SR-IOV GPU VFs for Nova.')
    parser.add_argument('--config-file', action='append', default=[],
                        help='oslo.config file (may be repeated)')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module('multimodal_virt.cli.' + name)
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except exception.MultimodalVirtError as err:
        print('error: %s' % err, file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
