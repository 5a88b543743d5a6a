"""GPU VF profile writes through a real oslo.privsep daemon (fake sysfs).

The daemon is started the production way, through ``privsep-helper`` from
the venv (as root, so no sudo), with the same config file as the client (as
nova-compute passes nova.conf): it takes the sysfs root and Nova's
``[pci] device_spec`` from there and keeps only CAP_DAC_OVERRIDE. The
client runs in a fresh interpreter (see privsep_client.py for why).
"""

import json
import os
import subprocess
import sys

import fixtures

from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import sriov_profile
from tests import base
from tests.fixtures import sysfs_builder as layouts
from tests.functional.compute import test_gpu_profiles
from tests.functional import requirements

HELPER = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
CAP_DAC_OVERRIDE = 1
VF = '0000:4d:00.2'
# device_spec covers the first card only.
SPEC = ('{"vendor_id": "8086", "product_id": "56c0", "address": '
        '{"domain": "0000", "bus": "4d", "slot": "00", "function": "[1-4]"}}')


class PrivsepDaemonTest(base.TestCase):

    LAYOUT = test_gpu_profiles.flex170('xe')
    EXTRA_CONFIG = ''

    def setUp(self):
        super().setUp()
        requirements.require(self, os.geteuid() == 0,
                             'root, to start the privsep daemon without sudo')
        requirements.require(self, os.access(HELPER, os.X_OK),
                             'privsep-helper in %s (pip oslo.privsep)'
                             % os.path.dirname(HELPER))
        self.tree = self.useFixture(layouts.SysfsTree(self.LAYOUT)).root
        self.config = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'nova.conf')
        with open(self.config, 'w') as handle:
            handle.write('[multimodal_virt_pci]\nsysfs_root = %s\n'
                         '[pci]\ndevice_spec = %s\n%s'
                         % (self.tree, SPEC, self.EXTRA_CONFIG))
        self.profiles = sriov_profile.SysfsProfiles(self.tree)

    def call(self, *calls):
        proc = subprocess.run(
            [sys.executable, '-m', 'tests.functional.compute.privsep_client',
             HELPER, self.config, json.dumps(calls)],
            cwd=TOP, capture_output=True, text=True, timeout=180)
        self.assertEqual(0, proc.returncode, proc.stderr[-2000:])
        out = json.loads(proc.stdout.splitlines()[-1])
        self.assertIsNotNone(out['daemon_pid'])
        self.assertNotEqual(out['client_pid'], out['daemon_pid'])
        self.assertEqual(1 << CAP_DAC_OVERRIDE, out['daemon_cap_eff'])
        self.assertTrue(out['daemon_exited'])
        return out['results']

    def test_daemon_writes_and_revalidates(self):
        results = self.call(
            ['write_vf_profile', VF, {'sched_priority': 'high',
                                      'exec_quantum_ms': '30'}],
            # Straight into the entry point, skipping any client check.
            ['write_vf_profile', '0000:ca:00.2', {'exec_quantum_ms': '1'}],
            ['write_vf_profile', '0000:4d:00.0', {'exec_quantum_ms': '1'}],
            ['write_vf_profile', VF, {'../profile/x': '1'}],
            ['write_vf_profile', VF, {'exec_quantum_ms': '-1'}],
            ['write_vf_profile', VF, {'sched_priority': 'urgent'}],
            ['write_vf_profile', '../../etc', {'exec_quantum_ms': '1'}])
        self.assertEqual({'ok': {'sched_priority': 'high',
                                 'exec_quantum_ms': '30'}}, results[0])
        errors = [(r.get('error'), r.get('message', '')) for r in results[1:]]
        self.assertIn('not matched by nova.conf [pci] device_spec',
                      errors[0][1])
        self.assertIn('is not an SR-IOV VF', errors[1][1])
        self.assertIn('unknown profile attribute', errors[2][1])
        self.assertIn('gpu_exec_quantum_ms', errors[3][1])
        self.assertIn('gpu_sched_priority', errors[4][1])
        self.assertEqual('InvalidPciAddress', errors[5][0])
        self.assertEqual({'exec_quantum_ms': '30', 'preempt_timeout_us': '0',
                          'sched_priority': 'high'},
                         self.profiles.read(pci_address.PciAddress.parse(VF)))
        other = pci_address.PciAddress.parse('0000:ca:00.2')
        self.assertEqual('0', self.profiles.read(other)['exec_quantum_ms'])


class I915PrivsepDaemonTest(PrivsepDaemonTest):
    """The i915 SR-IOV layout through the same daemon: the defaults it
    restores come from its own config file."""

    LAYOUT = test_gpu_profiles.flex170('i915', ('gt0', 'gt1'))
    EXTRA_CONFIG = ('[multimodal_virt_compute]\n'
                    'gpu_default_exec_quantum_ms = 3\n')

    def test_daemon_writes_and_revalidates(self):
        results = self.call(
            ['write_vf_profile', VF, {'exec_quantum_ms': '30',
                                      'preempt_timeout_us': '9000'}],
            ['write_vf_profile', VF, {'sched_priority': 'high'}],
            ['write_vf_profile', '0000:ca:00.2', {'exec_quantum_ms': '1'}])
        self.assertEqual({'ok': {'exec_quantum_ms': '30',
                                 'preempt_timeout_us': '9000'}}, results[0])
        self.assertIn('i915 has no sched_priority', results[1]['message'])
        self.assertIn('not matched by nova.conf [pci] device_spec',
                      results[2]['message'])
        vf = pci_address.PciAddress.parse(VF)
        self.assertEqual({'exec_quantum_ms': '30',
                          'preempt_timeout_us': '9000'},
                         self.profiles.read(vf))

        results = self.call(['restore_vf_profile', VF],
                            ['restore_vf_profile', '0000:4d:00.0'])
        self.assertEqual({'ok': {'exec_quantum_ms': '3',
                                 'preempt_timeout_us': '0'}}, results[0])
        self.assertIn('is not an SR-IOV VF', results[1]['message'])
        self.assertEqual({'exec_quantum_ms': '3',
                          'preempt_timeout_us': '0'}, self.profiles.read(vf))
