"""Progress lines around the demo's quiet steps."""

import threading

from multimodal_virt.demo import progress
from tests import base


class PhaseTest(base.TestCase):

    def test_ticks_while_the_step_runs(self):
        lines = []
        ticked = threading.Event()

        def record(line):
            lines.append(line)
            if 'still' in line:
                ticked.set()

        with progress.Phase(record, 'loading Nova', tick_s=0.01):
            # The step lasts until the ticker has spoken at least once.
            self.assertTrue(ticked.wait(10))
        self.assertEqual('loading Nova ...', lines[0])
        self.assertRegex(lines[1], r'^  \.\.\. still loading Nova \(\d+ s\)$')
        self.assertRegex(lines[-1], r'^loading Nova: done in \d+\.\d s$')

    def test_failure_is_said_and_raised(self):
        lines = []
        with self.assertRaises(KeyError):
            with progress.Phase(lines.append, 'drawing', tick_s=60):
                raise KeyError('x')
        self.assertEqual(['drawing ...'], lines[:1])
        self.assertRegex(lines[-1], r'^drawing: failed after \d+\.\d s$')
        self.assertEqual(2, len(lines))
