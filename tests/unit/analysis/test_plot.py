import os

import fixtures

from multimodal_virt.analysis import plot
from multimodal_virt.analysis import report
from multimodal_virt import exception
from multimodal_virt.scheduler import snapshot
from tests import base
from tests.unit.analysis import helpers

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


class PlotTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.samples = {
            'a': helpers.host_sample('a', gpu_us=50, io_us=100),
            'b': helpers.host_sample('b', io_us=3000, age=500),
            'c': helpers.host_sample('c', vm_exit_rate=5.0),
        }
        snap = snapshot.LatencySnapshot(self.samples,
                                        snapshot.ScoringPolicy(),
                                        helpers.NOW)
        self.rows = report.host_rows(self.samples, snap, helpers.NOW)

    def test_renders_a_png(self):
        path = os.path.join(self.tmp, 'hosts.png')
        self.assertEqual(path, plot.render(self.rows, self.samples, path))
        with open(path, 'rb') as handle:
            self.assertEqual(PNG_MAGIC, handle.read(8))
        self.assertGreater(os.path.getsize(path), 10000)

    def test_labels_carry_rank_and_staleness(self):
        labels = [plot._label(r) for r in self.rows]
        self.assertIn('#1 a', labels)
        self.assertTrue(any(label.endswith('b (stale)') for label in labels))

    def test_unwritable_path_is_named(self):
        path = os.path.join(self.tmp, 'missing-dir', 'x.png')
        err = self.assertRaises(exception.MultimodalVirtError, plot.render,
                                self.rows, self.samples, path)
        self.assertIn(path, str(err))
