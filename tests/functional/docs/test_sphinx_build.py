"""The Sphinx documentation builds with warnings as errors."""

import importlib.util
import os
import subprocess
import sys

import fixtures

from tests import base
from tests.functional import requirements

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class SphinxBuildTest(base.TestCase):

    def test_html_builds_without_warnings(self):
        requirements.require(self, importlib.util.find_spec('sphinx'),
                             'sphinx (pip install -r doc/requirements.txt)')
        out = self.useFixture(fixtures.TempDir()).path
        result = subprocess.run(
            [sys.executable, '-m', 'sphinx', '-W', '-q', '-b', 'html',
             '-d', os.path.join(out, 'doctrees'),
             os.path.join(TOP, 'doc', 'source'), os.path.join(out, 'html')],
            capture_output=True, text=True, check=False, timeout=300)
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)
        with open(os.path.join(out, 'html', 'configuration',
                               'index.html')) as handle:
            reference = handle.read()
        # Generated from the registered options, not written by hand.
        for group in ('multimodal_virt_scheduler', 'multimodal_virt_store',
                      'multimodal_virt_pci', 'multimodal_virt_libvirt',
                      'multimodal_virt_collector', 'multimodal_virt_probes'):
            self.assertIn(group, reference)
        self.assertIn('stale_policy', reference)
