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
                          'irq', 'gpu_sched'}, set(built))
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

    def _cli(self, *args, group='multimodal_virt_libbpf'):
        config = os.path.join(self.build_dir, '..', 'build.conf')
        with open(config, 'w') as handle:
            handle.write('[%s]\nbpf_build_dir = %s\n'
                         % (group, self.build_dir))
        binary = os.path.join(os.path.dirname(sys.executable),
                              'multimodal-virt-collector')
        return subprocess.run([binary, '--config-file', config, *args],
                              capture_output=True, text=True, check=False)

    def test_build_bpf_command_line(self):
        result = self._cli('--build-bpf')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual(6, len([n for n in os.listdir(self.build_dir)
                                 if n.endswith('.bpf.o')]))
        self.assertIn('block_io: ', result.stdout)
        self.assertEqual(0o700, os.stat(self.build_dir).st_mode & 0o777)
        self.assertTrue(build.prebuilt(self.build_dir))

    def test_build_dir_in_the_deprecated_group_is_still_read(self):
        # Config files written before the backends owned their options.
        result = self._cli('--build-bpf', group='multimodal_virt_probes')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('block_io: %s/' % self.build_dir, result.stdout)
        self.assertIn('multimodal_virt_probes', result.stderr)  # deprecation


class TestBuildDirTrust(base.TestCase):
    """A root collector must never load what someone else could write."""

    def setUp(self):
        super().setUp()
        requirements.require(self, os.geteuid() == 0,
                             'planting files owned by another user needs '
                             'root')
        requirements.require(self, features.has_kernel_btf(),
                             'CO-RE build needs %s' % build.VMLINUX_BTF)
        self.root = self.useFixture(fixtures.TempDir()).path
        self.build_dir = os.path.join(self.root, 'bpf')
        build.build_all(self.build_dir)

    def _irq_object(self):
        return build.object_path('irq', self.build_dir)

    def test_new_directory_is_private(self):
        self.assertEqual(0o700, os.stat(self.build_dir).st_mode & 0o777)

    def test_world_writable_directory_refused(self):
        os.chmod(self.build_dir, 0o777)
        err = self.assertRaises(exception.ProbeError, self._irq_object)
        self.assertIn('writable by group or others', str(err))

    def test_directory_of_another_user_refused(self):
        os.chown(self.build_dir, 65534, 65534)
        err = self.assertRaises(exception.ProbeError, self._irq_object)
        self.assertIn('owned by uid 65534', str(err))

    def test_readable_directory_of_ours_is_tightened(self):
        os.chmod(self.build_dir, 0o755)
        self._irq_object()
        self.assertEqual(0o700, os.stat(self.build_dir).st_mode & 0o777)

    def test_planted_object_refused_and_not_loaded(self):
        """A forged object in place of irq's, owned by another user: the
        probe refuses it and loads nothing."""
        from multimodal_virt.collector.probes import irq
        target = self._irq_object()
        os.unlink(target)
        shutil.copy(build.object_path('block_io', self.build_dir), target)
        os.chown(target, 65534, 65534)
        conf = self.conf
        self.flags('multimodal_virt_libbpf', bpf_build_dir=self.build_dir)
        self.flags('multimodal_virt_probes', backend='libbpf')
        probe = irq.IrqProbe(conf)
        self.addCleanup(probe.stop)
        err = self.assertRaises(exception.ProbeError, probe.start)
        self.assertIn('owned by uid 65534', str(err))
        self.assertIsNone(probe.loaded)

    def test_group_writable_object_refused(self):
        target = self._irq_object()
        os.chmod(target, 0o664)
        err = self.assertRaises(exception.ProbeError, self._irq_object)
        self.assertIn('mode 0664', str(err))

    def test_symlinked_object_refused(self):
        target = self._irq_object()
        os.unlink(target)
        os.symlink(build.object_path('block_io', self.build_dir), target)
        err = self.assertRaises(exception.ProbeError, self._irq_object)
        self.assertIn('not a regular file', str(err))
