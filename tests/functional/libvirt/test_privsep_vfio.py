"""vfio rebinding through a real oslo.privsep daemon (fake sysfs tree).

The daemon is started the production way, through ``privsep-helper`` from
the venv (as root, so no sudo); it keeps only CAP_SYS_ADMIN and
CAP_DAC_OVERRIDE, and is pointed at a fake sysfs tree in a temp dir (the
sysfs root is a validated parameter of the privileged functions). The
client runs in a fresh interpreter (see privsep_client.py for why).
"""

import json
import os
import subprocess
import sys

from tests import base
from tests.functional.libvirt import fake_sysfs
from tests.functional import requirements

HELPER = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
CAP_DAC_OVERRIDE = 1
CAP_SYS_ADMIN = 21
VF, OTHER = fake_sysfs.VFS


class PrivsepVfioTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, os.geteuid() == 0,
                             'root, to start the privsep daemon without sudo')
        requirements.require(self, os.access(HELPER, os.X_OK),
                             'privsep-helper in %s (pip oslo.privsep)'
                             % os.path.dirname(HELPER))
        self.sysfs = self.useFixture(fake_sysfs.FakeSysfs())

    def call(self, *calls):
        proc = subprocess.run(
            [sys.executable, '-m', 'tests.functional.libvirt.privsep_client',
             HELPER, json.dumps(calls)],
            cwd=TOP, capture_output=True, text=True, timeout=120)
        self.assertEqual(0, proc.returncode, proc.stderr[-2000:])
        out = json.loads(proc.stdout.splitlines()[-1])
        # A real, separate daemon with only the two capabilities, gone
        # after stop().
        self.assertIsNotNone(out['daemon_pid'])
        self.assertNotEqual(out['client_pid'], out['daemon_pid'])
        self.assertEqual((1 << CAP_SYS_ADMIN) | (1 << CAP_DAC_OVERRIDE),
                         out['daemon_cap_eff'])
        self.assertTrue(out['daemon_exited'])
        return out['results']

    def test_bind_and_restore_in_daemon(self):
        root = self.sysfs.root
        results = self.call(['set_driver', root, VF, 'vfio-pci'])
        self.assertEqual([{'ok': 'nvidia'}], results)
        self.assertEqual('vfio-pci\n', self.sysfs.read(
            'bus/pci/devices', VF, 'driver_override'))
        self.assertEqual(VF, self.sysfs.read('bus/pci/drivers/nvidia/unbind'))
        self.assertEqual(VF, self.sysfs.read('bus/pci/drivers/vfio-pci/bind'))

        self.sysfs.set_driver(VF, 'vfio-pci')  # what the kernel would do
        results = self.call(['clear_driver', root, VF, 'vfio-pci'])
        self.assertEqual([{'ok': 'vfio-pci'}], results)
        self.assertEqual('\n', self.sysfs.read('bus/pci/devices', VF,
                                               'driver_override'))
        self.assertEqual(VF, self.sysfs.read(
            'bus/pci/drivers/vfio-pci/unbind'))
        self.assertEqual(VF, self.sysfs.read('bus/pci/drivers_probe'))

    def test_daemon_revalidates_its_arguments(self):
        root = self.sysfs.root
        # Straight into the entrypoints, skipping any client-side check.
        results = self.call(
            ['set_driver', root, '../../etc/x', 'vfio-pci'],
            ['set_driver', root, VF, 'vfio-pci/../../x'],
            ['set_driver', '/etc', VF, 'vfio-pci'],
            ['set_driver', root + '/.', VF, 'vfio-pci'],
            ['clear_driver', root, '0000:3b:00.7', 'vfio-pci'])
        expected = [('InvalidPciAddress', "'../../etc/x'"),
                    ('VfioBindError', 'driver name'),
                    ('VfioBindError', 'no bus/pci/devices'),
                    ('VfioBindError', 'normalised'),
                    ('VfioBindError', '0000:3b:00.7 not found')]
        self.assertEqual(len(expected), len(results))
        for (error, text), result in zip(expected, results):
            self.assertEqual(error, result.get('error'), result)
            self.assertIn(text, result['message'])
        self.assertEqual('(null)\n', self.sysfs.read(
            'bus/pci/devices', VF, 'driver_override'))
        self.assertEqual('', self.sysfs.read('bus/pci/drivers/vfio-pci/bind'))

    def test_bind_vfio_checks_the_result(self):
        self.sysfs.set_driver(VF, 'vfio-pci')
        results = self.call(['bind_vfio', VF, self.sysfs.root],
                            ['bind_vfio', OTHER, self.sysfs.root])
        # Already on vfio-pci: idempotent success.
        self.assertEqual({'ok': 'vfio-pci'}, results[0])
        # Nothing behind the fake tree moves the link, like a kernel that
        # refused the bind: reported, not assumed.
        self.assertEqual('VfioBindError', results[1]['error'])
        self.assertIn('%s is bound to nvidia after the bind' % OTHER,
                      results[1]['message'])
        self.assertEqual(OTHER, self.sysfs.read(
            'bus/pci/drivers/vfio-pci/bind'))
