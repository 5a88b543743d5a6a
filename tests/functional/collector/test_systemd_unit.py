"""The shipped systemd unit, judged by systemd's own tools."""

import os
import re
import shutil
import subprocess

import fixtures

from tests import base
from tests.functional import requirements

UNIT = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'etc',
                    'systemd', 'multimodal-virt-collector.service')
#: What doc/source/admin/collector.rst and the unit's header promise.
MAX_EXPOSURE = 2.4


class TestSystemdUnit(base.TestCase):

    def setUp(self):
        super().setUp()
        with open(UNIT) as handle:
            self.text = handle.read()

    def _settings(self, key):
        return [line.split('=', 1)[1] for line in self.text.splitlines()
                if line.startswith(key + '=')]

    def test_only_bpf_and_perfmon(self):
        # test_collector_process proves these two are enough.
        self.assertEqual(['CAP_BPF CAP_PERFMON'],
                         self._settings('CapabilityBoundingSet'))
        self.assertEqual([''], self._settings('AmbientCapabilities'))
        self.assertEqual(['/bin/kill -HUP $MAINPID'],
                         self._settings('ExecReload'))
        self.assertEqual(['strict'], self._settings('ProtectSystem'))
        self.assertEqual(['0077'], self._settings('UMask'))

    def test_systemd_analyze_security_score(self):
        tool = shutil.which('systemd-analyze')
        requirements.require(self, tool is not None,
                             'systemd-analyze is not installed')
        work = self.useFixture(fixtures.TempDir()).path
        unit = os.path.join(work, 'multimodal-virt-collector.service')
        shutil.copy(UNIT, unit)
        result = subprocess.run(
            [tool, 'security', '--offline=yes', '--no-pager', unit],
            capture_output=True, text=True)
        match = re.search(r'Overall exposure level for \S+: ([0-9.]+)',
                          result.stdout)
        self.assertIsNotNone(match, result.stdout + result.stderr)
        self.assertLessEqual(float(match.group(1)), MAX_EXPOSURE,
                             result.stdout)
