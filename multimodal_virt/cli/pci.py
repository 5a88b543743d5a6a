"""``multimodal-virt pci``: discover SR-IOV GPU VFs, print Nova config.

Examples::

    multimodal-virt pci discover
    multimodal-virt pci discover --sysfs-root /tmp/tree --format text
    multimodal-virt pci config --format ini --hostname compute1
    multimodal-virt pci config --format yaml > /etc/nova/provider_config/gpu.yaml
"""

import json
import sys

from oslo_config import cfg

from multimodal_virt import conf as mmv_conf
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import pools
from multimodal_virt.pci import sysfs


def _load_conf(args):
    conf = cfg.ConfigOpts()
    mmv_conf.register_opts(conf)
    conf([], project='multimodal-virt',
         default_config_files=list(getattr(args, 'config_file', None) or []))
    return conf


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


def add_parser(subparsers):
    """Register ``pci`` with its ``discover`` and ``config`` sub-commands.

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
    return parser
