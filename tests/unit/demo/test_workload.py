import os

import fixtures

from multimodal_virt.demo import workload
from multimodal_virt import exception
from tests import base


class WorkloadTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def test_writes_frames_and_packets_and_cleans_up(self):
        load = workload.Workload(self.tmp, 0.3, fps=20, frame_bytes=10000,
                                 sensor_hz=100, ring_frames=4)
        self.assertEqual(12288, load.frame_bytes)  # whole 4 KiB blocks
        stats = load.run()
        self.assertIn(stats.io_mode, ('o_direct', 'fdatasync'))
        self.assertGreaterEqual(stats.frames, 1)
        self.assertGreaterEqual(stats.packets, 1)
        self.assertEqual(stats.frames * 12288 + stats.packets * 4096,
                         stats.bytes_written)
        self.assertEqual(0, stats.commands)
        self.assertEqual([], os.listdir(self.tmp))

    def test_stop_ends_early(self):
        load = workload.Workload(self.tmp, 3600, fps=10, sensor_hz=10)
        load.stop()
        stats = load.run()
        self.assertEqual(0, stats.frames)

    def test_bad_arguments_are_named(self):
        err = self.assertRaises(exception.DemoError, workload.Workload,
                                self.tmp, 1, fps=0)
        self.assertIn('fps', str(err))
        missing = os.path.join(self.tmp, 'nope')
        err = self.assertRaises(exception.DemoError, workload.Workload,
                                missing, 1)
        self.assertIn(missing, str(err))

    def test_unusable_command_node_is_reported(self):
        load = workload.Workload(self.tmp, 0.2,
                                 command_node=os.path.join(self.tmp, 'x'))
        err = self.assertRaises(exception.DemoError, load.run)
        self.assertIn('workload I/O', str(err))
