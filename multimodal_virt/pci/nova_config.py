"""Generate Nova's ``[pci] device_spec``/``alias`` and a provider.yaml.

Input is what :func:`multimodal_virt.pci.sysfs.discover` found; output is
plain data (lists of dicts) plus renderers for JSON, nova.conf INI and YAML.
The generated JSON is accepted by Nova's own parsers
(``nova.pci.whitelist.Whitelist``, ``nova.pci.request``'s alias schema,
``nova.compute.provider_config``); the tests check that with Nova's code.
"""

import collections
import dataclasses
import json
import re

import yaml

from multimodal_virt import exception
from multimodal_virt.pci import device

PLACEMENT_MODES = ('pci_in_placement', 'provider_config')
SPEC_STYLES = ('vf_addresses', 'pf_address')
NUMA_POLICIES = ('required', 'legacy', 'preferred', 'socket')
PROVIDER_SCHEMA_VERSION = '1.0'
_CUSTOM_RE = re.compile(r'^CUSTOM_[A-Z0-9_]{1,248}$')
_ALIAS_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}$')


def _custom_name(value, what):
    if not isinstance(value, str) or not _CUSTOM_RE.match(value):
        raise exception.MultimodalVirtError(
            '%s must be a custom Placement name (CUSTOM_ followed by '
            'A-Z, 0-9 or _), got %r' % (what, value))
    return value


def _format(template, vendor_id, product_id, what):
    try:
        return template.format(vendor=device.vendor_name(vendor_id),
                               vendor_id=vendor_id, product_id=product_id)
    except (KeyError, IndexError, ValueError, AttributeError) as err:
        raise exception.MultimodalVirtError(
            '%s %r is not a valid format string (fields: vendor, vendor_id, '
            'product_id): %s' % (what, template, err))


@dataclasses.dataclass(frozen=True)
class Settings:
    """What to generate; defaults match ``[multimodal_virt_pci]``."""

    alias_name_format: str = 'mmv-{vendor}-{product_id}-vf'
    numa_policy: str = 'preferred'
    resource_class_format: str = 'CUSTOM_MMV_GPU_VF_{vendor_id}_{product_id}'
    traits: tuple = ('CUSTOM_MMV_SRIOV_GPU_VF',)
    host_traits: tuple = ('CUSTOM_MMV_SRIOV_GPU_HOST',)
    placement_mode: str = 'pci_in_placement'
    device_spec_style: str = 'vf_addresses'

    def __post_init__(self):
        for name, value, allowed in (
                ('placement_mode', self.placement_mode, PLACEMENT_MODES),
                ('device_spec_style', self.device_spec_style, SPEC_STYLES),
                ('numa_policy', self.numa_policy, NUMA_POLICIES)):
            if value not in allowed:
                raise exception.MultimodalVirtError(
                    '%s must be one of %s, got %r'
                    % (name, ', '.join(allowed), value))
        object.__setattr__(self, 'traits', tuple(
            _custom_name(t, 'trait') for t in self.traits))
        object.__setattr__(self, 'host_traits', tuple(
            _custom_name(t, 'host trait') for t in self.host_traits))

    @classmethod
    def from_conf(cls, group):
        """Build from the ``[multimodal_virt_pci]`` group of a ConfigOpts."""
        return cls(alias_name_format=group.alias_name_format,
                   numa_policy=group.numa_policy,
                   resource_class_format=group.resource_class_format,
                   traits=tuple(group.traits),
                   host_traits=tuple(group.host_traits),
                   placement_mode=group.placement_mode,
                   device_spec_style=group.device_spec_style)

    def resource_class(self, vendor_id, product_id):
        """Resource class for a VF model, or None to let Nova name it."""
        if not self.resource_class_format:
            return None
        name = _format(self.resource_class_format, vendor_id, product_id,
                       'resource_class_format').upper()
        return _custom_name(name, 'resource class')

    def alias_name(self, vendor_id, product_id):
        """Alias name for a VF model."""
        name = _format(self.alias_name_format, vendor_id, product_id,
                       'alias_name_format')
        if not _ALIAS_RE.match(name):
            raise exception.MultimodalVirtError(
                'alias name %r must be 1-256 characters of letters, digits, '
                '"_", ".", ":" or "-"' % name)
        return name


