"""PCI ``<hostdev>`` elements for VFs given to a guest through vfio.

Emits::

    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio'/>
      <source>
        <address domain='0x0000' bus='0x3b' slot='0x00' function='0x4'/>
      </source>
    </hostdev>

and parses it back (from our output or from libvirt's ``XMLDesc``) into a
:class:`Hostdev`. ``hostdev_element(parse_hostdev(e).address, ...)`` round
trips.
"""

import dataclasses

from lxml import etree

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address

_MANAGED = {True: 'yes', False: 'no'}
_MANAGED_PARSE = {'yes': True, 'no': False}


@dataclasses.dataclass(frozen=True)
class Hostdev:
    """A PCI hostdev: host VF address and whether libvirt manages binding.

    ``guest_address`` is the PCI address inside the guest when the
    document has one (libvirt adds it on define), else None.
    """

    address: pci_address.PciAddress
    managed: bool
    guest_address: object = None


def hostdev_element(address, managed=True, guest_address=None):
    """Build a vfio PCI ``<hostdev>`` element.

    :param address: host :class:`PciAddress` of the VF.
    :param managed: True for ``managed='yes'`` (libvirt detaches and
        re-attaches the device), False for ``managed='no'`` (the caller
        binds it to vfio-pci first).
    :param guest_address: optional :class:`PciAddress` the device gets on
        the guest's PCI bus.
    :returns: an ``lxml`` element.
    :raises InvalidDomainXML: naming the bad argument.
    """
    if not isinstance(address, pci_address.PciAddress):
        raise exception.InvalidDomainXML(
            'hostdev address must be a PciAddress, got %r' % (address,))
    if not isinstance(managed, bool):
        raise exception.InvalidDomainXML(
            'hostdev managed must be True or False, got %r' % (managed,))
    if guest_address is not None and not isinstance(
            guest_address, pci_address.PciAddress):
        raise exception.InvalidDomainXML(
            'hostdev guest_address must be a PciAddress or None, got %r'
            % (guest_address,))
    hostdev = etree.Element('hostdev', mode='subsystem', type='pci',
                            managed=_MANAGED[managed])
    etree.SubElement(hostdev, 'driver', name='vfio')
    source = etree.SubElement(hostdev, 'source')
    etree.SubElement(source, 'address', address.libvirt_attrs())
    if guest_address is not None:
        etree.SubElement(hostdev, 'address', type='pci',
                         **guest_address.libvirt_attrs())
    return hostdev


def hostdev_xml(address, managed=True, guest_address=None):
    """Same as :func:`hostdev_element`, serialised to a ``str``."""
    return etree.tostring(hostdev_element(address, managed, guest_address),
                          encoding='unicode')


def _as_element(xml):
    if isinstance(xml, etree._Element):
        return xml
    if isinstance(xml, (str, bytes)):
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            if isinstance(xml, str):
                xml = xml.encode('utf-8')
            return etree.fromstring(xml, parser)
        except etree.XMLSyntaxError as err:
            raise exception.InvalidDomainXML('not well-formed XML: %s' % err)
    raise exception.InvalidDomainXML(
        'expected XML text or an lxml element, got %r' % (type(xml),))


def is_pci_hostdev(element):
    """True for ``<hostdev mode='subsystem' type='pci'>``."""
    return (element.tag == 'hostdev'
            and element.get('mode') == 'subsystem'
            and element.get('type') == 'pci')


def parse_hostdev(xml):
    """Parse a PCI ``<hostdev>`` (element or text) into a :class:`Hostdev`.

    :raises InvalidDomainXML: when it is not a PCI subsystem hostdev, has
        no ``<source><address>``, or ``managed`` is not yes/no.
    """
    element = _as_element(xml)
    if not is_pci_hostdev(element):
        raise exception.InvalidDomainXML(
            "expected <hostdev mode='subsystem' type='pci'>, got <%s%s>"
            % (element.tag, ''.join(" %s='%s'" % kv
                                    for kv in sorted(element.attrib.items()))))
    managed_text = element.get('managed', 'no')
    if managed_text not in _MANAGED_PARSE:
        raise exception.InvalidDomainXML(
            "hostdev managed=%r: expected 'yes' or 'no'" % managed_text)
    driver = element.find('driver')
    if driver is not None and driver.get('name', 'vfio') != 'vfio':
        raise exception.InvalidDomainXML(
            "hostdev driver name=%r: expected 'vfio'" % driver.get('name'))
    source = element.find('source/address')
    if source is None:
        raise exception.InvalidDomainXML(
            'hostdev has no <source><address .../></source>: %s'
            % etree.tostring(element, encoding='unicode'))
    guest = element.find('address')
    guest_address = None
    if guest is not None and guest.get('type') == 'pci':
        guest_address = pci_address.PciAddress.from_libvirt_attrs(
            guest.attrib)
    return Hostdev(
        address=pci_address.PciAddress.from_libvirt_attrs(source.attrib),
        managed=_MANAGED_PARSE[managed_text],
        guest_address=guest_address)


def parse_domain_hostdevs(domain_xml):
    """Return the PCI :class:`Hostdev` list of a ``<domain>`` document.

    :param domain_xml: domain XML text or ``lxml`` element.
    :returns: list in document order; non-PCI hostdevs are skipped.
    """
    root = _as_element(domain_xml)
    if root.tag != 'domain':
        raise exception.InvalidDomainXML(
            'expected a <domain> document, got <%s>' % root.tag)
    return [parse_hostdev(e) for e in root.iterfind('devices/hostdev')
            if is_pci_hostdev(e)]


def add_hostdevs(domain_xml, addresses, managed=True):
    """Return a copy of a domain document with one hostdev per address.

    :param domain_xml: domain XML text or element (left unchanged).
    :param addresses: iterable of :class:`PciAddress`.
    :param managed: ``managed`` of the new hostdevs.
    :returns: a new ``<domain>`` element.
    """
    root = _as_element(domain_xml)
    if root.tag != 'domain':
        raise exception.InvalidDomainXML(
            'expected a <domain> document, got <%s>' % root.tag)
    root = etree.fromstring(etree.tostring(root))  # deep copy
    devices = root.find('devices')
    if devices is None:
        devices = etree.SubElement(root, 'devices')
    for addr in addresses:
        devices.append(hostdev_element(addr, managed=managed))
    return root
