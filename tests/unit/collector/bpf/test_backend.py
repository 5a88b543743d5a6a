"""Backend selection by probing (no BPF needed)."""

import os

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
        loader = backend.get_backend(self.conf.multimodal_virt_probes,
                                     FakeHost())
        self.assertEqual('bcc', loader.name)
        self.flags('multimodal_virt_probes', backend='auto')
        loader = backend.get_backend(self.conf.multimodal_virt_probes,
                                     FakeHost())
        self.assertEqual('libbpf', loader.name)

    def _host_with_btf_and_libbpf(self):
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.features.has_kernel_btf',
            lambda: True))
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.libbpf.library', lambda: None))
        return self.useFixture(fixtures.TempDir()).path

    def test_host_probe_reports_missing_clang(self):
        empty = self._host_with_btf_and_libbpf()
        self.flags('multimodal_virt_probes', clang='/nonexistent/clang',
                   bpf_build_dir=empty)
        reason = backend.HostProbe(self.conf.multimodal_virt_probes).libbpf()
        self.assertIn('/nonexistent/clang is not installed', reason)
        self.assertIn('--build-bpf', reason)

    def test_prebuilt_objects_need_no_compiler(self):
        built = self._host_with_btf_and_libbpf()
        for name in build.sources():
            open(os.path.join(built, '%s-%s.bpf.o'
                              % (name, build.object_key(name))), 'w').close()
        self.flags('multimodal_virt_probes', clang='/nonexistent/clang',
                   bpftool='/nonexistent/bpftool', bpf_build_dir=built)
        self.assertIsNone(
            backend.HostProbe(self.conf.multimodal_virt_probes).libbpf())
