"""Hostdev and tuning XML against libvirt's test driver.

The test driver is loaded with node.xml: two SR-IOV PFs and their VFs as
node devices. Domains are defined with VIR_DOMAIN_DEFINE_VALIDATE, so
libvirt checks them against its own schema instead of rewriting bad input.
"""

import os

from lxml import etree

from multimodal_virt import exception
from multimodal_virt.libvirt_xml import hostdev
from multimodal_virt.libvirt_xml import iotune
from multimodal_virt.libvirt_xml import validate
from multimodal_virt.pci import address
from tests import base
from tests.functional.libvirt import helpers
from tests.functional import requirements

try:
    import libvirt
except ImportError:  # pragma: no cover - reported by require() below
    libvirt = None

A = address.PciAddress.parse


class TestDriverTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, libvirt is not None,
                             'libvirt-python (pip install libvirt-python)')
        requirements.require(self, os.path.exists(validate.DEFAULT_SCHEMA),
                             'libvirt domain schema (apt libvirt-daemon)')
        helpers.quiet_libvirt(libvirt)
        self.conn = libvirt.open(helpers.TEST_URI)  # private state per open
        self.addCleanup(self.conn.close)
        self.schema = validate.DomainSchema(
            self.conf.multimodal_virt_libvirt.domain_schema)

    def define(self, xml):
        if not isinstance(xml, str):
            xml = etree.tostring(xml, encoding='unicode')
        return self.conn.defineXMLFlags(xml,
                                        libvirt.VIR_DOMAIN_DEFINE_VALIDATE)

    def guest(self, vfs, managed=True, tuning=None):
        name, uuid, text = helpers.domain_xml()
        root = hostdev.add_hostdevs(text, vfs, managed=managed)
        if tuning is not None:
            root = iotune.apply_tuning(root, tuning)
        return uuid, validate.validate_domain(root, self.schema)

    def test_topology_from_node_devices(self):
        vfs = helpers.vfs_from_node_devices(self.conn, libvirt)
        self.assertEqual(
            [('0000:3b:00.%d' % f, 0, '0000:3b:00.0') for f in range(4, 8)]
            + [('0000:af:00.%d' % f, 1, '0000:af:00.0') for f in (4, 5)],
            [(str(a), n, str(p)) for a, n, p in vfs])

    def test_define_parse_round_trip(self):
        tuning = iotune.plan_tuning(iothreads=2, disks=['vda'], queues=2,
                                    pinning={1: [0], 2: [1]})
        owner, root = self.guest([], tuning=tuning)
        vfs = [A('0000:af:00.4'), A('0000:af:00.5')]
        root = validate.validate_domain(
            hostdev.add_hostdevs(root, vfs, managed=True), self.schema)
        dom = self.define(root)
        self.assertEqual(owner, dom.UUIDString())

        live = dom.XMLDesc(0)
        parsed = hostdev.parse_domain_hostdevs(live)
        self.assertEqual(vfs, [h.address for h in parsed])
        self.assertEqual([True, True], [h.managed for h in parsed])
        # libvirt's own rendering still passes our checks and the schema.
        validate.validate_domain(live, self.schema)
        live_root = etree.fromstring(live)
        self.assertEqual('2', live_root.findtext('iothreads'))
        self.assertEqual({'io': 'native', 'cache': 'none', 'iothread': '1',
                          'queues': '2'},
                         {k: v for k, v in live_root.find(
                             'devices/disk/driver').attrib.items()
                          if k in ('io', 'cache', 'iothread', 'queues')})

    def test_validate_flag_refuses_what_libvirt_would_rewrite(self):
        _, root = self.guest([A('0000:3b:00.4')])
        root.find('devices/hostdev').set('managed', 'maybe')
        text = etree.tostring(root, encoding='unicode')
        # Without the flag libvirt quietly turns 'maybe' into 'no' ...
        quiet = self.conn.defineXML(text)
        self.assertFalse(hostdev.parse_domain_hostdevs(
            quiet.XMLDesc(0))[0].managed)
        quiet.undefine()
        # ... with it, and with our validator, it is an error.
        self.assertRaises(libvirt.libvirtError, self.define, text)
        self.assertRaises(exception.InvalidDomainXML,
                          validate.validate_domain, text, self.schema)

    def test_our_checks_catch_what_libvirt_accepts(self):
        _, root = self.guest([A('0000:3b:00.4')], tuning=iotune.plan_tuning(
            iothreads=1, disks=['vda']))
        root.find('devices/disk/driver').set('iothread', '5')
        # The schema and the test driver both take a dangling iothread ...
        self.assertEqual([], self.schema.schema_errors(root))
        dom = self.define(root)
        self.assertEqual('5', etree.fromstring(dom.XMLDesc(0)).find(
            'devices/disk/driver').get('iothread'))
        # ... our checks do not.
        err = self.assertRaises(exception.InvalidDomainXML,
                                validate.validate_domain, root, self.schema)
        self.assertIn('disk vda refers to iothread 5', str(err))

    def test_duplicate_hostdev_caught_before_libvirt(self):
        _, root = self.guest([A('0000:3b:00.4')])
        root.find('devices').append(hostdev.hostdev_element(A('0000:3b:00.4')))
        # The schema cannot see it; libvirt's define does, ours earlier.
        self.assertEqual([], self.schema.schema_errors(root))
        err = self.assertRaises(exception.InvalidDomainXML,
                                validate.validate_domain, root, self.schema)
        self.assertIn('0000:3b:00.4 is in 2 <hostdev>', str(err))
        err = self.assertRaises(libvirt.libvirtError, self.define, root)
        self.assertIn('Hostdev already exists', str(err))
