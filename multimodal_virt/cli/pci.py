"""``multimodal-virt pci``: discover SR-IOV GPU VFs, print Nova config.

Examples::

    multimodal-virt pci discover
    multimodal-virt pci discover --sysfs-root /tmp/tree --format text
    multimodal-virt pci config --format ini --hostname compute1
    multimodal-virt pci config --format yaml > /etc/nova/provider_config/gpu.yaml
    multimodal-virt pci xml 0000:3b:00.4 0000:3b:00.5
    multimodal-virt pci xml --pool 10de:20f1 --count 2
    multimodal-virt pci xml --claim 6f1b8c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b
"""

import json
import os
import sys

from lxml import etree

from multimodal_virt.cli import bootstrap
from multimodal_virt import exception
from multimodal_virt.libvirt_xml import hostdev as hostdev_xml
from multimodal_virt.libvirt_xml import validate as domain_validate
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import device as pci_device
from multimodal_virt.pci import ledger as vf_ledger
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import pools
from multimodal_virt.pci import sysfs


def _load_conf(args):
    return bootstrap.conf_from_args(args)


def _discover(args, group):
    root = args.sysfs_root or group.sysfs_root
    return sysfs.discover(root, classes=group.device_classes)


def _pf_dict(pf):
    return {
        'address': str(pf.address), 'vendor_id': pf.vendor_id,
        'product_id': pf.product_id, 'class': '0x%06x' % pf.class_code,
        'driver': pf.driver, 'numa_node': pf.numa_node,
        'iommu_group': pf.iommu_group, 'sriov_totalvfs': pf.total_vfs,
        'sriov_numvfs': pf.num_vfs,
        'vfs': [{'address': str(vf.address), 'index': vf.index,
                 'vendor_id': vf.vendor_id, 'product_id': vf.product_id,
                 'driver': vf.driver, 'iommu_group': vf.iommu_group,
                 'numa_node': vf.numa_node} for vf in pf.vfs],
    }


def _settings(args, group):
    settings = nova_config.Settings.from_conf(group)
    overrides = {}
    if args.placement_mode:
        overrides['placement_mode'] = args.placement_mode
    if args.device_spec_style:
        overrides['device_spec_style'] = args.device_spec_style
    if overrides:
        settings = nova_config.Settings(**dict(
            vars(settings), **overrides))
    return settings


def cmd_discover(args, out=None):
    """Print the discovered PFs, VFs and Nova-keyed pools."""
    out = out or sys.stdout
    conf = _load_conf(args)
    group = conf.multimodal_virt_pci
    pfs = _discover(args, group)
    settings = nova_config.Settings.from_conf(group)
    vf_pools = pools.VfPools(pfs, nova_config.pool_tags(pfs, settings))
    if args.format == 'json':
        json.dump({'physical_functions': [_pf_dict(pf) for pf in pfs],
                   'pools': vf_pools.summary()}, out, indent=2)
        out.write('\n')
        return 0
    out.write('%-14s %-9s %-6s %-5s %-10s %s\n' % (
        'PF', 'ID', 'VFS', 'NUMA', 'DRIVER', 'IOMMU'))
    for pf in pfs:
        out.write('%-14s %-9s %-6s %-5s %-10s %s\n' % (
            pf.address, '%s:%s' % (pf.vendor_id, pf.product_id),
            '%d/%d' % (pf.num_vfs, pf.total_vfs),
            '-' if pf.numa_node is None else pf.numa_node,
            pf.driver or '-',
            '-' if pf.iommu_group is None else pf.iommu_group))
    out.write('\npools (Nova PciDeviceStats keys):\n')
    for entry in vf_pools.summary():
        out.write('  %s\n' % json.dumps(entry, sort_keys=True))
    return 0


