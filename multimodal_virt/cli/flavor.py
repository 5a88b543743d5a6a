"""``multimodal-virt flavor create``: flavors with VF aliases and SLOs.

Creates a Nova flavor, or updates the extra specs of an existing one, with
``pci_passthrough:alias`` and the latency SLO extra specs that
LatencyFilter enforces. Values are validated here first (same rules as
:mod:`multimodal_virt.scheduler.slo`), so a typo is refused before any API
call. Examples::

    multimodal-virt flavor create gpu.video --ram 16384 --vcpus 8 \\
        --disk 40 --pci-alias mmv-nvidia-20f1-vf:1 \\
        --slo gpu_cmd_p99_us=500 --slo io_p99_us=2000
    multimodal-virt flavor create gpu.video --slo io_p99_us=1500 \\
        --unset multimodal_virt:gpu_cmd_p99_us

Credentials come from keystoneauth's loaders (:mod:`multimodal_virt.cli.auth`):
the usual ``OS_*`` variables of an openrc or ``--os-*`` arguments, any
``OS_AUTH_TYPE`` (application credentials: ``v3applicationcredential``;
an endpoint and token: ``admin_token`` with ``OS_ENDPOINT``/``OS_TOKEN``).
"""

import argparse
import json
import os
import re
import sys

from oslo_log import log as logging

from multimodal_virt.cli import auth
from multimodal_virt.compute import specs as compute_specs
from multimodal_virt import exception
from multimodal_virt.metrics import vocabulary
from multimodal_virt.scheduler import slo

LOG = logging.getLogger(__name__)

ALIAS_KEY = 'pci_passthrough:alias'
DEFAULT_API_VERSION = '2.86'  # first microversion validating extra specs
_ALIAS_RE = re.compile(r'^(?P<name>[^:,\s]+):(?P<count>[0-9]+)$')
SLO_NAMES = tuple(vocabulary.slo_key(m, p).split(':', 1)[1]
                  for m in vocabulary.LATENCY_METRICS
                  for p in vocabulary.PERCENTILE_NAMES)
# Guest tuning and GPU VF profile specs (nova-compute driver hook).
COMPUTE_KEYS = (compute_specs.DISK_IOTHREADS, compute_specs.DISK_IO,
                compute_specs.DISK_QUEUES, compute_specs.GPU_SCHED_PRIORITY,
                compute_specs.GPU_EXEC_QUANTUM_MS,
                compute_specs.GPU_PREEMPT_TIMEOUT_US)

# add_parser reads the command line: keystoneauth registers the options of
# the auth type given with --os-auth-type.
PARSER_READS_ARGV = True


def parse_alias(text):
    """Parse ``--pci-alias NAME:COUNT``.

    :returns: ``(name, count)``.
    :raises InvalidExtraSpec: naming the argument and the expected form.
    """
    match = _ALIAS_RE.match(str(text).strip())
    if not match or int(match.group('count')) < 1:
        raise exception.InvalidExtraSpec(
            '--pci-alias %r: expected NAME:COUNT with COUNT >= 1, e.g. '
            'mmv-nvidia-20f1-vf:1 (the alias names come from '
            '"multimodal-virt pci config")' % (text,))
    return match.group('name'), int(match.group('count'))


def parse_slo(text):
    """Parse ``--slo NAME=MICROSECONDS`` into an extra spec pair.

    ``NAME`` is e.g. ``io_p99_us``, with or without the
    ``multimodal_virt:`` prefix.

    :returns: ``(key, value)`` with the full extra spec key.
    :raises InvalidExtraSpec: naming the argument and the valid names.
    """
    name, sep, value = str(text).partition('=')
    name = name.strip()
    key = name if name.startswith(vocabulary.NAMESPACE + ':') else '%s:%s' % (
        vocabulary.NAMESPACE, name)
    if not sep or not vocabulary.SLO_KEY_RE.match(key):
        raise exception.InvalidExtraSpec(
            '--slo %r: expected NAME=MICROSECONDS with NAME one of %s, '
            'e.g. --slo io_p99_us=2000' % (text, ', '.join(SLO_NAMES)))
    return key, str(slo.parse_limit(key, value))


