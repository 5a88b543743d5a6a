"""Generated XML against a real libvirtd + QEMU (define only, never start).

Starting a guest with a vfio hostdev needs the hardware; defining it and
asking libvirt for the QEMU command line (``domainXMLToNative``) does not,
and shows the exact ``vfio-pci`` device and I/O tuning QEMU would get.
"""

import os
import random

import fixtures
from lxml import etree

from multimodal_virt import exception
from multimodal_virt.libvirt_xml import hostdev
from multimodal_virt.libvirt_xml import iotune
from multimodal_virt.libvirt_xml import validate
from multimodal_virt.pci import address
from multimodal_virt.compute import guest_tuning
from multimodal_virt.compute import specs
from multimodal_virt.pci import audit
from multimodal_virt.pci import device
from multimodal_virt.pci import domains
from tests import base
from tests.functional.libvirt import helpers
from tests.functional import requirements

try:
    import libvirt
except ImportError:  # pragma: no cover - reported by require() below
    libvirt = None

URI = 'qemu:///system'


class LibvirtdTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, libvirt is not None,
                             'libvirt-python (pip install libvirt-python)')
        helpers.quiet_libvirt(libvirt)
        try:
            self.conn = libvirt.open(URI)
        except libvirt.libvirtError as err:
            requirements.require(self, False, 'libvirtd at %s (run '
                                 'tools/setup-host.sh): %s' % (URI, err))
        self.addCleanup(self.conn.close)
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.disk = os.path.join(self.tmp, 'disk.img')
        with open(self.disk, 'wb') as handle:
            handle.truncate(1 << 20)
        self.schema = validate.DomainSchema()
        # A VF address of our own: other tests may define domains on the
        # same libvirtd at the same time.
        self.vf = address.PciAddress(random.randint(1, 0xffff),
                                     random.randint(1, 0xff), 0, 4)

    def define(self, root):
        dom = self.conn.defineXMLFlags(etree.tostring(root, encoding='unicode'),
                                       libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        self.addCleanup(self._undefine, dom.UUIDString())
        return dom

    def _undefine(self, uuid):
        try:
            self.conn.lookupByUUIDString(uuid).undefine()
        except libvirt.libvirtError:
            pass

    def tuned_guest(self, managed=False):
        _, uuid, text = helpers.domain_xml('kvm', disk_path=self.disk)
        root = hostdev.add_hostdevs(text, [self.vf], managed=managed)
        root = iotune.apply_tuning(root, iotune.plan_tuning(
            iothreads=2, disks=['vda'], queues=2, pinning={1: [0], 2: [0]}))
        return uuid, validate.validate_domain(root, self.schema)

    def test_define_and_qemu_argv(self):
        uuid, root = self.tuned_guest(managed=False)
        dom = self.define(root)
        self.assertFalse(dom.isActive())
        live = dom.XMLDesc(0)
        validate.validate_domain(live, self.schema)
        parsed = hostdev.parse_domain_hostdevs(live)
        self.assertEqual([(self.vf, False)],
                         [(h.address, h.managed) for h in parsed])
        self.assertIsNotNone(parsed[0].guest_address)  # libvirt placed it
        pins = [(p.get('iothread'), p.get('cpuset')) for p in
                etree.fromstring(live).iterfind('cputune/iothreadpin')]
        self.assertEqual([('1', '0'), ('2', '0')], pins)

        argv = self.conn.domainXMLToNative('qemu-argv', live, 0)
        self.assertIn('"driver":"vfio-pci","host":"%s"' % self.vf, argv)
        self.assertIn('{"qom-type":"iothread","id":"iothread1"}', argv)
        self.assertIn('{"qom-type":"iothread","id":"iothread2"}', argv)
        self.assertIn('"aio":"native"', argv)
        self.assertIn('"cache":{"direct":true', argv)
        self.assertIn('"driver":"virtio-blk-pci","iothread":"iothread1",'
                      '"num-queues":2', argv)

    def test_managed_hostdev_defines(self):
        _, root = self.tuned_guest(managed=True)
        dom = self.define(root)
        self.assertEqual([True], [h.managed for h in
                                  hostdev.parse_domain_hostdevs(
                                      dom.XMLDesc(0))])

    def test_qemu_driver_refuses_dangling_iothread_we_catch_first(self):
        _, root = self.tuned_guest()
        root.find('devices/disk/driver').set('iothread', '5')
        self.assertEqual([], self.schema.schema_errors(root))
        self.assertRaises(exception.InvalidDomainXML,
                          validate.validate_domain, root, self.schema)
        err = self.assertRaises(libvirt.libvirtError, self.define, root)
        self.assertIn("iothread '5' not defined", str(err))

    def test_compute_tuning_reaches_the_qemu_command_line(self):
        # The path nova-compute takes: flavor specs -> guest_tuning.tune()
        # on the XML Nova built (here a small one with cache='none').
        _, _, text = helpers.domain_xml('kvm', disk_path=self.disk)
        root = etree.fromstring(text)
        root.find('devices/disk/driver').set('cache', 'none')
        tuning = specs.guest_tuning({specs.DISK_IOTHREADS: '1',
                                     specs.DISK_IO: 'native',
                                     specs.DISK_QUEUES: '2'})
        tuned = guest_tuning.tune(etree.tostring(root, encoding='unicode'),
                                  tuning, self.schema)
        dom = self.define(etree.fromstring(tuned))
        argv = self.conn.domainXMLToNative('qemu-argv', dom.XMLDesc(0), 0)
        self.assertIn('{"qom-type":"iothread","id":"iothread1"}', argv)
        self.assertIn('"aio":"native"', argv)
        self.assertIn('"driver":"virtio-blk-pci","iothread":"iothread1",'
                      '"num-queues":2', argv)

    def _pf(self):
        pf = address.PciAddress(self.vf.domain, self.vf.bus, 0, 0)
        vf = device.VirtualFunction(address=self.vf, parent=pf, index=0,
                                    vendor_id='8086', product_id='56c0',
                                    driver='i915')
        return device.PhysicalFunction(
            address=pf, vendor_id='8086', product_id='56c0',
            class_code=0x038000, total_vfs=4, num_vfs=1, vfs=(vf,))

    def _audit(self):
        mine = [d for d in domains.read_domains(URI)
                if self.vf in d.hostdevs]
        return audit.audit([self._pf()], mine, lambda pf, vf: True)

    def test_audit_names_a_domain_nova_did_not_create(self):
        uuid, root = self.tuned_guest(managed=True)
        self.define(root)
        (report,) = self._audit()
        self.assertEqual([uuid], [u for _, u, _, _ in report.domains])
        self.assertEqual(1, len(report.problems))
        self.assertIn('which Nova did not create', report.problems[0])

    def test_audit_accepts_a_nova_domain(self):
        uuid, root = self.tuned_guest(managed=True)
        metadata = etree.SubElement(root, 'metadata')
        etree.SubElement(metadata, '{%s1.1}instance'
                         % audit.NOVA_METADATA_NS)
        root.remove(metadata)
        root.insert(3, metadata)
        self.define(root)
        (report,) = self._audit()
        self.assertEqual([(uuid, False, True)],
                         [(u, a, n) for _, u, a, n in report.domains])
        self.assertEqual((), report.problems)