def cmd_config(args, out=None):
    """Print generated nova.conf [pci] options and/or provider.yaml."""
    out = out or sys.stdout
    conf = _load_conf(args)
    group = conf.multimodal_virt_pci
    pfs = _discover(args, group)
    generated = nova_config.generate(pfs, _settings(args, group),
                                     hostname=args.hostname)
    if args.format == 'json':
        out.write(generated.to_json() + '\n')
    elif args.format == 'ini':
        out.write(generated.to_ini(args.provider_config_location))
    else:
        out.write(generated.to_yaml())
    return 0


# A minimal domain used only to validate emitted hostdevs against libvirt's
# schema and our cross-reference checks (duplicate VFs).
_VALIDATION_DOMAIN = ("<domain type='kvm'><name>mmv-hostdev-check</name>"
                      "<memory>65536</memory><os><type>hvm</type></os>"
                      "<devices/></domain>")


def _parse_pool(text):
    """``VENDOR:PRODUCT`` (hex, ``0x`` optional) -> normalised ids."""
    parts = text.split(':') if isinstance(text, str) else []
    if len(parts) != 2:
        raise exception.InvalidPciAddress(
            '--pool %r: expected VENDOR_ID:PRODUCT_ID such as 10de:20f1'
            % (text,))
    return (pci_device.normalize_id(parts[0], '--pool vendor id'),
            pci_device.normalize_id(parts[1], '--pool product id'))


def _owned_addresses(ledger_path):
    """Addresses the claim ledger holds for some instance (none if absent)."""
    if not ledger_path or not os.path.exists(ledger_path):
        return set()
    return {rec.address for rec in vf_ledger.Ledger(ledger_path).devices()
            if rec.state in vf_ledger.OWNED_STATES}


def _pool_addresses(args, conf):
    """The first ``--count`` free VFs of ``--pool``, by address."""
    vendor_id, product_id = _parse_pool(args.pool)
    if args.count < 1:
        raise exception.ClaimError(
            '--count must be 1 or more, got %d' % args.count)
    pfs = _discover(args, conf.multimodal_virt_pci)
    owned = _owned_addresses(args.ledger_path
                             or conf.multimodal_virt_libvirt.ledger_path)
    matching = sorted(vf.address for pf in pfs for vf in pf.vfs
                      if vf.vendor_id == vendor_id
                      and vf.product_id == product_id)
    free = [addr for addr in matching if addr not in owned]
    if len(free) < args.count:
        raise exception.ClaimError(
            'pool %s:%s has %d free VF(s) (%d found, %d held in the claim '
            'ledger), %d asked; lower --count or free VFs first'
            % (vendor_id, product_id, len(free), len(matching),
               len(matching) - len(free), args.count))
    return free[:args.count]


def _claim_addresses(args, conf):
    """The VFs the claim ledger holds for instance ``--claim``."""
    path = args.ledger_path or conf.multimodal_virt_libvirt.ledger_path
    if not os.path.exists(path):
        raise exception.ClaimError(
            'claim ledger %s does not exist; pass --ledger-path or set '
            '[multimodal_virt_libvirt] ledger_path' % path)
    addresses = vf_ledger.Ledger(path).instance_devices(args.claim)
    if not addresses:
        raise exception.ClaimError(
            'instance %s holds no VF in the claim ledger %s'
            % (args.claim, path))
    return addresses


def _hostdev_addresses(args, conf):
    chosen = [bool(args.address), bool(args.pool), bool(args.claim)]
    if sum(chosen) != 1:
        raise exception.InvalidDomainXML(
            'pci xml: give exactly one of: VF addresses, --pool '
            'VENDOR:PRODUCT --count N, or --claim INSTANCE_UUID')
    if args.address:
        return [pci_address.PciAddress.parse(a) for a in args.address]
    if args.pool:
        return _pool_addresses(args, conf)
    return _claim_addresses(args, conf)


