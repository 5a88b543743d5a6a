"""I/O tuning plans and their XML (pure lxml)."""

from lxml import etree

from multimodal_virt import exception
from multimodal_virt.libvirt_xml import iotune
from tests import base

DOMAIN = """<domain type='kvm'>
  <name>t</name><memory>65536</memory><vcpu>4</vcpu>
  <os><type>hvm</type></os>
  <cputune><vcpupin vcpu='0' cpuset='0'/></cputune>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='writeback'/>
      <source file='/var/lib/a.img'/><target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/var/lib/b.img'/><target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/var/lib/c.iso'/><target dev='sda' bus='sata'/>
    </disk>
  </devices>
</domain>"""


class IOTuneTestCase(base.TestCase):

    def test_plan_round_robin_and_defaults(self):
        plan = iotune.plan_tuning(iothreads=2, disks=['vda', 'vdb', {
            'target': 'vdc', 'iothread': 2, 'queues': 8, 'io': 'io_uring'}],
            queues=4, pinning={2: [4, 5, 6, 9], 1: '2-3'})
        self.assertEqual(
            [('vda', 1, 4, 'native'), ('vdb', 2, 4, 'native'),
             ('vdc', 2, 8, 'io_uring')],
            [(d.target, d.iothread, d.queues, d.io) for d in plan.disks])
        self.assertEqual(((1, '2-3'), (2, '4-6,9')), plan.pinning)

    def test_cpuset_text(self):
        for value, want in (([0], '0'), ([3, 1, 2], '1-3'),
                            ((0, 2, 4, 5), '0,2,4-5'), ('0-3,^2', '0-3,^2')):
            self.assertEqual(want, iotune.cpuset_text(value))
        for bad in ('a-b', '', [], [-1], ['1'], 5, [True]):
            self.assertRaises(exception.InvalidDomainXML,
                              iotune.cpuset_text, bad)

    def test_apply(self):
        plan = iotune.plan_tuning(iothreads=2, disks=['vda', 'vdb'],
                                  queues=4, pinning={1: [2], 2: [3]})
        root = iotune.apply_tuning(DOMAIN, plan)
        self.assertEqual('2', root.findtext('iothreads'))
        self.assertEqual(['1', '2'], [e.get('id') for e in
                                      root.iterfind('iothreadids/iothread')])
        self.assertEqual([('1', '2'), ('2', '3')],
                         [(p.get('iothread'), p.get('cpuset')) for p in
                          root.iterfind('cputune/iothreadpin')])
        self.assertEqual(1, len(root.findall('cputune/vcpupin')))
        vda, vdb = root.findall('devices/disk/driver')
        self.assertEqual({'name': 'qemu', 'type': 'raw', 'cache': 'none',
                          'io': 'native', 'iothread': '1', 'queues': '4'},
                         dict(vda.attrib))
        self.assertEqual({'name': 'qemu', 'cache': 'none', 'io': 'native',
                          'iothread': '2', 'queues': '4'}, dict(vdb.attrib))
        # Applying again replaces instead of duplicating.
        again = iotune.apply_tuning(root, iotune.plan_tuning(
            iothreads=1, disks=['vda'], pinning={1: '0-1'}))
        self.assertEqual(1, len(again.findall('iothreads')))
        self.assertEqual(['1'], [e.get('id') for e in
                                 again.iterfind('iothreadids/iothread')])
        # iothread 2 is gone, so is its pin (it would dangle).
        self.assertEqual([('1', '0-1')],
                         [(p.get('iothread'), p.get('cpuset')) for p in
                          again.iterfind('cputune/iothreadpin')])
        # The input element is copied, never changed.
        self.assertEqual('2', root.findtext('iothreads'))
        self.assertEqual(2, len(root.findall('cputune/iothreadpin')))

    def test_tuning_xml(self):
        parts = iotune.tuning_xml(iothreads=1, disks=['vda'], queues=2,
                                  pinning={1: [1]})
        self.assertEqual('<iothreads>1</iothreads>', etree.tostring(
            parts['iothreads'], encoding='unicode'))
        self.assertEqual('<iothreadids><iothread id="1"/></iothreadids>',
                         etree.tostring(parts['iothreadids'],
                                        encoding='unicode'))
        self.assertEqual(
            '<cputune><iothreadpin iothread="1" cpuset="1"/></cputune>',
            etree.tostring(parts['cputune'], encoding='unicode'))
        self.assertEqual({'io': 'native', 'cache': 'none', 'iothread': '1',
                          'queues': '2'},
                         dict(parts['disk_drivers']['vda'].attrib))
        none = iotune.tuning_xml(disks=['vda'])
        self.assertIsNone(none['iothreads'])
        self.assertIsNone(none['cputune'])

    def test_bad_plans(self):
        cases = [
            ({'iothreads': -1}, 'iothreads must be'),
            ({'iothreads': True}, 'iothreads must be'),
            ({'iothreads': 1, 'disks': 'vda'}, 'got the string'),
            ({'iothreads': 1, 'disks': ['VDA!']}, "target 'VDA!'"),
            ({'iothreads': 1, 'disks': ['vda', 'vda']}, 'listed twice'),
            ({'iothreads': 1, 'disks': [{'target': 'vda', 'iothread': 2}]},
             'uses iothread 2 but only 1'),
            ({'disks': [{'target': 'vda', 'bogus': 1}]}, 'bogus'),
            ({'disks': [42]}, 'expected a target name'),
            ({'disks': ['vda'], 'io': 'aio'}, "io='aio'"),
            ({'iothreads': 1, 'disks': ['vda'], 'queues': 0}, 'queues'),
            ({'iothreads': 1, 'pinning': {2: '1'}}, 'names iothread 2'),
            ({'iothreads': 1, 'pinning': {0: '1'}}, 'pinned iothread id'),
            ({'iothreads': 0, 'poll_max_ns': 100}, 'needs iothreads'),
            ({'iothreads': 1, 'poll_max_ns': -1}, 'poll_max_ns must be'),
        ]
        for kwargs, text in cases:
            err = self.assertRaises(exception.InvalidDomainXML,
                                    iotune.plan_tuning, **kwargs)
            self.assertIn(text, str(err), kwargs)

    def test_bad_applies(self):
        cases = [
            (DOMAIN, iotune.plan_tuning(disks=['vdz']), 'dev=\'vdz\''),
            (DOMAIN, iotune.plan_tuning(iothreads=1, disks=['sda']),
             "bus='virtio'"),
            ('<devices/>', iotune.plan_tuning(), 'expected a <domain>'),
            ('<domain', iotune.plan_tuning(), 'not well-formed'),
            (DOMAIN, {'iothreads': 1}, 'must be an IOTuning'),
            (DOMAIN, iotune.plan_tuning(iothreads=1, poll_max_ns=1000),
             'iothread polling'),
        ]
        for domain, plan, text in cases:
            err = self.assertRaises(exception.InvalidDomainXML,
                                    iotune.apply_tuning, domain, plan)
            self.assertIn(text, str(err))
