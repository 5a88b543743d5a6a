"""Flavor tuning specs: parsing and application to a Nova-shaped domain."""

from lxml import etree

from multimodal_virt.compute import errors
from multimodal_virt.compute import guest_tuning
from multimodal_virt.compute import specs
from multimodal_virt import exception
from multimodal_virt.libvirt_xml import validate
from tests import base

DOMAIN = """<domain type="kvm">
  <name>instance-1</name><memory>65536</memory><vcpu>2</vcpu>
  <iothreads>1</iothreads>
  <os><type arch="x86_64" machine="pc">hvm</type></os>
  %(cputune)s
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="raw" cache="%(cache)s"/>
      <source file="/var/lib/nova/instances/x/disk"/>
      <target dev="vda" bus="%(bus)s"/>
    </disk>
    <disk type="file" device="cdrom">
      <driver name="qemu" type="raw"/>
      <source file="/var/lib/nova/instances/x/disk.config"/>
      <target dev="hda" bus="ide"/>
    </disk>
  </devices>
</domain>"""


def _domain(cache='none', bus='virtio', cputune=''):
    return DOMAIN % {'cache': cache, 'bus': bus, 'cputune': cputune}


class FakeHost:
    def __init__(self, ok):
        self.ok = ok

    def has_min_version(self, lv_ver=None, hv_ver=None):
        return self.ok


class SpecsTest(base.TestCase):

    def test_parse_and_bounds(self):
        self.assertFalse(specs.guest_tuning({'hw:cpu_policy': 'dedicated'}))
        tuning = specs.guest_tuning({specs.DISK_IOTHREADS: '2',
                                     specs.DISK_IO: 'io_uring'})
        self.assertEqual((2, 'io_uring', None),
                         (tuning.iothreads, tuning.io, tuning.queues))
        for key, bad in ((specs.DISK_IOTHREADS, '0'),
                         (specs.DISK_IOTHREADS, '33'),
                         (specs.DISK_QUEUES, 'x'),
                         (specs.DISK_IO, 'fast'),
                         (specs.GPU_SCHED_PRIORITY, 'urgent'),
                         (specs.GPU_EXEC_QUANTUM_MS, '-1')):
            err = self.assertRaises(exception.InvalidExtraSpec,
                                    specs.guest_tuning if 'disk' in key
                                    else specs.gpu_profile, {key: bad})
            self.assertIn(key, str(err))

    def test_gpu_profile_attributes(self):
        profile = specs.gpu_profile({specs.GPU_SCHED_PRIORITY: 'high',
                                     specs.GPU_PREEMPT_TIMEOUT_US: '500'})
        self.assertEqual({'sched_priority': 'high',
                          'preempt_timeout_us': '500'},
                         profile.attributes())


class TuneTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.schema = validate.DomainSchema()

    def test_no_tuning_returns_the_same_text(self):
        xml = _domain()
        self.assertIs(xml, guest_tuning.tune(xml, specs.GuestTuning(),
                                             self.schema))

    def test_disks_only_cdrom_untouched(self):
        root = etree.fromstring(guest_tuning.tune(
            _domain(), specs.GuestTuning(2, 'native', 4),
            self.schema).encode())
        self.assertEqual('2', root.findtext('iothreads'))
        vda, cdrom = root.iterfind('devices/disk')
        self.assertEqual({'io': 'native', 'iothread': '1', 'queues': '4',
                          'cache': 'none'},
                         {k: vda.find('driver').get(k) for k in
                          ('io', 'iothread', 'queues', 'cache')})
        self.assertIsNone(cdrom.find('driver').get('io'))

    def test_iothreads_follow_the_emulator_pin(self):
        root = etree.fromstring(guest_tuning.tune(
            _domain(cputune='<cputune><emulatorpin cpuset="6-7"/></cputune>'),
            specs.GuestTuning(iothreads=2), self.schema).encode())
        self.assertEqual([('1', '6-7'), ('2', '6-7')],
                         [(p.get('iothread'), p.get('cpuset')) for p in
                          root.iterfind('cputune/iothreadpin')])

    def test_unhonourable_specs_name_disk_and_reason(self):
        cases = (
            (_domain(cache='writeback'), specs.GuestTuning(io='native'),
             "cache='writeback'"),
            (_domain(bus='sata'), specs.GuestTuning(iothreads=1),
             "bus 'sata'"),
            (_domain(bus='sata'), specs.GuestTuning(queues=2),
             "bus 'sata'"),
            (_domain().replace('type="file" device="disk"',
                               'type="network" device="disk"'),
             specs.GuestTuning(io='native'), "type 'network'"),
        )
        for xml, tuning, reason in cases:
            err = self.assertRaises(errors.UnsupportedFlavorSpec,
                                    guest_tuning.tune, xml, tuning,
                                    self.schema)
            self.assertIn(reason, str(err))
            self.assertIn('disk vda', str(err))

    def test_io_uring_needs_a_recent_hypervisor(self):
        tuning = specs.GuestTuning(io='io_uring')
        guest_tuning.check_host(tuning, FakeHost(True))
        err = self.assertRaises(errors.UnsupportedFlavorSpec,
                                guest_tuning.check_host, tuning,
                                FakeHost(False))
        self.assertIn('libvirt >= 6.3.0 and QEMU >= 5.0.0', str(err))
