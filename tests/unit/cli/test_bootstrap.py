"""The one start-up path of every command (multimodal_virt.cli.bootstrap)."""

import io
import os

import fixtures
from oslo_config import cfg

from multimodal_virt.cli import bootstrap
from multimodal_virt import exception
from tests import base


class SplitConfigArgumentsTest(base.TestCase):

    def test_anywhere_both_spellings(self):
        files, dirs, rest = bootstrap.split_config_arguments(
            ['status', '--config-file', 'a.conf', '--format', 'json',
             '--config-file=b.conf', '--config-dir', 'd', '--', 'x',
             '--config-file', 'literal'])
        self.assertEqual(['a.conf', 'b.conf'], files)
        self.assertEqual(['d'], dirs)
        self.assertEqual(['status', '--format', 'json', '--', 'x',
                          '--config-file', 'literal'], rest)

    def test_missing_value(self):
        for argv in (['--config-file'], ['--config-dir', '--format']):
            err = self.assertRaises(exception.MultimodalVirtError,
                                    bootstrap.split_config_arguments, argv)
            self.assertIn('needs a path', str(err))


class LoadTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def _write(self, name, text):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(text)
        return path

    def test_default_search_path(self):
        self.useFixture(fixtures.EnvironmentVariable('HOME', self.tmp))
        self._write('.multimodal-virt/multimodal-virt.conf',
                    '[multimodal_virt_store]\nfile_path = /from/home\n')
        conf = bootstrap.load([])
        self.assertEqual('/from/home', conf.multimodal_virt_store.file_path)
        # An explicit file replaces the search.
        other = self._write('other.conf',
                            '[multimodal_virt_store]\nfile_path = /x\n')
        conf = bootstrap.load(['--config-file', other])
        self.assertEqual('/x', conf.multimodal_virt_store.file_path)

    def test_config_dir_after_files(self):
        path = self._write('a.conf', '[multimodal_virt_store]\n'
                                     'file_path = /a\n')
        self._write('d/z.conf', '[multimodal_virt_store]\nfile_path = /z\n')
        conf = bootstrap.load(['--config-file', path, '--config-dir',
                               os.path.join(self.tmp, 'd')])
        self.assertEqual('/z', conf.multimodal_virt_store.file_path)

    def test_bad_value_fails_at_start(self):
        path = self._write('bad.conf', '[multimodal_virt_scheduler]\n'
                                       'refresh_interval = soon\n')
        err = self.assertRaises(cfg.Error, bootstrap.load,
                                ['--config-file', path])
        self.assertIn('refresh_interval', str(err))
        # Not checked: the error waits for the first read.
        conf = bootstrap.load(['--config-file', path], check=False)
        self.assertRaises(cfg.Error, getattr,
                          conf.multimodal_virt_scheduler, 'refresh_interval')

    def test_missing_file(self):
        self.assertRaises(cfg.ConfigFilesNotFoundError, bootstrap.load,
                          ['--config-file', os.path.join(self.tmp, 'no')])


class RunTest(base.TestCase):

    def _run(self, error):
        def fail():
            raise error
        err = io.StringIO()
        code = bootstrap.run(fail, prog='prog', err=err)
        return code, err.getvalue()

    def test_known_errors_are_one_line(self):
        from keystoneauth1 import exceptions as ks_exceptions
        for error, expected in (
                (exception.StoreError('store\ndown'),
                 'prog: error: store down\n'),
                (cfg.ConfigFilesNotFoundError(['/etc/x.conf']),
                 'prog: error: configuration: Failed to find some config '
                 'files: /etc/x.conf\n'),
                (ks_exceptions.ConnectFailure('no route'),
                 'prog: error: OpenStack API: no route (ConnectFailure)\n'),
                (ModuleNotFoundError("No module named 'matplotlib'",
                                     name='matplotlib'),
                 "prog: error: this command needs matplotlib, part of the "
                 "plotting extra: pip install "
                 "'multimodal-virt[plotting]'\n")):
            self.assertEqual((2, expected), self._run(error))

    def test_other_errors_propagate(self):
        self.assertRaises(ZeroDivisionError, self._run, ZeroDivisionError())
        self.assertRaises(ModuleNotFoundError, self._run,
                          ModuleNotFoundError('x', name='somethingelse'))

    def test_status(self):
        self.assertEqual(0, bootstrap.run(lambda: None))
        self.assertEqual(3, bootstrap.run(lambda: 3))
