"""Guest XML built by our driver inside a real nova-compute.

Without our extra specs the XML must be Nova's byte for byte; with tuning
specs it must carry the iothreads, ``io`` and ``queues`` and validate
against the installed libvirt's ``domain.rng``; a spec the host cannot
honour must fail the boot with a clear instance fault.
"""

import copy
import os
import types

from lxml import etree
from nova.virt.libvirt import driver as stock_driver

from multimodal_virt.compute import driver as mmv_driver
from multimodal_virt.libvirt_xml import validate
from tests.functional.compute import base
from tests.functional import requirements

TUNING = {'multimodal_virt:disk_iothreads': '2',
          'multimodal_virt:disk_io': 'native',
          'multimodal_virt:disk_queues': '4'}


class GuestXMLTest(base.ShimServersTestBase):

    def setUp(self):
        super().setUp()
        self.schema = validate.DomainSchema()
        requirements.require(self, _schema_present(self.schema),
                             'libvirt domain.rng (libvirt-daemon)')
        self.calls = []
        # Nova stamps <nova:creationTime> from time.time(): freeze it so the
        # two builds of one guest can be compared byte for byte.
        self.useFixture(base.fixtures.MonkeyPatch(
            'nova.virt.driver.time', types.SimpleNamespace(
                time=lambda: 1800000000.0)))
        original = mmv_driver.LibvirtDriver._get_guest_xml

        def spy(driver, context, *args, **kwargs):
            # Nova's build mutates its arguments (it records the machine
            # type in image_meta): give stock Nova its own copies.
            stock = stock_driver.LibvirtDriver._get_guest_xml(
                driver, context, *copy.deepcopy(args),
                **copy.deepcopy(kwargs))
            ours = original(driver, context, *args, **kwargs)
            self.calls.append((stock, ours))
            return ours

        self.useFixture(base.fixtures.MonkeyPatch(
            'multimodal_virt.compute.driver.LibvirtDriver._get_guest_xml',
            spy))

    def test_shim_is_the_loaded_driver(self):
        self.start_compute()
        self.assertIsInstance(self.computes['compute1'].driver,
                              mmv_driver.LibvirtDriver)

    def test_without_our_specs_xml_is_byte_identical_to_nova(self):
        self.start_compute()
        flavor = self._create_flavor(extra_spec={'hw:cpu_policy': 'shared'})
        server = self._create_server(flavor_id=flavor, networks='none')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(1, len(self.calls))
        stock, ours = self.calls[0]
        self.assertIn('<disk', stock)
        self.assertEqual(stock.encode(), ours.encode())
        self.assertEqual(ours, self.defined.last())

    def test_tuning_specs_reach_the_defined_domain_and_validate(self):
        self.start_compute()
        flavor = self._create_flavor(extra_spec=TUNING)
        server = self._create_server(flavor_id=flavor, networks='none')
        self.assertEqual('ACTIVE', server['status'])
        stock, ours = self.calls[-1]
        self.assertNotEqual(stock, ours)
        root = etree.fromstring(self.defined.last().encode())
        self.assertEqual('2', root.findtext('iothreads'))
        self.assertEqual(['1', '2'], [t.get('id') for t in root.iterfind(
            'iothreadids/iothread')])
        drivers = [d.find('driver') for d in root.iterfind('devices/disk')
                   if d.get('device') == 'disk']
        self.assertTrue(drivers)
        for drv in drivers:
            self.assertEqual('native', drv.get('io'))
            self.assertEqual('4', drv.get('queues'))
            self.assertIn(drv.get('iothread'), ('1', '2'))
            self.assertEqual('none', drv.get('cache'))
        validate.validate_domain(root, self.schema)
        # Everything else is Nova's: strip our attributes and elements.
        for drv in drivers:
            for attr in ('io', 'queues', 'iothread'):
                del drv.attrib[attr]
        root.remove(root.find('iothreadids'))
        root.find('iothreads').text = '1'
        self.assertEqual(_canonical(stock), _canonical(etree.tostring(root)))

    def test_native_io_without_direct_io_fails_with_fault(self):
        self.flags(disk_cachemodes=['file=writeback'], group='libvirt')
        self.start_compute()
        flavor = self._create_flavor(
            extra_spec={'multimodal_virt:disk_io': 'native'})
        server = self._create_server(flavor_id=flavor, networks='none',
                                     expected_state='ERROR')
        fault = self.api.get_server(server['id'])['fault']
        self.assertIn('multimodal_virt:disk_io=native', fault['message'])
        self.assertIn("cache='writeback'", fault['message'])
        self.assertEqual([], self.defined.documents)


def _schema_present(schema):
    return os.path.exists(schema.path)


def _canonical(xml):
    """C14N of a document, whitespace between elements dropped."""
    if isinstance(xml, str):
        xml = xml.encode()
    parser = etree.XMLParser(remove_blank_text=True)
    return etree.tostring(etree.fromstring(xml, parser), method='c14n')
