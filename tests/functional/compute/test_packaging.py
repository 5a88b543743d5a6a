"""The wheel ships the compute_driver shim inside nova/virt, and only it.

Nova loads ``compute_driver = multimodal_virt.LibvirtDriver`` from
``nova.virt.multimodal_virt``; a wheel that also carried ``nova/__init__.py``
or ``nova/virt/__init__.py`` would overwrite Nova's own files on install.
"""

import glob
import os
import subprocess
import sys
import zipfile

import fixtures

from tests import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class WheelTest(base.TestCase):

    def test_wheel_carries_only_the_shim_under_nova(self):
        out = self.useFixture(fixtures.TempDir()).path
        build = self.useFixture(fixtures.TempDir()).path
        proc = subprocess.run(
            [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
             '--no-build-isolation', '-q', '-w', out, TOP],
            capture_output=True, text=True, timeout=300, cwd=build,
            env=dict(os.environ, PIP_NO_INDEX='1'))
        self.assertEqual(0, proc.returncode, proc.stderr[-2000:])
        (wheel,) = glob.glob(os.path.join(out, '*.whl'))
        names = zipfile.ZipFile(wheel).namelist()
        self.assertEqual(['nova/virt/multimodal_virt/__init__.py'],
                         [n for n in names if n.startswith('nova/')])
        self.assertIn('multimodal_virt/compute/driver.py', names)
