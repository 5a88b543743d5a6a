"""The shipped aggregator systemd unit, judged by systemd's own tools."""

import configparser
import os
import re
import shutil
import subprocess

import fixtures

from tests import base
from tests.functional import requirements

TOP = os.path.join(os.path.dirname(__file__), '..', '..', '..')
UNIT = os.path.join(TOP, 'etc', 'systemd',
                    'multimodal-virt-aggregator.service')
#: What the unit's hardening scores with systemd 252 (lower is safer).
MAX_EXPOSURE = 1.6


class TestAggregatorUnit(base.TestCase):

    def setUp(self):
        super().setUp()
        with open(UNIT) as handle:
            self.text = handle.read()

    def _settings(self, key):
        return [line.split('=', 1)[1] for line in self.text.splitlines()
                if line.startswith(key + '=')]

    def test_no_capability_and_the_installed_command(self):
        self.assertEqual([''], self._settings('CapabilityBoundingSet'))
        self.assertEqual([''], self._settings('AmbientCapabilities'))
        self.assertEqual(['/bin/kill -HUP $MAINPID'],
                         self._settings('ExecReload'))
        command = self._settings('ExecStart')[0].split()
        setup = configparser.ConfigParser()
        setup.read(os.path.join(TOP, 'setup.cfg'))
        scripts = setup['entry_points']['console_scripts']
        self.assertIn('%s = multimodal_virt.cmd.aggregator:main'
                      % os.path.basename(command[0]), scripts)
        self.assertEqual(['--config-file',
                          '/etc/multimodal-virt/multimodal-virt.conf'],
                         command[1:])

    def test_systemd_analyze_security_score(self):
        tool = shutil.which('systemd-analyze')
        requirements.require(self, tool is not None,
                             'systemd-analyze is not installed')
        work = self.useFixture(fixtures.TempDir()).path
        unit = os.path.join(work, os.path.basename(UNIT))
        shutil.copy(UNIT, unit)
        result = subprocess.run(
            [tool, 'security', '--offline=yes', '--no-pager', unit],
            capture_output=True, text=True)
        match = re.search(r'Overall exposure level for \S+: ([0-9.]+)',
                          result.stdout)
        self.assertIsNotNone(match, result.stdout + result.stderr)
        self.assertLessEqual(float(match.group(1)), MAX_EXPOSURE,
                             result.stdout)