def cmd_xml(args, out=None):
    """Print validated vfio ``<hostdev>`` XML for VFs.

    The hostdevs are placed in a minimal domain and checked against
    libvirt's RelaxNG schema and for duplicate VFs before printing.
    """
    out = out or sys.stdout
    conf = _load_conf(args)
    group = conf.multimodal_virt_libvirt
    managed = group.hostdev_managed if args.managed is None else args.managed
    addresses = _hostdev_addresses(args, conf)
    domain = hostdev_xml.add_hostdevs(_VALIDATION_DOMAIN, addresses,
                                      managed=managed)
    if not args.no_validate:
        schema = domain_validate.DomainSchema(
            args.schema or group.domain_schema)
        try:
            domain_validate.validate_domain(domain, schema)
        except exception.InvalidDomainXML as err:
            raise exception.InvalidDomainXML(
                '<hostdev> XML for %s failed validation: %s'
                % (', '.join(str(a) for a in addresses), err))
    for element in domain.iterfind('devices/hostdev'):
        out.write(etree.tostring(element, encoding='unicode',
                                 pretty_print=True))
    return 0


def add_parser(subparsers):
    """Register ``pci`` with ``discover``, ``config`` and ``xml``.

    :param subparsers: the top-level parser's ``add_subparsers()`` result.
    :returns: the ``pci`` parser.
    """
    parser = subparsers.add_parser(
        'pci', help='SR-IOV GPU virtual functions: discovery and Nova config')
    commands = parser.add_subparsers(dest='pci_command', metavar='COMMAND')
    commands.required = True

    common = {'help': 'sysfs root to walk (default: [multimodal_virt_pci] '
                      'sysfs_root, normally /sys)'}
    discover = commands.add_parser(
        'discover', help='list SR-IOV GPU/accelerator PFs, VFs and pools')
    discover.add_argument('--sysfs-root', **common)
    discover.add_argument('--format', choices=('json', 'text'),
                          default='json')
    discover.set_defaults(func=cmd_discover)

    config = commands.add_parser(
        'config', help='print [pci] device_spec/alias (json, ini) or '
                       'provider.yaml (yaml)')
    config.add_argument('--sysfs-root', **common)
    config.add_argument('--format', choices=('json', 'ini', 'yaml'),
                        default='json')
    config.add_argument('--hostname',
                        help='compute node provider name for provider.yaml '
                             '(default: $COMPUTE_NODE)')
    config.add_argument('--placement-mode',
                        choices=nova_config.PLACEMENT_MODES)
    config.add_argument('--device-spec-style',
                        choices=nova_config.SPEC_STYLES)
    config.add_argument('--provider-config-location',
                        help='directory written as [compute] '
                             'provider_config_location in the ini output')
    config.set_defaults(func=cmd_config)

    xml = commands.add_parser(
        'xml', help="print validated vfio <hostdev> XML for VF addresses, "
                    "N free VFs of a pool, or an instance's claim")
    xml.add_argument('address', nargs='*',
                     help='VF PCI address DDDD:BB:SS.F (repeatable)')
    xml.add_argument('--pool', metavar='VENDOR:PRODUCT',
                     help='pick free VFs of this model, e.g. 10de:20f1')
    xml.add_argument('--count', type=int, default=1,
                     help='how many VFs to pick with --pool (default 1)')
    xml.add_argument('--claim', metavar='INSTANCE_UUID',
                     help='the VFs the claim ledger holds for an instance')
    xml.add_argument('--ledger-path',
                     help='claim ledger (default: [multimodal_virt_libvirt] '
                          'ledger_path)')
    xml.add_argument('--sysfs-root', **common)
    managed = xml.add_mutually_exclusive_group()
    managed.add_argument('--managed', dest='managed', action='store_true',
                         default=None,
                         help="managed='yes': libvirt binds the VF to vfio")
    managed.add_argument('--unmanaged', dest='managed', action='store_false',
                         help="managed='no' (default from "
                              "[multimodal_virt_libvirt] hostdev_managed)")
    xml.add_argument('--schema',
                     help='libvirt domain.rng (default: '
                          '[multimodal_virt_libvirt] domain_schema)')
    xml.add_argument('--no-validate', action='store_true',
                     help='skip the schema check (not recommended)')
    xml.set_defaults(func=cmd_xml)
    return parser