def parse_property(text):
    """Parse ``--property KEY=VALUE`` (any extra spec)."""
    key, sep, value = str(text).partition('=')
    if not sep or not key.strip():
        raise exception.InvalidExtraSpec(
            '--property %r: expected KEY=VALUE, e.g. '
            'hw:cpu_policy=dedicated' % (text,))
    return key.strip(), value


def requested_specs(args):
    """Build and validate the extra specs the command line asks for.

    :param args: parsed arguments (``property``, ``pci_alias``, ``slo``).
    :returns: dict of extra specs to set.
    :raises InvalidExtraSpec: on any malformed value.
    """
    specs = dict(parse_property(p) for p in args.property or ())
    if args.pci_alias:
        aliases = [parse_alias(a) for a in args.pci_alias]
        names = [name for name, _ in aliases]
        if len(set(names)) != len(names):
            raise exception.InvalidExtraSpec(
                '--pci-alias names must be unique, got %s' % ', '.join(names))
        specs[ALIAS_KEY] = ','.join('%s:%d' % a for a in aliases)
    specs.update(parse_slo(s) for s in args.slo or ())
    slo.from_extra_specs(specs)  # our namespace in --property too
    compute_specs.guest_tuning(specs)
    compute_specs.gpu_profile(specs)
    unknown = [k for k in specs if k.startswith(vocabulary.NAMESPACE + ':')
               and not vocabulary.SLO_KEY_RE.match(k)
               and k not in COMPUTE_KEYS]
    if unknown:
        raise exception.InvalidExtraSpec(
            'unknown extra spec %s: valid keys are multimodal_virt:<NAME> '
            'with NAME one of %s' % (', '.join(unknown), ', '.join(
                SLO_NAMES + tuple(k.split(':', 1)[1]
                                  for k in COMPUTE_KEYS))))
    return specs


def nova_client(session, args, endpoint_override=None):
    """A python-novaclient ``Client`` over ``session``."""
    from novaclient import client as nova

    return nova.Client(args.os_compute_api_version or DEFAULT_API_VERSION,
                       session=session, endpoint_override=endpoint_override,
                       region_name=getattr(args, 'os_region_name', None),
                       endpoint_type=getattr(args, 'os_interface', None)
                       or 'public')


def _find(nova, name):
    matches = [f for f in nova.flavors.list(is_public=None)
               if f.name == name]
    if len(matches) > 1:
        raise exception.CloudApiError(
            'flavor name %r is used by %d flavors (%s); rename or delete '
            'the extra ones' % (name, len(matches),
                                ', '.join(f.id for f in matches)))
    return matches[0] if matches else None


def _check_immutable(flavor, args):
    for attr, wanted in (('ram', args.ram), ('vcpus', args.vcpus),
                         ('disk', args.disk)):
        if wanted is not None and getattr(flavor, attr) != wanted:
            raise exception.CloudApiError(
                'flavor %s exists with %s=%s; Nova cannot change %s of a '
                'flavor (asked %s): leave --%s out to update only its '
                'extra specs, or create a flavor with another name'
                % (flavor.name, attr, getattr(flavor, attr), attr, wanted,
                   attr))


def _api_error(what, err):
    message = getattr(err, 'message', None) or str(err)
    code = getattr(err, 'code', None)
    return exception.CloudApiError('%s: Nova answered %s: %s' % (
        what, code or 'an error', message))


