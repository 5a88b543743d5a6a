"""``multimodal-virt`` and ``multimodal-virt-collector`` start-up.

The commands run in-process through their ``main`` functions with real
config files, a real (closed) loopback port for an unreachable Keystone,
and stderr captured.
"""

import os

import fixtures

from multimodal_virt.cmd import cli
from multimodal_virt.cmd import collector
from multimodal_virt import version
from tests import base
from tests.unit.cli import test_auth


class CommandStartTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable('HOME', self.tmp))
        for name in test_auth.OS_VARIABLES:
            self.useFixture(fixtures.EnvironmentVariable(name))
        self.stdout = self.useFixture(fixtures.StringStream('stdout'))
        self.stderr = self.useFixture(fixtures.StringStream('stderr'))
        self.useFixture(fixtures.MonkeyPatch('sys.stdout',
                                             self.stdout.stream))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr',
                                             self.stderr.stream))
        self.stats = os.path.join(self.tmp, 'stats')
        os.makedirs(self.stats)

    def _write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as handle:
            handle.write(text)
        return path

    def _err(self):
        self.stderr.stream.flush()
        return self.stderr.getDetails()['stderr'].as_text()

    def _out(self):
        self.stdout.stream.flush()
        return self.stdout.getDetails()['stdout'].as_text()

    def _one_error_line(self, code, *expected):
        self.assertEqual(2, code)
        lines = self._err().splitlines()
        self.assertEqual(1, len(lines), lines)
        for text in expected:
            self.assertIn(text, lines[0])
        self.assertNotIn('Traceback', self._err())

    def test_missing_config_file(self):
        missing = os.path.join(self.tmp, 'nope.conf')
        self._one_error_line(
            cli.main(['status', '--config-file', missing]),
            'multimodal-virt: error: configuration:', missing)

    def test_invalid_option_value(self):
        path = self._write('bad.conf', '[multimodal_virt_scheduler]\n'
                                       'stale_after = never\n')
        self._one_error_line(cli.main(['--config-file', path, 'status']),
                             'stale_after', 'never')

    def test_unparsable_config_file(self):
        path = self._write('jinja.conf', '[multimodal_virt_store]\n'
                                         '{% else %}\n')
        self._one_error_line(cli.main(['status', '--config-file', path]),
                             'configuration:', 'jinja.conf')

    def test_config_file_after_the_sub_command(self):
        path = self._write('a.conf', '[multimodal_virt_store]\n'
                                     'driver = file\nfile_path = %s\n'
                                     'signing_keys = %s\n'
                                     % (self.stats, base.TEST_SIGNING_KEY))
        # The store is empty: the command reads it and says so, naming the
        # directory from the config file given after "status".
        self._one_error_line(cli.main(['status', '--config-file', path]),
                             'no host samples', self.stats)

    def test_default_search_path(self):
        os.makedirs(os.path.join(self.tmp, '.multimodal-virt'))
        self._write('.multimodal-virt/multimodal-virt.conf',
                    '[multimodal_virt_store]\nfile_path = %s\n'
                    'signing_keys = %s\n'
                    % (self.stats, base.TEST_SIGNING_KEY))
        self._one_error_line(cli.main(['analyze']), self.stats)

    def test_version(self):
        for main, prog in ((cli.main, 'multimodal-virt'),
                           (collector.main, 'multimodal-virt-collector')):
            err = self.assertRaises(SystemExit, main, ['--version'])
            self.assertEqual(0, err.code)
            printed = self._out() + self._err()
            self.assertIn(version.version_string(), printed)

    def test_unreachable_keystone(self):
        # Port 9 on loopback: nothing listens, the connection is refused.
        code = cli.main([
            'flavor', 'create', 'f', '--ram', '64', '--vcpus', '1',
            '--os-auth-url', 'http://127.0.0.1:9/identity',
            '--os-username', 'u', '--os-password', 'p',
            '--os-project-name', 'demo', '--os-user-domain-id', 'default',
            '--os-project-domain-id', 'default'])
        self._one_error_line(code, 'OpenStack API:', '127.0.0.1:9',
                             'DiscoveryFailure')
        # urllib3 says "ECONNREFUSED" or "Connection refused".
        self.assertIn('refused', self._err().lower())

    def test_application_credential_type_from_command_line(self):
        code = cli.main(['flavor', 'create', 'f', '--os-auth-type',
                         'v3applicationcredential',
                         '--os-application-credential-id', 'c'])
        # The hyphenated spelling is accepted; keystoneauth's own check
        # then names what is missing.
        self._one_error_line(code, 'OpenStack API:', 'auth secret',
                             'OptionError')

    def test_collector_missing_config_file(self):
        missing = os.path.join(self.tmp, 'nope.conf')
        self._one_error_line(
            collector.main(['--config-file', missing, '--dump-bpf']),
            'multimodal-virt-collector: error: configuration:', missing)

    def test_collector_invalid_value(self):
        path = self._write('bad.conf', '[multimodal_virt_collector]\n'
                                       'interval = often\n')
        self._one_error_line(
            collector.main(['--dump-bpf', '--config-file', path]),
            'interval', 'often')
