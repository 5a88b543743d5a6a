"""Read-only drift report of SR-IOV VFs: sysfs driver, holder, device_spec.

Nova owns VF claims (its PCI tracker and Placement) and libvirt binds VFs to
vfio-pci when a guest starts (``managed='yes'``). This report changes
nothing; it shows, per VF, what an operator needs to spot drift:

* ``driver``: the VF's kernel driver in sysfs;
* ``domain``/``nova``: the libvirt domain whose definition holds the VF and
  whether that domain carries Nova's instance metadata;
* ``in_device_spec``: whether nova.conf's ``[pci] device_spec`` covers the
  VF (checked with Nova's own ``Whitelist``).

Problems flagged: a VF held by a domain Nova does not know, by several
domains, by a running domain while not on ``vfio-pci``, left on
``vfio-pci`` by no domain, or held by Nova outside the device_spec.
"""

import dataclasses

from lxml import etree
from nova import exception as nova_exception
from nova.pci import whitelist

from multimodal_virt import exception
from multimodal_virt.libvirt_xml import hostdev

VFIO_DRIVER = 'vfio-pci'
NOVA_METADATA_NS = 'http://openstack.org/xmlns/libvirt/nova/'


@dataclasses.dataclass(frozen=True)
class DomainInfo:
    """What the audit needs of one libvirt domain."""

    name: str
    uuid: str
    active: bool
    nova: bool
    hostdevs: tuple


def parse_domain(name, uuid, active, xml):
    """Build a :class:`DomainInfo` from a domain's XML description.

    :param xml: ``virDomain.XMLDesc(0)`` text.
    """
    root = etree.fromstring(xml.encode('utf-8') if isinstance(xml, str)
                            else xml,
                            etree.XMLParser(resolve_entities=False,
                                            no_network=True))
    nova = any(isinstance(el.tag, str) and el.tag.startswith(
        '{%s' % NOVA_METADATA_NS) for el in root.iterfind('metadata/*'))
    addresses = tuple(h.address for h in hostdev.parse_domain_hostdevs(root))
    return DomainInfo(name, uuid, bool(active), nova, addresses)


@dataclasses.dataclass(frozen=True)
class VfReport:
    """The audit line of one VF."""

    address: str
    pf: str
    vendor_id: str
    product_id: str
    driver: str
    in_device_spec: bool
    domains: tuple  # ((name, uuid, active, nova), ...)
    problems: tuple

    def to_dict(self):
        return {'address': self.address, 'pf': self.pf,
                'vendor_id': self.vendor_id, 'product_id': self.product_id,
                'driver': self.driver, 'in_device_spec': self.in_device_spec,
                'domains': [{'name': n, 'uuid': u, 'active': a, 'nova': v}
                            for n, u, a, v in self.domains],
                'problems': list(self.problems)}


def _problems(vf, in_spec, holders):
    problems = []
    running = [d for d in holders if d.active]
    if len(holders) > 1:
        problems.append('in %d domain definitions' % len(holders))
    for dom in holders:
        if not dom.nova:
            problems.append('held by domain %s, which Nova did not create'
                            % dom.name)
        elif not in_spec:
            problems.append('held by Nova domain %s but not in [pci] '
                            'device_spec' % dom.name)
    if running and vf.driver != VFIO_DRIVER:
        problems.append('running domain %s holds it but its driver is %s'
                        % (running[0].name, vf.driver or 'none'))
    if not running and vf.driver == VFIO_DRIVER:
        problems.append('on %s but no running domain holds it'
                        % VFIO_DRIVER)
    return tuple(problems)


def audit(pfs, domains, in_device_spec):
    """Audit every VF of ``pfs``.

    :param pfs: discovered :class:`~multimodal_virt.pci.device
        .PhysicalFunction` objects.
    :param domains: :class:`DomainInfo` of every libvirt domain.
    :param in_device_spec: callable(PhysicalFunction, VirtualFunction) ->
        bool, e.g. :func:`nova_device_spec_matcher`'s result.
    :returns: list of :class:`VfReport`, by VF address.
    """
    holders = {}
    for dom in domains:
        for address in dom.hostdevs:
            holders.setdefault(address, []).append(dom)
    result = []
    for pf in pfs:
        for vf in pf.vfs:
            found = holders.get(vf.address, [])
            in_spec = bool(in_device_spec(pf, vf))
            result.append(VfReport(
                address=str(vf.address), pf=str(pf.address),
                vendor_id=vf.vendor_id, product_id=vf.product_id,
                driver=vf.driver, in_device_spec=in_spec,
                domains=tuple((d.name, d.uuid, d.active, d.nova)
                              for d in found),
                problems=_problems(vf, in_spec, found)))
    return sorted(result, key=lambda r: r.address)


def nova_device_spec_matcher(device_spec):
    """A matcher built from nova.conf ``[pci] device_spec`` JSON strings.

    Uses Nova's own ``nova.pci.whitelist.Whitelist``, so the answer is the
    one nova-compute gives.

    :param device_spec: list of JSON strings (the MultiStrOpt's value).
    :raises PciDiscoveryError: the device_spec does not parse.
    """
    try:
        specs = whitelist.Whitelist(device_spec)
    except nova_exception.NovaException as err:
        raise exception.PciDiscoveryError(
            'nova.conf [pci] device_spec is invalid: %s' % err)

    def matches(pf, vf):
        return specs.device_assignable({
            'vendor_id': vf.vendor_id, 'product_id': vf.product_id,
            'address': str(vf.address), 'parent_addr': str(pf.address),
            'dev_type': vf.dev_type}) is not None
    return matches