def create_or_update(nova, args, specs):
    """Create flavor ``args.name`` or update its extra specs.

    :param nova: a novaclient ``Client``.
    :param args: parsed arguments (name, ram, vcpus, disk, ...).
    :param specs: validated extra specs to set (:func:`requested_specs`).
    :returns: dict describing the result (``action``, flavor fields,
        ``extra_specs``).
    :raises CloudApiError: when Nova refuses; a flavor created by this
        call is deleted again if its extra specs are refused.
    """
    from novaclient import exceptions as nova_exc

    flavor = _find(nova, args.name)
    created = flavor is None
    if created:
        if args.ram is None or args.vcpus is None:
            raise exception.CloudApiError(
                'flavor %s does not exist; --ram and --vcpus are needed to '
                'create it' % args.name)
        try:
            flavor = nova.flavors.create(
                args.name, args.ram, args.vcpus, args.disk or 0,
                flavorid=args.id or 'auto', ephemeral=args.ephemeral,
                swap=args.swap, is_public=not args.private,
                description=args.description)
        except nova_exc.ClientException as err:
            raise _api_error('creating flavor %s' % args.name, err)
        LOG.info('Created flavor %(name)s (%(id)s)',
                 {'name': flavor.name, 'id': flavor.id})
    else:
        _check_immutable(flavor, args)
    try:
        if specs:
            flavor.set_keys(specs)
        existing = flavor.get_keys()
        unset = [k for k in args.unset or () if k in existing]
        if unset:
            flavor.unset_keys(unset)
    except nova_exc.ClientException as err:
        error = _api_error('setting extra specs %s on flavor %s' % (
            ', '.join('%s=%s' % kv for kv in sorted(specs.items())),
            args.name), err)
        if created:
            LOG.warning('Deleting flavor %s created by this command: its '
                        'extra specs were refused', flavor.id)
            flavor.delete()
        raise error
    return {'action': 'created' if created else 'updated',
            'id': flavor.id, 'name': flavor.name, 'ram': flavor.ram,
            'vcpus': flavor.vcpus, 'disk': flavor.disk,
            'extra_specs': flavor.get_keys()}


def cmd_create(args, out=None, session=None, endpoint_override=None):
    """Run ``flavor create``; prints the resulting flavor as JSON.

    :param session: keystoneauth session to use instead of building one
        from the arguments (tests, embedding).
    :param endpoint_override: compute endpoint used with ``session``.
    """
    out = out or sys.stdout
    specs = requested_specs(args)  # validate before touching the cloud
    if session is None:
        session = auth.load_session(args)
    nova = nova_client(session, args, endpoint_override)
    result = create_or_update(nova, args, specs)
    json.dump(result, out, indent=2, sort_keys=True)
    out.write('\n')
    return 0


def _non_negative(text):
    """argparse type: a whole number >= 0, with a clear message."""
    if not str(text).strip().isdigit():
        raise argparse.ArgumentTypeError(
            'expected a whole number >= 0, got %r' % (text,))
    return int(text)


def add_parser(subparsers, argv=()):
    """Register ``flavor`` with its ``create`` sub-command.

    :param subparsers: the top-level parser's ``add_subparsers()`` result.
    :param argv: the command line (for ``--os-auth-type``).
    :returns: the ``flavor`` parser.
    """
    parser = subparsers.add_parser(
        'flavor', help='Nova flavors with VF aliases and latency SLOs')
    commands = parser.add_subparsers(dest='flavor_command',
                                     metavar='COMMAND')
    commands.required = True
    create = commands.add_parser(
        'create', help='create a flavor, or update the extra specs of an '
                       'existing one')
    create.add_argument('name', help='flavor name')
    create.add_argument('--ram', type=_non_negative, help='memory in MiB')
    create.add_argument('--vcpus', type=_non_negative, help='vCPU count')
    create.add_argument('--disk', type=_non_negative, help='root disk in GiB')
    create.add_argument('--ephemeral', type=_non_negative, default=0)
    create.add_argument('--swap', type=_non_negative, default=0)
    create.add_argument('--id', help='flavor id (default: generated)')
    create.add_argument('--private', action='store_true',
                        help='not public (projects need access granted)')
    create.add_argument('--description')
    create.add_argument('--pci-alias', action='append', metavar='NAME:COUNT',
                        help='[pci] alias and VF count (repeatable)')
    create.add_argument('--slo', action='append', metavar='NAME=US',
                        help='latency SLO, NAME one of %s (repeatable)'
                             % ', '.join(SLO_NAMES))
    create.add_argument('--property', action='append', metavar='KEY=VALUE',
                        help='any other extra spec (repeatable)')
    create.add_argument('--unset', action='append', metavar='KEY',
                        help='extra spec to remove (repeatable)')
    auth.add_arguments(create, argv)
    create.add_argument('--os-compute-api-version',
                        default=os.environ.get('OS_COMPUTE_API_VERSION'),
                        help='compute microversion (env '
                             'OS_COMPUTE_API_VERSION, default %s)'
                             % DEFAULT_API_VERSION)
    create.set_defaults(func=cmd_create)
    return parser