def spec_tags(settings, vendor_id, product_id):
    """device_spec tags (beyond ids and address) for one VF model."""
    tags = {}
    rc = settings.resource_class(vendor_id, product_id)
    if rc:
        tags['resource_class'] = rc
    if settings.traits:
        tags['traits'] = ','.join(settings.traits)
    return tags


def _regex_address(vfs):
    """One regex address dict per (domain, bus, slot) of ``vfs``."""
    slots = collections.defaultdict(set)
    for vf in vfs:
        address = vf.address
        slots[(address.domain, address.bus, address.slot)].add(
            address.function)
    for (domain, bus, slot), functions in sorted(slots.items()):
        # Nova re.match()es each field against its fixed-width hex form,
        # so a literal of full width is an exact match without anchors
        # (and no "$" reaches nova.conf, where oslo.config interpolates it).
        yield {'domain': '%04x' % domain, 'bus': '%02x' % bus,
               'slot': '%02x' % slot,
               'function': '[%s]' % ''.join(
                   '%x' % fn for fn in sorted(functions))}


def _check_pf_distinct(pf, vendor_id, product_id):
    """Refuse a PF-address spec that would match the PF itself as well.

    Nova matches a PF-address device_spec against the PF's VFs (by parent)
    and against the PF (by its own address): when the VFs carry the PF's
    vendor:product id the spec selects both, and Nova's PCI-in-Placement
    then refuses to report the host (PlacementPciDependentDeviceException).
    """
    if (pf.vendor_id, pf.product_id) == (vendor_id, product_id):
        raise exception.MultimodalVirtError(
            'device_spec_style pf_address cannot select the VFs of PF %s: '
            'they share its id %s:%s, so a PF-address device_spec also '
            'matches the PF and Nova refuses to report it in Placement '
            '(PlacementPciDependentDeviceException); use device_spec_style '
            'vf_addresses' % (pf.address, vendor_id, product_id))


def device_specs(pfs, settings):
    """``[pci] device_spec`` entries (dicts) selecting the discovered VFs.

    :param pfs: discovered :class:`PhysicalFunction` objects.
    :param settings: :class:`Settings`.
    :returns: list of dicts, one JSON value each in nova.conf.
    """
    specs = []
    for pf in pfs:
        for vendor_id, product_id in pf.vf_models():
            vfs = [vf for vf in pf.vfs if (vf.vendor_id, vf.product_id) == (
                vendor_id, product_id)]
            tags = spec_tags(settings, vendor_id, product_id)
            if settings.device_spec_style == 'pf_address':
                _check_pf_distinct(pf, vendor_id, product_id)
                addresses = [str(pf.address)]
            else:
                addresses = list(_regex_address(vfs))
            for address in addresses:
                spec = {'vendor_id': vendor_id, 'product_id': product_id,
                        'address': address}
                spec.update(tags)
                specs.append(spec)
    return specs


def pool_tags(pfs, settings):
    """Tags Nova attaches to each PF's VFs, keyed by PF address.

    Feed this to :class:`multimodal_virt.pci.pools.VfPools` so our pool
    keys equal the ones Nova derives from the generated device_spec.
    """
    result = {}
    for pf in pfs:
        for vendor_id, product_id in pf.vf_models():
            result[pf.address] = spec_tags(settings, vendor_id, product_id)
    return result


def aliases(pfs, settings):
    """``[pci] alias`` entries, one per distinct VF model."""
    result = []
    for vendor_id, product_id in sorted(
            {model for pf in pfs for model in pf.vf_models()}):
        alias = {'name': settings.alias_name(vendor_id, product_id),
                 'vendor_id': vendor_id, 'product_id': product_id,
                 'device_type': device.DEV_TYPE_VF,
                 'numa_policy': settings.numa_policy}
        rc = settings.resource_class(vendor_id, product_id)
        if rc:
            alias['resource_class'] = rc
        result.append(alias)
    return result


