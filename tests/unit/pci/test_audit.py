"""``pci audit``: the per-VF drift report (logic and command)."""

import contextlib
import io
import json
import os

import fixtures

from multimodal_virt.cmd import cli
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import audit
from multimodal_virt.pci import device
from tests import base
from tests.fixtures import sysfs_builder as layouts

A = pci_address.PciAddress.parse
NOVA_META = ("<metadata><nova:instance xmlns:nova='http://openstack.org/"
             "xmlns/libvirt/nova/1.1'/></metadata>")


def _domain_xml(name, vfs, nova=True):
    hostdevs = ''.join(
        "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0x%04x' bus='0x%02x' slot='0x%02x' "
        "function='0x%x'/></source></hostdev>"
        % (a.domain, a.bus, a.slot, a.function) for a in vfs)
    return ("<domain type='kvm'><name>%s</name>%s<devices>%s</devices>"
            "</domain>" % (name, NOVA_META if nova else '', hostdevs))


def _pf(driver_of):
    pf = A('0000:3b:00.0')
    vfs = tuple(device.VirtualFunction(
        address=A('0000:3b:00.%d' % fn), parent=pf, index=fn - 4,
        vendor_id='10de', product_id='20b5', driver=driver_of.get(fn))
        for fn in (4, 5, 6, 7))
    return device.PhysicalFunction(address=pf, vendor_id='10de',
                                   product_id='20b5', class_code=0x030200,
                                   total_vfs=4, num_vfs=4, vfs=vfs)


class AuditLogicTest(base.TestCase):

    def test_each_kind_of_drift(self):
        pf = _pf({4: 'vfio-pci', 5: 'nvidia', 6: 'vfio-pci', 7: 'nvidia'})
        domains = [
            audit.parse_domain('instance-1', 'u1', True,
                               _domain_xml('instance-1', [A('3b:00.4')])),
            audit.parse_domain('rogue', 'u2', True,
                               _domain_xml('rogue', [A('3b:00.5')], False)),
            audit.parse_domain('instance-2', 'u3', False,
                               _domain_xml('instance-2', [A('3b:00.7')])),
        ]
        reports = {r.address: r for r in audit.audit(
            [pf], domains, lambda pf, vf: vf.address != A('3b:00.7'))}
        self.assertEqual((), reports['0000:3b:00.4'].problems)
        self.assertEqual(
            ('held by domain rogue, which Nova did not create',
             'running domain rogue holds it but its driver is nvidia'),
            reports['0000:3b:00.5'].problems)
        self.assertEqual(('on vfio-pci but no running domain holds it',),
                         reports['0000:3b:00.6'].problems)
        self.assertEqual(('held by Nova domain instance-2 but not in [pci] '
                          'device_spec',), reports['0000:3b:00.7'].problems)

    def test_nova_whitelist_decides_coverage(self):
        matcher = audit.nova_device_spec_matcher([json.dumps(
            {'vendor_id': '10de', 'product_id': '20b5',
             'address': {'domain': '0000', 'bus': '3b', 'slot': '00',
                         'function': '[45]'}})])
        pf = _pf({})
        self.assertEqual([True, True, False, False],
                         [matcher(pf, vf) for vf in pf.vfs])


class AuditCommandTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(layouts.SysfsTree('nvidia-a100')).root
        tmp = self.useFixture(fixtures.TempDir()).path
        self.nova_conf = os.path.join(tmp, 'nova.conf')
        with open(self.nova_conf, 'w') as handle:
            handle.write('[pci]\ndevice_spec = {"vendor_id": "10de", '
                         '"product_id": "20f1"}\n')
        self.useFixture(fixtures.MockPatchObject(
            cli, 'SUBCOMMAND_MODULES', ('pci',)))

    def _run(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(['pci', 'audit', '--sysfs-root', self.root,
                             '--nova-config', self.nova_conf,
                             '--connection-uri', 'test:///default']
                            + list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_json_report_covers_every_vf(self):
        code, out, err = self._run('--format', 'json')
        self.assertEqual(0, code, err)
        vfs = json.loads(out)['vfs']
        # 2 GPUs x 16 VFs (the NIC's VFs are not of a GPU class).
        self.assertEqual(32, len(vfs))
        self.assertEqual({'10de'}, {v['vendor_id'] for v in vfs})
        self.assertTrue(all(v['in_device_spec'] for v in vfs))
        self.assertEqual([], [v for v in vfs if v['problems']])

    def test_bad_device_spec_is_a_clear_error(self):
        with open(self.nova_conf, 'w') as handle:
            handle.write('[pci]\ndevice_spec = {"vendor_id": "xyz"}\n')
        code, out, err = self._run()
        self.assertEqual(2, code)
        self.assertIn('[pci] device_spec is invalid', err)
