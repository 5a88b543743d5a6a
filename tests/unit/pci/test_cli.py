"""``multimodal-virt pci discover|config`` through the real entry point."""

import contextlib
import io
import json

import fixtures
import yaml

from multimodal_virt.cmd import cli
from tests import base
from tests.fixtures import sysfs_builder as layouts


class PciCliTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(layouts.SysfsTree('nvidia-a100')).root

    def _run(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_discover_json(self):
        code, out, _ = self._run('pci', 'discover', '--sysfs-root', self.root)
        self.assertEqual(0, code)
        doc = json.loads(out)
        self.assertEqual(['0000:3b:00.0', '0000:d8:00.0'],
                         [pf['address'] for pf in doc['physical_functions']])
        self.assertEqual([16, 16], [p['count'] for p in doc['pools']])
        self.assertEqual('0000:3b:00.4',
                         doc['physical_functions'][0]['vfs'][0]['address'])

    def test_discover_shows_each_vf_profile(self):
        layout = layouts.load('intel-flex170')
        for pf in layout['pfs']:
            pf.update(driver='xe', sriov_admin=True)
        root = self.useFixture(layouts.SysfsTree(layout)).root
        path = '/'.join([root, 'devices', 'pci0000:00', '0000:4d:00.0',
                         'sriov_admin', 'vf2', 'profile', 'exec_quantum_ms'])
        with open(path, 'w') as handle:
            handle.write('25\n')
        code, out, _ = self._run('pci', 'discover', '--sysfs-root', root)
        self.assertEqual(0, code)
        vfs = {vf['address']: vf['profile'] for pf in json.loads(out)[
            'physical_functions'] for vf in pf['vfs']}
        self.assertEqual(8, len(vfs))
        self.assertEqual({'exec_quantum_ms': '25', 'preempt_timeout_us': '0',
                          'sched_priority': 'low'}, vfs['0000:4d:00.2'])
        self.assertEqual('0', vfs['0000:ca:00.1']['exec_quantum_ms'])
        code, out, _ = self._run('pci', 'discover', '--sysfs-root', root,
                                 '--format', 'text')
        self.assertIn('0000:4d:00.2 exec_quantum_ms=25 preempt_timeout_us=0 '
                      'sched_priority=low', out)
        # Without sriov_admin (nvidia layout): no profile, not an error.
        code, out, _ = self._run('pci', 'discover', '--sysfs-root', self.root)
        self.assertIsNone(json.loads(out)['physical_functions'][0]['vfs'][0][
            'profile'])

    def test_discover_shows_i915_vf_profiles(self):
        layout = layouts.load('intel-flex170')
        for pf in layout['pfs']:
            pf['i915_iov'] = ['gt0', 'gt1']
        root = self.useFixture(layouts.SysfsTree(layout)).root
        for gt in ('gt0', 'gt1'):
            path = '/'.join([root, 'devices', 'pci0000:00', '0000:ca:00.0',
                             'drm', 'card1', 'iov', 'vf3', gt,
                             'preempt_timeout_us'])
            with open(path, 'w') as handle:
                handle.write('40000\n')
        code, out, _ = self._run('pci', 'discover', '--sysfs-root', root)
        self.assertEqual(0, code)
        vfs = {vf['address']: vf['profile'] for pf in json.loads(out)[
            'physical_functions'] for vf in pf['vfs']}
        self.assertEqual({'exec_quantum_ms': '0',
                          'preempt_timeout_us': '40000'}, vfs['0000:ca:00.3'])
        self.assertEqual({'exec_quantum_ms': '0', 'preempt_timeout_us': '0'},
                         vfs['0000:4d:00.3'])
        code, out, _ = self._run('pci', 'discover', '--sysfs-root', root,
                                 '--format', 'text')
        self.assertIn('0000:ca:00.3 exec_quantum_ms=0 '
                      'preempt_timeout_us=40000', out)

    def test_discover_text(self):
        code, out, _ = self._run('pci', 'discover', '--sysfs-root', self.root,
                                 '--format', 'text')
        self.assertEqual(0, code)
        self.assertIn('0000:3b:00.0   10de:20f1 16/16', out)

    def test_config_formats(self):
        code, out, _ = self._run('pci', 'config', '--sysfs-root', self.root,
                                 '--format', 'ini', '--provider-config-'
                                 'location', '/etc/nova/provider_config')
        self.assertEqual(0, code)
        self.assertIn('[pci]\ndevice_spec = {', out)
        self.assertIn('provider_config_location = /etc/nova/provider_config',
                      out)
        code, out, _ = self._run('pci', 'config', '--sysfs-root', self.root,
                                 '--format', 'yaml', '--hostname', 'c7',
                                 '--placement-mode', 'provider_config')
        doc = yaml.safe_load(out)
        self.assertEqual({'name': 'c7'},
                         doc['providers'][0]['identification'])
        # The A100's VFs share the PF's id: pf_address is refused, clearly.
        code, out, err = self._run('pci', 'config', '--sysfs-root',
                                   self.root, '--device-spec-style',
                                   'pf_address')
        self.assertEqual((2, ''), (code, out))
        self.assertIn('share its id 10de:20f1', err)
        root = self.useFixture(layouts.SysfsTree('amd-mi25')).root
        code, out, _ = self._run('pci', 'config', '--sysfs-root', root,
                                 '--device-spec-style', 'pf_address')
        self.assertEqual(0, code)
        self.assertTrue(all(s['address'].endswith('.0') for s in json.loads(
            out)['pci']['device_spec']))

    def test_config_file_sets_sysfs_root(self):
        path = self.useFixture(fixtures.TempDir()).path + '/m.conf'
        with open(path, 'w') as handle:
            handle.write('[multimodal_virt_pci]\nsysfs_root = %s\n'
                         'alias_name_format = gpu-{product_id}\n' % self.root)
        code, out, _ = self._run('--config-file', path, 'pci', 'config')
        self.assertEqual(0, code)
        self.assertEqual('gpu-20f1',
                         json.loads(out)['pci']['alias'][0]['name'])

    def test_error_is_reported_not_raised(self):
        code, _, err = self._run('pci', 'discover', '--sysfs-root',
                                 '/nonexistent-mmv')
        self.assertEqual(2, code)
        self.assertIn('error: cannot list PCI devices in /nonexistent-mmv',
                      err)
