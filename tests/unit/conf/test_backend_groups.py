"""Each eBPF backend owns its option group; moved options keep working."""

import fixtures
from oslo_config import cfg
import testtools

from multimodal_virt import conf as mmv_conf
from multimodal_virt.conf import bcc
from multimodal_virt.conf import libbpf
from multimodal_virt.conf import opts
from multimodal_virt.conf import probes

MOVED = {'bpf_build_dir': '/srv/bpf', 'clang': '/opt/llvm/bin/clang',
         'bpftool': '/usr/sbin/bpftool', 'max_gpu_devices': '8'}


class BackendGroupsTest(testtools.TestCase):

    def _conf(self, text):
        path = self.useFixture(fixtures.TempDir()).join('mmv.conf')
        with open(path, 'w') as handle:
            handle.write(text)
        conf = cfg.ConfigOpts()
        mmv_conf.register_opts(conf)
        conf([], default_config_files=[path])
        return conf

    def test_each_backend_has_its_group_in_the_generator(self):
        groups = {group.name: [o.name for o in options]
                  for group, options in opts.list_opts()}
        self.assertEqual(['bpf_build_dir', 'clang', 'bpftool',
                          'max_gpu_devices'],
                         groups['multimodal_virt_libbpf'])
        self.assertEqual(['python_path'], groups['multimodal_virt_bcc'])
        self.assertFalse(set(MOVED) & set(groups['multimodal_virt_probes']))
        self.assertIn('backend', groups['multimodal_virt_probes'])

    def test_help_says_possible_values_and_related_options(self):
        for module in (libbpf, bcc):
            for _group, options in module.list_opts():
                for opt in options:
                    self.assertIn('Possible values', opt.help, opt.name)
                    self.assertIn('Related options', opt.help, opt.name)

    def test_moved_options_are_read_from_the_old_group(self):
        old = self._conf('[multimodal_virt_probes]\n' + ''.join(
            '%s = %s\n' % item for item in MOVED.items()))
        new = self._conf('[multimodal_virt_libbpf]\n' + ''.join(
            '%s = %s\n' % item for item in MOVED.items()))
        for conf in (old, new):
            group = conf.multimodal_virt_libbpf
            self.assertEqual('/srv/bpf', group.bpf_build_dir)
            self.assertEqual('/opt/llvm/bin/clang', group.clang)
            self.assertEqual('/usr/sbin/bpftool', group.bpftool)
            self.assertEqual(8, group.max_gpu_devices)

    def test_bcc_python_path(self):
        conf = self._conf('')
        self.assertEqual(['/usr/lib/python3/dist-packages'],
                         conf.multimodal_virt_bcc.python_path)
        conf = self._conf('[multimodal_virt_bcc]\npython_path = '
                          '/usr/lib/python3.12/site-packages,/opt/bcc\n')
        self.assertEqual(['/usr/lib/python3.12/site-packages', '/opt/bcc'],
                         conf.multimodal_virt_bcc.python_path)

    def test_probe_group_keeps_the_choice(self):
        self.assertIn('backend', [o.name for o in probes.OPTS])
