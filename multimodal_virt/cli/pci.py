"""``multimodal-virt pci``: discover SR-IOV GPU VFs, print Nova config.

Examples::

    multimodal-virt pci discover
    multimodal-virt pci discover --sysfs-root /tmp/tree --format text
    multimodal-virt pci config --format ini --hostname compute1
    multimodal-virt pci config --format yaml > /etc/nova/provider_config/gpu.yaml
    multimodal-virt pci xml 0000:3b:00.4 0000:3b:00.5
    multimodal-virt pci audit --format text

Nova owns VF claims; ``pci audit`` only reads (sysfs, libvirt, nova.conf).
"""

import json
import sys

from lxml import etree
from oslo_config import cfg

from multimodal_virt.cli import bootstrap
from multimodal_virt import exception
from multimodal_virt.libvirt_xml import hostdev as hostdev_xml
from multimodal_virt.libvirt_xml import validate as domain_validate
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import audit
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import pools
from multimodal_virt.pci import sriov_profile
from multimodal_virt.pci import sysfs


def _load_conf(args):
    return bootstrap.conf_from_args(args)


def _discover(args, group):
    root = args.sysfs_root or group.sysfs_root
    return sysfs.discover(root, classes=group.device_classes)


def _vf_profile(profiles, vf):
    """The VF's GPU scheduling profile, or None where there is none."""
    try:
        return profiles.read(vf.address)
    except sriov_profile.ProfileError:
        return None


def _pf_dict(pf, profiles):
    return {
        'address': str(pf.address), 'vendor_id': pf.vendor_id,
        'product_id': pf.product_id, 'class': '0x%06x' % pf.class_code,
        'driver': pf.driver, 'numa_node': pf.numa_node,
        'iommu_group': pf.iommu_group, 'sriov_totalvfs': pf.total_vfs,
        'sriov_numvfs': pf.num_vfs,
        'vfs': [{'address': str(vf.address), 'index': vf.index,
                 'vendor_id': vf.vendor_id, 'product_id': vf.product_id,
                 'driver': vf.driver, 'iommu_group': vf.iommu_group,
                 'numa_node': vf.numa_node,
                 'profile': _vf_profile(profiles, vf)} for vf in pf.vfs],
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
    profiles = sriov_profile.SysfsProfiles(args.sysfs_root
                                           or group.sysfs_root)
    settings = nova_config.Settings.from_conf(group)
    vf_pools = pools.VfPools(pfs, nova_config.pool_tags(pfs, settings))
    if args.format == 'json':
        json.dump({'physical_functions': [_pf_dict(pf, profiles)
                                          for pf in pfs],
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
    rows = [(vf, _vf_profile(profiles, vf)) for pf in pfs for vf in pf.vfs]
    rows = [(vf, p) for vf, p in rows if p]
    if rows:
        out.write('\nGPU VF scheduling profiles:\n')
        for vf, profile in rows:
            out.write('  %s %s\n' % (vf.address, ' '.join(
                '%s=%s' % kv for kv in sorted(profile.items()))))
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


DEFAULT_NOVA_CONFIG = '/etc/nova/nova.conf'


def _nova_device_spec(paths):
    """``[pci] device_spec`` values of nova.conf file(s)."""
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.MultiStrOpt('device_spec', default=[]),
                      group='pci')
    try:
        conf([], project='nova', default_config_files=list(paths))
    except cfg.Error as err:
        raise exception.PciDiscoveryError(
            'cannot read [pci] device_spec from %s: %s'
            % (', '.join(paths), err))
    return list(conf.pci.device_spec)


def cmd_audit(args, out=None):
    """Print the per-VF drift report; exit 1 when a VF has a problem."""
    # libvirt-python is needed only here (it is on every compute host).
    from multimodal_virt.pci import domains as libvirt_domains

    out = out or sys.stdout
    args.nova_config = args.nova_config or [DEFAULT_NOVA_CONFIG]
    conf = _load_conf(args)
    pfs = _discover(args, conf.multimodal_virt_pci)
    matcher = audit.nova_device_spec_matcher(
        _nova_device_spec(args.nova_config))
    uri = args.connection_uri or conf.multimodal_virt_libvirt.connection_uri
    reports = audit.audit(pfs, libvirt_domains.read_domains(uri), matcher)
    if args.format == 'json':
        json.dump({'vfs': [r.to_dict() for r in reports]}, out, indent=2)
        out.write('\n')
    else:
        out.write('%-14s %-14s %-10s %-5s %-24s %s\n' % (
            'VF', 'PF', 'DRIVER', 'SPEC', 'DOMAIN', 'PROBLEMS'))
        for r in reports:
            out.write('%-14s %-14s %-10s %-5s %-24s %s\n' % (
                r.address, r.pf, r.driver or '-',
                'yes' if r.in_device_spec else 'no',
                ','.join(name for name, _, _, _ in r.domains) or '-',
                '; '.join(r.problems) or 'ok'))
    return 1 if any(r.problems for r in reports) else 0


def cmd_xml(args, out=None):
    """Print validated vfio ``<hostdev>`` XML for VFs.

    The hostdevs are placed in a minimal domain and checked against
    libvirt's RelaxNG schema and for duplicate VFs before printing.
    """
    out = out or sys.stdout
    conf = _load_conf(args)
    group = conf.multimodal_virt_libvirt
    addresses = [pci_address.PciAddress.parse(a) for a in args.address]
    # managed='yes': libvirt binds the VF to vfio-pci when the guest starts
    # and gives it back afterwards, as Nova's own hostdevs do.
    domain = hostdev_xml.add_hostdevs(_VALIDATION_DOMAIN, addresses,
                                      managed=True)
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
    """Register ``pci`` with ``discover``, ``config``, ``xml``, ``audit``.

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
        'xml', help="print validated <hostdev managed='yes'> XML for VF "
                    "addresses")
    xml.add_argument('address', nargs='+',
                     help='VF PCI address DDDD:BB:SS.F (repeatable)')
    xml.add_argument('--schema',
                     help='libvirt domain.rng (default: '
                          '[multimodal_virt_libvirt] domain_schema)')
    xml.add_argument('--no-validate', action='store_true',
                     help='skip the schema check (not recommended)')
    xml.set_defaults(func=cmd_xml)

    audit_parser = commands.add_parser(
        'audit', help='read-only drift report per VF: sysfs driver, libvirt '
                      'domain holding it, [pci] device_spec coverage')
    audit_parser.add_argument('--sysfs-root', **common)
    audit_parser.add_argument(
        '--nova-config', action='append', default=None,
        help='nova.conf to read [pci] device_spec from (repeatable; default '
             '/etc/nova/nova.conf)')
    audit_parser.add_argument(
        '--connection-uri',
        help='libvirt URI, opened read-only (default: '
             '[multimodal_virt_libvirt] connection_uri)')
    audit_parser.add_argument('--format', choices=('json', 'text'),
                              default='text')
    audit_parser.set_defaults(func=cmd_audit)
    return parser
