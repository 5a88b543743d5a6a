"""Backend selection by probing (no BPF needed)."""

import os
import sys

import fixtures

from multimodal_virt.collector.bpf import backend
from multimodal_virt.collector.bpf import build
from multimodal_virt import exception
from tests import base


class FakeHost(object):

    def __init__(self, libbpf=None, bcc=None):
        self._libbpf = libbpf
        self._bcc = bcc
        self.asked = []

    def libbpf(self):
        self.asked.append('libbpf')
        return self._libbpf

    def bcc(self):
        self.asked.append('bcc')
        return self._bcc


class TestSelect(base.TestCase):

    def test_auto_prefers_libbpf(self):
        host = FakeHost()
        self.assertEqual('libbpf', backend.select('auto', host))
        self.assertEqual(['libbpf'], host.asked)

    def test_auto_falls_back_to_bcc_without_btf(self):
        host = FakeHost(libbpf='kernel has no BTF')
        self.assertEqual('bcc', backend.select('auto', host))
        self.assertEqual(['libbpf', 'bcc'], host.asked)

    def test_auto_nothing_usable_names_every_reason(self):
        host = FakeHost(libbpf='kernel has no BTF', bcc='no headers')
        err = self.assertRaises(exception.BPFUnavailable, backend.select,
                                'auto', host)
        self.assertIn('libbpf: kernel has no BTF', str(err))
        self.assertIn('bcc: no headers', str(err))

    def test_override_bcc_even_when_libbpf_works(self):
        host = FakeHost()
        self.assertEqual('bcc', backend.select('bcc', host))
        self.assertEqual(['bcc'], host.asked)

    def test_override_unusable_is_an_error_not_a_fallback(self):
        host = FakeHost(libbpf='clang is not installed')
        err = self.assertRaises(exception.BPFUnavailable, backend.select,
                                'libbpf', host)
        self.assertIn('clang is not installed', str(err))
        self.assertEqual(['libbpf'], host.asked)

    def test_unknown_choice(self):
        err = self.assertRaises(exception.BPFUnavailable, backend.select,
                                'ebpf', FakeHost())
        self.assertIn("'ebpf'", str(err))

    def test_get_backend_uses_config(self):
        self.flags('multimodal_virt_probes', backend='bcc')
        loader = backend.get_backend(self.conf, FakeHost())
        self.assertEqual('bcc', loader.name)
        # Each backend receives its own option group, nothing else.
        self.assertEqual(['/usr/lib/python3/dist-packages'],
                         loader.group.python_path)
        self.assertRaises(Exception, getattr, loader.group, 'bpf_build_dir')
        self.flags('multimodal_virt_probes', backend='auto')
        loader = backend.get_backend(self.conf, FakeHost())
        self.assertEqual('libbpf', loader.name)
        self.assertEqual('clang', loader.group.clang)
        self.assertRaises(Exception, getattr, loader.group, 'python_path')

    def _host_with_btf_and_libbpf(self):
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.features.has_kernel_btf',
            lambda: True))
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.libbpf.library', lambda: None))
        return self.useFixture(fixtures.TempDir()).path

    def test_host_probe_reports_missing_clang(self):
        empty = self._host_with_btf_and_libbpf()
        self.flags('multimodal_virt_libbpf', clang='/nonexistent/clang',
                   bpf_build_dir=empty)
        reason = backend.HostProbe(self.conf).libbpf()
        self.assertIn('/nonexistent/clang is not installed', reason)
        self.assertIn('--build-bpf', reason)

    def test_prebuilt_objects_need_no_compiler(self):
        built = self._host_with_btf_and_libbpf()
        for name in build.sources():
            open(os.path.join(built, '%s-%s.bpf.o'
                              % (name, build.object_key(name))), 'w').close()
        self.flags('multimodal_virt_libbpf', clang='/nonexistent/clang',
                   bpftool='/nonexistent/bpftool', bpf_build_dir=built)
        self.assertIsNone(backend.HostProbe(self.conf).libbpf())


class BccPythonPathTest(base.TestCase):
    """bcc's module is searched in [multimodal_virt_bcc] python_path."""

    def setUp(self):
        super().setUp()
        from multimodal_virt.collector.bpf import bcc_backend
        self.bcc_backend = bcc_backend
        self.path = list(sys.path)
        self.useFixture(fixtures.MonkeyPatch('sys.path', self.path))
        self.imports = []

        def import_module(name):
            self.imports.append(list(sys.path))
            if '/opt/bcc-here' not in sys.path:
                raise ImportError('No module named %r' % name)
            return 'bcc-module'
        self.useFixture(fixtures.MonkeyPatch(
            'importlib.import_module', import_module))

    def test_directories_are_added_only_when_needed(self):
        got = self.bcc_backend.import_bcc(['/nonexistent', '/opt/bcc-here'])
        self.assertEqual('bcc-module', got)
        self.assertEqual(2, len(self.imports))
        self.assertNotIn('/opt/bcc-here', self.imports[0])
        self.assertEqual(['/nonexistent', '/opt/bcc-here'], sys.path[-2:])

    def test_not_found_names_the_package(self):
        err = self.assertRaises(exception.BPFUnavailable,
                                self.bcc_backend.import_bcc, ['/nowhere'])
        self.assertIn('python3-bpfcc', str(err))

    def test_host_probe_passes_the_option(self):
        self.flags('multimodal_virt_bcc', python_path=['/opt/bcc-here'])
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.features.kernel_headers_dir',
            lambda: '/lib/modules/x/build'))
        self.assertIsNone(backend.HostProbe(self.conf).bcc())
        self.assertIn('/opt/bcc-here', sys.path)
