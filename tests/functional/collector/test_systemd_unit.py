"""The shipped systemd units, judged by systemd's own tools.

* ``multimodal-virt-collector.service``: CAP_BPF and CAP_PERFMON only
  (test_collector_process proves these two are enough);
* ``multimodal-virt-aggregator.service``: no capability at all.

Each must start the installed console script and keep the hardening score
its header and the docs promise.
"""

import configparser
import os
import re
import shutil
import subprocess

import fixtures

from tests import base
from tests.functional import requirements

TOP = os.path.join(os.path.dirname(__file__), '..', '..', '..')
UNITS = os.path.join(TOP, 'etc', 'systemd')


class SystemdUnitMixin(object):
    """Checks of one unit file; subclasses name it and its promises."""

    #: the unit's file name under etc/systemd
    unit = None
    #: the console script ExecStart runs (setup.cfg entry point target)
    entry_point = None
    #: the overall exposure systemd-analyze must not exceed
    max_exposure = None
    #: CapabilityBoundingSet
    capabilities = None

    def setUp(self):
        super().setUp()
        self.path = os.path.join(UNITS, self.unit)
        with open(self.path) as handle:
            self.text = handle.read()

    def _settings(self, key):
        return [line.split('=', 1)[1] for line in self.text.splitlines()
                if line.startswith(key + '=')]

    def test_privileges_and_the_installed_command(self):
        self.assertEqual([self.capabilities],
                         self._settings('CapabilityBoundingSet'))
        self.assertEqual([''], self._settings('AmbientCapabilities'))
        self.assertEqual(['yes'], self._settings('NoNewPrivileges'))
        self.assertEqual(['/bin/kill -HUP $MAINPID'],
                         self._settings('ExecReload'))
        self.assertEqual(['strict'], self._settings('ProtectSystem'))
        command = self._settings('ExecStart')[0].split()
        setup = configparser.ConfigParser()
        setup.read(os.path.join(TOP, 'setup.cfg'))
        self.assertIn('%s = %s' % (os.path.basename(command[0]),
                                   self.entry_point),
                      setup['entry_points']['console_scripts'])
        self.assertEqual(['--config-file',
                          '/etc/multimodal-virt/multimodal-virt.conf'],
                         command[1:])

    def test_systemd_analyze_security_score(self):
        tool = shutil.which('systemd-analyze')
        requirements.require(self, tool is not None,
                             'systemd-analyze is not installed')
        work = self.useFixture(fixtures.TempDir()).path
        unit = os.path.join(work, self.unit)
        shutil.copy(self.path, unit)
        result = subprocess.run(
            [tool, 'security', '--offline=yes', '--no-pager', unit],
            capture_output=True, text=True)
        match = re.search(r'Overall exposure level for \S+: ([0-9.]+)',
                          result.stdout)
        self.assertIsNotNone(match, result.stdout + result.stderr)
        self.assertLessEqual(float(match.group(1)), self.max_exposure,
                             result.stdout)


class TestCollectorUnit(SystemdUnitMixin, base.TestCase):

    unit = 'multimodal-virt-collector.service'
    entry_point = 'multimodal_virt.cmd.collector:main'
    #: What doc/source/admin/collector.rst and the unit's header promise.
    max_exposure = 2.4
    capabilities = 'CAP_BPF CAP_PERFMON'

    def test_umask_keeps_state_private(self):
        self.assertEqual(['0077'], self._settings('UMask'))


class TestAggregatorUnit(SystemdUnitMixin, base.TestCase):

    unit = 'multimodal-virt-aggregator.service'
    entry_point = 'multimodal_virt.cmd.aggregator:main'
    #: What the unit scores with systemd 252 (lower is safer).
    max_exposure = 1.6
    capabilities = ''