def provider_config(pfs, settings, hostname=None):
    """A provider.yaml document (as a dict) for ``[compute]
    provider_config_location``.

    In ``pci_in_placement`` mode Nova owns the VF inventory (one child
    provider per PF, resource class and traits from device_spec), so the
    document only adds ``host_traits`` to the compute node. In
    ``provider_config`` mode it also declares the VF inventory (per resource
    class) on the compute node provider.

    :param pfs: discovered PFs.
    :param settings: :class:`Settings`.
    :param hostname: compute node provider name; None means every compute
        node of the service (``$COMPUTE_NODE``).
    """
    if hostname is not None and (not isinstance(hostname, str) or not (
            0 < len(hostname) <= 200)):
        raise exception.MultimodalVirtError(
            'hostname must be 1-200 characters, got %r' % (hostname,))
    ident = {'name': hostname} if hostname else {'uuid': '$COMPUTE_NODE'}
    provider = {'identification': ident}
    traits = list(settings.host_traits)
    if settings.placement_mode == 'provider_config':
        counts = collections.Counter()
        for pf in pfs:
            for vf in pf.vfs:
                rc = settings.resource_class(vf.vendor_id, vf.product_id)
                if rc is None:
                    raise exception.MultimodalVirtError(
                        'placement_mode provider_config needs a '
                        'resource_class_format')
                counts[rc] += 1
        inventory = {rc: {'total': total, 'reserved': 0, 'min_unit': 1,
                          'max_unit': total, 'step_size': 1,
                          'allocation_ratio': 1.0}
                     for rc, total in sorted(counts.items())}
        if inventory:
            provider['inventories'] = {'additional': [inventory]}
        traits.extend(t for t in settings.traits if t not in traits)
    providers = []
    if traits:
        provider['traits'] = {'additional': traits}
    if len(provider) > 1:
        providers.append(provider)
    return {'meta': {'schema_version': PROVIDER_SCHEMA_VERSION},
            'providers': providers}


@dataclasses.dataclass(frozen=True)
class GeneratedConfig:
    """Everything generated for one host."""

    device_spec: list
    alias: list
    provider: dict
    placement_mode: str

    def nova_options(self):
        """``{(group, option): value}`` for nova.conf, values as Nova reads.

        ``device_spec`` and ``alias`` are MultiStrOpts: lists of JSON
        strings.
        """
        options = {
            ('pci', 'device_spec'): [_dumps(s) for s in self.device_spec],
            ('pci', 'alias'): [_dumps(a) for a in self.alias],
        }
        if self.placement_mode == 'pci_in_placement':
            options[('pci', 'report_in_placement')] = True
            options[('filter_scheduler', 'pci_in_placement')] = True
        return options

    def to_json(self):
        """One JSON document with all three parts."""
        return json.dumps({'pci': {'device_spec': self.device_spec,
                                   'alias': self.alias},
                           'provider_config': self.provider},
                          indent=2, sort_keys=True)

    def to_ini(self, provider_config_location=None):
        """nova.conf snippet (``[pci]`` and related sections)."""
        sections = collections.defaultdict(list)
        for (group, name), value in self.nova_options().items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, bool):
                    item = 'true' if item else 'false'
                sections[group].append('%s = %s' % (name, item))
        if provider_config_location:
            sections['compute'].append(
                'provider_config_location = %s' % provider_config_location)
        lines = []
        for group in sorted(sections):
            lines.append('[%s]' % group)
            lines.extend(sections[group])
            lines.append('')
        return '\n'.join(lines)

    def to_yaml(self):
        """The provider.yaml document."""
        return yaml.safe_dump(self.provider, default_flow_style=False,
                              sort_keys=False)


def _dumps(value):
    return json.dumps(value, sort_keys=True, separators=(', ', ': '))


def generate(pfs, settings, hostname=None):
    """Generate device_spec, alias and provider.yaml for ``pfs``.

    :returns: :class:`GeneratedConfig`.
    """
    pfs = [pf for pf in pfs if pf.vfs]
    return GeneratedConfig(device_spec=device_specs(pfs, settings),
                           alias=aliases(pfs, settings),
                           provider=provider_config(pfs, settings, hostname),
                           placement_mode=settings.placement_mode)
