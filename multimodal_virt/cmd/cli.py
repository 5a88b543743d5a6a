"""``multimodal-virt``: operator command line."""

import argparse
import importlib
import sys

from multimodal_virt.cli import bootstrap

# Sub-command modules under multimodal_virt.cli, in help order. Imported
# lazily so one command's optional dependency cannot break the others.
SUBCOMMAND_MODULES = ('pci', 'flavor', 'status', 'analyze', 'demo')


def build_parser(argv=()):
    """Return the top-level argument parser with every sub-command.

    :param argv: the command line; a module whose ``add_parser`` takes an
        ``argv`` argument gets it (keystoneauth registers the options of
        the auth type that ``--os-auth-type`` names).
    """
    parser = argparse.ArgumentParser(
        prog='multimodal-virt',
        description='Latency-aware placement and SR-IOV GPU VFs for Nova.')
    bootstrap.add_config_arguments(parser)
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module('multimodal_virt.cli.' + name)
        if getattr(module, 'PARSER_READS_ARGV', False):
            module.add_parser(subparsers, argv=list(argv))
        else:
            module.add_parser(subparsers)
    return parser


def _main(argv):
    config_files, config_dirs, rest = bootstrap.split_config_arguments(argv)
    args = build_parser(rest).parse_args(rest)
    args.config_file = config_files
    args.config_dir = config_dirs
    # Fail on a missing or invalid config file before the command starts.
    bootstrap.conf_from_args(args)
    return args.func(args)


def main(argv=None):
    """Run the command line; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return bootstrap.run(lambda: _main(argv), prog='multimodal-virt')


if __name__ == '__main__':
    sys.exit(main())
