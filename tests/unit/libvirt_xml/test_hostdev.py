"""Emit and parse vfio PCI <hostdev> elements (pure lxml)."""

from lxml import etree

from multimodal_virt import exception
from multimodal_virt.libvirt_xml import hostdev
from multimodal_virt.pci import address
from tests import base

A = address.PciAddress.parse
VF = A('0000:3b:00.4')


class HostdevTestCase(base.TestCase):

    def test_emit(self):
        self.assertEqual(
            "<hostdev mode=\"subsystem\" type=\"pci\" managed=\"yes\">"
            "<driver name=\"vfio\"/><source><address domain=\"0x0000\" "
            "bus=\"0x3b\" slot=\"0x00\" function=\"0x4\"/></source>"
            "</hostdev>", hostdev.hostdev_xml(VF))
        element = hostdev.hostdev_element(VF, managed=False,
                                          guest_address=A('0000:00:05.0'))
        self.assertEqual('no', element.get('managed'))
        self.assertEqual({'type': 'pci', 'domain': '0x0000', 'bus': '0x00',
                          'slot': '0x05', 'function': '0x0'},
                         dict(element.find('address').attrib))

    def test_round_trip(self):
        for addr in (VF, A('ffff:ff:1f.7'), A('0000:00:00.0')):
            for managed in (True, False):
                for guest in (None, A('0000:00:06.0')):
                    text = hostdev.hostdev_xml(addr, managed, guest)
                    parsed = hostdev.parse_hostdev(text)
                    self.assertEqual(
                        hostdev.Hostdev(addr, managed, guest), parsed)
                    self.assertEqual(text, hostdev.hostdev_xml(
                        parsed.address, parsed.managed,
                        parsed.guest_address))

    def test_parse_libvirt_output(self):
        # As libvirt's XMLDesc writes it: single quotes, alias, guest addr.
        text = """<hostdev mode='subsystem' type='pci' managed='yes'>
          <driver name='vfio'/>
          <source>
            <address domain='0x0000' bus='0x3b' slot='0x00' function='0x5'/>
          </source>
          <alias name='hostdev0'/>
          <address type='pci' domain='0x0000' bus='0x00' slot='0x03'
                   function='0x0'/>
        </hostdev>"""
        self.assertEqual(hostdev.Hostdev(A('0000:3b:00.5'), True,
                                         A('0000:00:03.0')),
                         hostdev.parse_hostdev(text))

    def test_parse_domain_and_add(self):
        domain = ("<domain type='kvm'><name>x</name><devices>"
                  "<hostdev mode='subsystem' type='usb'><source>"
                  "<vendor id='0x1'/><product id='0x2'/></source></hostdev>"
                  "</devices></domain>")
        self.assertEqual([], hostdev.parse_domain_hostdevs(domain))
        added = hostdev.add_hostdevs(domain, [VF, A('0000:3b:00.5')],
                                     managed=False)
        self.assertEqual([VF, A('0000:3b:00.5')],
                         [h.address for h in
                          hostdev.parse_domain_hostdevs(added)])
        self.assertNotIn(b'0x3b', etree.tostring(
            etree.fromstring(domain)))  # input left unchanged
        bare = hostdev.add_hostdevs("<domain type='kvm'/>", [VF])
        self.assertEqual(1, len(bare.findall('devices/hostdev')))

    def test_bad_input(self):
        cases = [
            ((lambda: hostdev.hostdev_element('0000:3b:00.4')),
             'must be a PciAddress'),
            ((lambda: hostdev.hostdev_element(VF, managed='yes')),
             'managed must be True or False'),
            ((lambda: hostdev.hostdev_element(VF, guest_address='x')),
             'guest_address'),
            ((lambda: hostdev.parse_hostdev('<hostdev')), 'not well-formed'),
            ((lambda: hostdev.parse_hostdev("<disk type='file'/>")),
             "got <disk type='file'>"),
            ((lambda: hostdev.parse_hostdev(
                "<hostdev mode='subsystem' type='pci' managed='maybe'>"
                "<source><address domain='0' bus='1' slot='0' function='0'/>"
                "</source></hostdev>")), "managed='maybe'"),
            ((lambda: hostdev.parse_hostdev(
                "<hostdev mode='subsystem' type='pci'><source/></hostdev>")),
             'no <source><address'),
            ((lambda: hostdev.parse_hostdev(
                "<hostdev mode='subsystem' type='pci'><driver name='kvm'/>"
                "<source><address domain='0' bus='1' slot='0' function='0'/>"
                "</source></hostdev>")), "name='kvm'"),
            ((lambda: hostdev.parse_domain_hostdevs('<devices/>')),
             'expected a <domain>'),
            ((lambda: hostdev.parse_hostdev(42)), 'expected XML text'),
        ]
        for call, text in cases:
            err = self.assertRaises(exception.InvalidDomainXML, call)
            self.assertIn(text, str(err))
        err = self.assertRaises(
            exception.InvalidPciAddress, hostdev.parse_hostdev,
            "<hostdev mode='subsystem' type='pci'><source><address "
            "domain='0x0000' bus='0x3b' slot='0x40' function='0x0'/>"
            "</source></hostdev>")
        self.assertIn('slot', str(err))
