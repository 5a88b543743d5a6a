"""block_io with real programs under loop-device churn, and its drop counter.

100 real loop devices (losetup) are attached at once, written with
O_DIRECT and detached; afterwards the disk holding the test directory must
still be counted by name. With the default exclusion the loop devices never
reach the kernel table; with the exclusion off and a small table, the
overflow is counted by the ``block_io.hists`` drop counter, published in the
sample and logged once, and the idle loop entries are deleted so the disk
gets its slot back.
"""

import os
import subprocess
import time

import fixtures

from multimodal_virt.collector.probes import block_io
from multimodal_virt.collector.publishers import base as publisher_base
from multimodal_virt.collector import service
from tests.functional.collector import ebpf_base
from tests.functional import requirements

LOOPS = 100


def disk_of(path):
    """Name of the whole disk holding ``path`` (``vda``), from sysfs."""
    st_dev = os.stat(path).st_dev
    entry = os.path.realpath('/sys/dev/block/%d:%d' % (os.major(st_dev),
                                                       os.minor(st_dev)))
    if os.path.exists(os.path.join(entry, 'partition')):
        entry = os.path.dirname(entry)
    return os.path.basename(entry)


class Loops(fixtures.Fixture):
    """``count`` loop devices attached at once to sparse files."""

    def __init__(self, directory, count):
        super().__init__()
        self.directory = directory
        self.count = count
        self.devices = []

    def _setUp(self):
        self.addCleanup(self.detach)
        for index in range(self.count):
            backing = os.path.join(self.directory, 'loop%d.img' % index)
            with open(backing, 'wb') as handle:
                handle.truncate(1024 * 1024)
            for _attempt in range(5):  # other processes race for loops
                result = subprocess.run(['losetup', '-f', '--show', backing],
                                        capture_output=True, text=True)
                if result.returncode == 0:
                    self.devices.append(result.stdout.strip())
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError('losetup failed: %s' % result.stderr)

    def write_each(self, blocks=4):
        for device in self.devices:
            subprocess.run(['dd', 'if=/dev/zero', 'of=' + device, 'bs=4k',
                            'count=%d' % blocks, 'oflag=direct'],
                           check=True, capture_output=True)

    def detach(self):
        while self.devices:
            subprocess.run(['losetup', '-d', self.devices.pop()],
                           capture_output=True)


class Capture(publisher_base.Publisher):
    name = 'capture'

    def __init__(self):
        super().__init__(None)
        self.samples = []

    def publish(self, sample):
        self.samples.append(sample)


class TestLoopChurnLibbpf(ebpf_base.EbpfTestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, os.path.exists('/dev/loop-control'),
                             'loop devices need /dev/loop-control')
        self.disk = disk_of(self.tmp)

    def _collector(self):
        self.flags('multimodal_virt_collector', attribution=False)
        publisher = Capture()
        collector = service.CollectorService(
            self.conf, probes=[('block_io', block_io.BlockIOProbe(
                self.conf))], fallback_probes=[],
            publishers=[('capture', publisher)])
        collector.start_probes()
        collector.load_publishers()
        self.addCleanup(collector.stop)
        return collector, publisher

    def _window(self, collector):
        sample = collector.run_once()
        self.assertIsNotNone(sample)
        return sample

    def test_default_exclusion_keeps_loops_out_and_the_disk_counted(self):
        self.flags('multimodal_virt_collector', history_half_life=0)
        collector, _publisher = self._collector()
        loops = self.useFixture(Loops(self.tmp, LOOPS))
        loops.write_each()
        sample = self._window(collector)
        self.assertFalse([name for name in sample.device_io
                          if name.startswith('loop')], sample.device_io)
        self.assertEqual(0, sample.dropped['block_io.hists'])
        loops.detach()
        self._window(collector)
        ebpf_base.direct_writes(self.tmp, 64)
        sample = self._window(collector)
        self.assertIn(self.disk, sample.device_io)
        self.assertGreaterEqual(sample.device_io[self.disk].count, 64)
        self.assertEqual('ebpf', sample.metric_source('io'))

    def test_overflow_counted_published_logged_once_then_disk_back(self):
        self.flags('multimodal_virt_probes', exclude_block_drivers=[],
                   max_block_devices=16)
        self.flags('multimodal_virt_collector', history_half_life=0,
                   published_devices=4)
        ebpf_base.logger_enabled(self, 'multimodal_virt.collector.bpf.probe')
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.probe'))
        collector, publisher = self._collector()
        self._window(collector)
        loops = self.useFixture(Loops(self.tmp, LOOPS))
        loops.write_each()
        full = self._window(collector)
        # 100 loop devices in one window, 16 slots: the rest were dropped,
        # counted and published; the sample names 4 devices plus "other".
        self.assertGreaterEqual(full.dropped['block_io.hists'],
                                (LOOPS - 16) * 4)
        self.assertLessEqual(len(full.device_io), 5)
        self.assertIn('other', full.device_io)
        loops.write_each(blocks=1)
        again = self._window(collector)
        self.assertGreater(again.dropped['block_io.hists'], 0)
        self.assertEqual(1, logs.output.count('map hists was full'),
                         logs.output)
        self.assertIn('max_block_devices', logs.output)
        loops.detach()
        # Detached loops are idle: their entries are deleted and the disk
        # gets a slot again (one window for the detach's own I/O).
        self._window(collector)
        self._window(collector)
        ebpf_base.direct_writes(self.tmp, 64)
        sample = self._window(collector)
        self.assertIn(self.disk, sample.device_io)
        self.assertGreaterEqual(sample.device_io[self.disk].count, 64)
        self.assertEqual(0, sample.dropped['block_io.hists'])
        self.assertEqual(publisher.samples[-1], sample)


class TestLoopChurnBcc(TestLoopChurnLibbpf):
    BACKEND = 'bcc'
