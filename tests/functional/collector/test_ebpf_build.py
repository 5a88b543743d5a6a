"""Building the CO-RE objects with the real clang and bpftool."""

import os
import shutil
import subprocess
import sys
import tempfile

import fixtures

from multimodal_virt.collector.bpf import build
from multimodal_virt.collector.bpf import features
from multimodal_virt import exception
from tests import base
from tests.functional import requirements


class TestBuild(base.TestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, features.has_kernel_btf(),
                             'CO-RE build needs %s' % build.VMLINUX_BTF)
        for tool in ('clang', 'bpftool'):
            requirements.require(self, shutil.which(tool) is not None,
                                 '%s is not installed' % tool)
        self.build_dir = self.useFixture(fixtures.TempDir()).path

    def test_builds_every_source_and_caches(self):
        built = build.build_all(self.build_dir)
        self.assertEqual(set(build.sources()), set(built))
        self.assertEqual({'block_io', 'gpu_fence', 'gpu_ioctl', 'kvm_exit',
                          'irq'}, set(built))
        for path in built.values():
            with open(path, 'rb') as handle:
                self.assertEqual(b'\x7fELF', handle.read(4))
        mtime = os.stat(built['irq']).st_mtime_ns
        self.assertEqual(built['irq'], build.object_path('irq',
                                                         self.build_dir))
        self.assertEqual(mtime, os.stat(built['irq']).st_mtime_ns)
        headers = [n for n in os.listdir(self.build_dir)
                   if n.startswith('include-')]
        self.assertEqual(1, len(headers))

    def test_changed_source_rebuilds(self):
        sources = self.useFixture(fixtures.TempDir()).path
        for name in os.listdir(build.SOURCE_DIR):
            if name.endswith(('.bpf.c', '.bpf.h')):
                shutil.copy(os.path.join(build.SOURCE_DIR, name), sources)
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.build.SOURCE_DIR',
            build.pathlib.Path(sources)))
        first = build.object_path('irq', self.build_dir)
        with open(os.path.join(sources, 'irq.bpf.c'), 'a') as handle:
            handle.write('\n/* changed */\n')
        second = build.object_path('irq', self.build_dir)
        self.assertNotEqual(first, second)
        self.assertTrue(os.path.exists(second))

    def test_compile_error_reported(self):
        sources = self.useFixture(fixtures.TempDir()).path
        for name in os.listdir(build.SOURCE_DIR):
            if name.endswith(('.bpf.c', '.bpf.h')):
                shutil.copy(os.path.join(build.SOURCE_DIR, name), sources)
        with open(os.path.join(sources, 'irq.bpf.c'), 'a') as handle:
            handle.write('\nthis is not C;\n')
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.build.SOURCE_DIR',
            build.pathlib.Path(sources)))
        err = self.assertRaises(exception.ProbeError, build.object_path,
                                'irq', self.build_dir)
        self.assertIn('irq.bpf.c', str(err))
        self.assertEqual([], [n for n in os.listdir(self.build_dir)
                              if n.startswith('irq-')])

    def test_unknown_source(self):
        err = self.assertRaises(exception.ProbeError, build.object_path,
                                'nvme', tempfile.gettempdir())
        self.assertIn("'nvme'", str(err))

    def _cli(self, *args):
        return subprocess.run(
            [sys.executable, '-m', 'multimodal_virt.collector.bpf.build',
             '--build-dir', self.build_dir, *args],
            capture_output=True, text=True, check=False)

    def test_command_line(self):
        result = self._cli()
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual(5, len([n for n in os.listdir(self.build_dir)
                                 if n.endswith('.bpf.o')]))
        self.assertIn('block_io: ', result.stdout)

    def test_dump_bpf_loads_nothing(self):
        result = self._cli('--dump-bpf')
        self.assertEqual(0, result.returncode, result.stderr)
        for text in ('probe block_io', 'tp_btf block:block_rq_issue',
                     'tracepoint syscalls:sys_enter_ioctl',
                     'kvm:kvm_userspace_exit (optional)',
                     'map hists max_entries = 64', 'const volatile'):
            self.assertIn(text, result.stdout)
        self.assertEqual([], os.listdir(self.build_dir))
