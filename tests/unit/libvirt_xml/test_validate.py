"""Validation against the installed libvirt domain.rng plus our checks."""

import os

from lxml import etree

from multimodal_virt import exception
from multimodal_virt.libvirt_xml import hostdev
from multimodal_virt.libvirt_xml import iotune
from multimodal_virt.libvirt_xml import validate
from multimodal_virt.pci import address
from tests import base
from tests.functional import requirements

A = address.PciAddress.parse
BASE = """<domain type='kvm'><name>v</name><memory>65536</memory>
<vcpu>2</vcpu><os><type>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='/var/lib/v.img'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>"""


class SemanticTestCase(base.TestCase):
    """Our own checks: no schema needed."""

    def test_consistent(self):
        root = iotune.apply_tuning(
            hostdev.add_hostdevs(BASE, [A('0000:3b:00.4')]),
            iotune.plan_tuning(iothreads=2, disks=['vda'], pinning={2: [1]}))
        self.assertEqual([], validate.semantic_errors(root))

    def test_errors(self):
        root = hostdev.add_hostdevs(BASE, [A('0000:3b:00.4'),
                                           A('0000:3b:00.5'),
                                           A('0000:3b:00.4')])
        disk = root.find('devices/disk')
        disk.find('driver').set('iothread', '3')
        root.find('devices').append(etree.fromstring(etree.tostring(disk)))
        etree.SubElement(root, 'iothreads').text = '1'
        ids = etree.SubElement(root, 'iothreadids')
        etree.SubElement(ids, 'iothread', id='2')
        etree.SubElement(ids, 'iothread', id='2')
        cputune = etree.SubElement(root, 'cputune')
        etree.SubElement(cputune, 'iothreadpin', iothread='2', cpuset='0')
        etree.SubElement(cputune, 'iothreadpin', iothread='2', cpuset='1')
        etree.SubElement(cputune, 'iothreadpin', iothread='7', cpuset='1')
        ctl = etree.SubElement(root.find('devices'), 'controller',
                               type='scsi', index='0', model='virtio-scsi')
        etree.SubElement(ctl, 'driver', iothread='4')
        errors = validate.semantic_errors(root)
        self.assertEqual([
            'host PCI device 0000:3b:00.4 is in 2 <hostdev> elements',
            'disk target vda is used by 2 disks',
            'iothread id 2 is listed 2 times in <iothreadids>',
            'disk vda refers to iothread 3, which is not defined '
            '(defined: 2)',
            'disk vda refers to iothread 3, which is not defined '
            '(defined: 2)',
            'controller scsi/0 refers to iothread 4, which is not defined '
            '(defined: 2)',
            'cputune iothreadpin refers to iothread 7, which is not defined '
            '(defined: 2)',
            'iothread 2 is pinned 2 times',
        ], errors)

    def test_unlisted_iothreads_are_numbered_like_libvirt(self):
        root = etree.fromstring(BASE)
        etree.SubElement(root, 'iothreads').text = '3'
        ids = etree.SubElement(root, 'iothreadids')
        etree.SubElement(ids, 'iothread', id='5')
        root.find('devices/disk/driver').set('iothread', '2')
        self.assertEqual([], validate.semantic_errors(root))
        root.find('devices/disk/driver').set('iothread', '3')
        self.assertEqual(['disk vda refers to iothread 3, which is not '
                          'defined (defined: 1, 2, 5)'],
                         validate.semantic_errors(root))


class SchemaTestCase(base.TestCase):
    """Against the real /usr/share/libvirt/schemas/domain.rng."""

    def setUp(self):
        super().setUp()
        requirements.require(self, os.path.exists(validate.DEFAULT_SCHEMA),
                             'libvirt domain schema %s (apt libvirt-daemon)'
                             % validate.DEFAULT_SCHEMA)
        self.schema = validate.DomainSchema()

    def full_domain(self):
        root = hostdev.add_hostdevs(BASE, [A('0000:3b:00.4')],
                                    managed=False)
        return iotune.apply_tuning(root, iotune.plan_tuning(
            iothreads=2, disks=['vda'], queues=4, pinning={1: [0], 2: [1]}))

    def test_emitted_documents_validate(self):
        root = self.full_domain()
        self.assertIs(root, validate.validate_domain(root, self.schema))
        text = etree.tostring(root, encoding='unicode')
        self.assertEqual('v', validate.validate_domain(
            text, self.schema).findtext('name'))

    def test_schema_rejects_what_libvirt_would_rewrite(self):
        root = self.full_domain()
        root.find('devices/hostdev').set('managed', 'maybe')
        err = self.assertRaises(exception.InvalidDomainXML,
                                validate.validate_domain, root, self.schema)
        self.assertIn('domain v is invalid', str(err))
        self.assertIn('line', str(err))

    def test_schema_misses_duplicates_our_checks_catch(self):
        root = self.full_domain()
        root.find('devices').append(hostdev.hostdev_element(A('0000:3b:00.4')))
        root.find('devices/disk/driver').set('iothread', '9')
        self.assertEqual([], self.schema.schema_errors(root))
        err = self.assertRaises(exception.InvalidDomainXML,
                                validate.validate_domain, root, self.schema)
        self.assertIn('0000:3b:00.4 is in 2 <hostdev>', str(err))
        self.assertIn('refers to iothread 9', str(err))

    def test_feature_probe(self):
        # libvirt 9.0's schema has no <poll> under <iothread>; the probe
        # says so instead of comparing version numbers.
        has_poll = self.schema.supports_iothread_poll()
        plan = iotune.plan_tuning(iothreads=1, poll_max_ns=32768)
        if has_poll:
            root = iotune.apply_tuning(BASE, plan, schema=self.schema)
            validate.validate_domain(root, self.schema)
        else:
            err = self.assertRaises(exception.InvalidDomainXML,
                                    iotune.apply_tuning, BASE, plan,
                                    self.schema)
            self.assertIn('not in the installed libvirt domain schema',
                          str(err))
        self.assertTrue(self.schema.supports('<iothreads>1</iothreads>'))

    def test_missing_schema(self):
        schema = validate.DomainSchema('/nonexistent/domain.rng')
        err = self.assertRaises(exception.InvalidDomainXML,
                                schema.schema_errors, BASE)
        self.assertIn('/nonexistent/domain.rng', str(err))
        self.assertIn('domain_schema', str(err))

    def test_not_a_domain(self):
        err = self.assertRaises(exception.InvalidDomainXML,
                                validate.validate_domain, '<network/>',
                                self.schema)
        self.assertIn('expected a <domain>', str(err))
