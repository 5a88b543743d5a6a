"""Unit tests of the procfs fallback probe, on recorded /proc files."""

import os
import shutil

import fixtures

from multimodal_virt.collector.probes import procfs
from multimodal_virt import exception
from tests import base

FIXTURES = os.path.join(os.path.dirname(__file__), 'procfs_fixtures')


def _fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


class FakeLog(object):
    def __init__(self):
        self.keys = []

    def warning(self, key, msg, *args):
        self.keys.append(key)


class TestParsers(base.TestCase):

    def test_parse_diskstats_recorded(self):
        stats = procfs.parse_diskstats(_fixture('diskstats.before'))
        # reads + writes + discards + flushes, and their times in ms
        self.assertEqual((87835 + 29217 + 7788 + 2443,
                          17488 + 8620 + 595 + 99), stats['vda'])
        self.assertEqual((0, 0), stats['loop0'])

    def test_parse_diskstats_old_kernel_14_columns(self):
        # Kernels before 4.18 have no discard or flush columns.
        stats = procfs.parse_diskstats(
            '   8 0 sda 10 0 80 5 20 0 160 15 0 30 20\n')
        self.assertEqual({'sda': (30, 20)}, stats)

    def test_parse_diskstats_skips_malformed_lines(self):
        text = ('garbage\n'
                '8 0 sda x 0 0 0 0 0 0 0 0 0 0\n'
                '8 0 ../evil 1 0 0 1 0 0 0 0 0 0 0\n'
                '8 16 sdb 1 0 8 2 1 0 8 2 0 4 4\n')
        self.assertEqual({'sdb': (2, 4)}, procfs.parse_diskstats(text))

    def test_parse_interrupts_recorded(self):
        irqs = procfs.parse_interrupts(_fixture('interrupts.before'))
        self.assertIn(26, irqs)  # ttyS0 line of the recording
        for label in irqs:
            self.assertIsInstance(label, int)
        self.assertNotIn('LOC', irqs)

    def test_parse_interrupts_sums_cpus_and_skips_arch_lines(self):
        text = ('           CPU0       CPU1       CPU2\n'
                '  0:         10          1          2   IO-APIC   2-edge timer\n'
                ' 11:          5          0          0   IO-APIC  11-fasteoi\n'
                'LOC:       1000       1000       1000   Local timer\n'
                'ERR:          0\n')
        self.assertEqual({0: 13, 11: 5}, procfs.parse_interrupts(text))

    def test_parse_interrupts_empty(self):
        self.assertEqual({}, procfs.parse_interrupts(''))

    def test_latency_histogram_weights_device_mean_by_count(self):
        # sda: 100 I/Os, 50 ms -> mean 500 us (bucket 8);
        # sdb: 10 I/Os, 100 ms -> mean 10 ms (bucket 13).
        histogram = procfs.latency_histogram({'sda': (100, 50),
                                              'sdb': (10, 100),
                                              'sdc': (0, 0)})
        self.assertEqual(110, histogram.count)
        self.assertEqual(100, histogram.buckets[8])
        self.assertEqual(10, histogram.buckets[13])

    def test_latency_histogram_no_io_is_empty(self):
        self.assertEqual(0, procfs.latency_histogram({'sda': (0, 0)}).count)

    def test_counter_deltas_drop_reset_and_new_keys(self):
        log = FakeLog()
        deltas = procfs.counter_deltas(
            {'sda': (100, 10), 'sdb': (50, 5), 1: 7},
            {'sda': (150, 20), 'sdb': (10, 1), 'sdc': (3, 3), 1: 9},
            'disk', log)
        self.assertEqual({'sda': (50, 10), 1: 2}, deltas)
        self.assertEqual([('disk', 'sdb')], log.keys)


class TestProcfsProbe(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.proc = os.path.join(self.root, 'proc')
        self.sys = os.path.join(self.root, 'sys')
        os.makedirs(self.proc)

    def _record(self, when):
        for name in ('diskstats', 'interrupts'):
            shutil.copy(os.path.join(FIXTURES, '%s.%s' % (name, when)),
                        os.path.join(self.proc, name))

    def test_recorded_direct_io_window(self):
        # Recorded around `dd oflag=direct bs=4k count=2000` on /dev/vda.
        self._record('before')
        probe = procfs.ProcfsProbe(self.conf, proc_root=self.proc,
                                   sys_root=self.sys)
        probe.start()
        self._record('after')
        reading = probe.collect()
        self.assertEqual('procfs', reading.source)
        # vda: 7 reads + 2000 writes in 2 + 122 ms -> 61.8 us mean.
        self.assertEqual(2007, reading.io.count)
        self.assertEqual(2007, reading.io.buckets[5])
        self.assertEqual(['vda'], list(reading.io_by_device))
        self.assertTrue(all(v >= 0 for v in reading.irq_counts.values()))
        self.assertGreater(sum(reading.irq_counts.values()), 0)
        self.assertEqual(procfs.EVENTS, reading.events)
        # Nothing happened since: an empty window, not an error.
        second = probe.collect()
        self.assertEqual(0, second.io.count)
        self.assertEqual(0, sum(second.irq_counts.values()))

    def test_partitions_and_stacked_devices_are_not_counted(self):
        os.makedirs(os.path.join(self.sys, 'class', 'block', 'sda1'))
        open(os.path.join(self.sys, 'class', 'block', 'sda1', 'partition'),
             'w').close()
        os.makedirs(os.path.join(self.sys, 'class', 'block', 'sda'))
        lines = ('8 0 sda {n} 0 0 {t} 0 0 0 0 0 0 0\n'
                 '8 1 sda1 {n} 0 0 {t} 0 0 0 0 0 0 0\n'
                 '253 0 dm-0 {n} 0 0 {t} 0 0 0 0 0 0 0\n'
                 '7 0 loop0 {n} 0 0 {t} 0 0 0 0 0 0 0\n')
        with open(os.path.join(self.proc, 'interrupts'), 'w') as handle:
            handle.write('CPU0\n')
        with open(os.path.join(self.proc, 'diskstats'), 'w') as handle:
            handle.write(lines.format(n=0, t=0))
        probe = procfs.ProcfsProbe(self.conf, proc_root=self.proc,
                                   sys_root=self.sys)
        probe.start()
        with open(os.path.join(self.proc, 'diskstats'), 'w') as handle:
            handle.write(lines.format(n=10, t=1))
        reading = probe.collect()
        self.assertEqual(['sda'], list(reading.io_by_device))
        self.assertEqual(10, reading.io.count)

    def test_counter_reset_never_gives_negative_counts(self):
        self._record('after')
        probe = procfs.ProcfsProbe(self.conf, proc_root=self.proc,
                                   sys_root=self.sys)
        probe.start()
        self._record('before')  # every counter went backwards
        reading = probe.collect()
        self.assertEqual(0, reading.io.count)
        self.assertTrue(all(v >= 0 for v in reading.irq_counts.values()))

    def test_missing_proc_file_is_a_probe_error(self):
        probe = procfs.ProcfsProbe(self.conf, proc_root=self.proc,
                                   sys_root=self.sys)
        err = self.assertRaises(exception.ProbeError, probe.start)
        self.assertIn('diskstats', str(err))

    def test_collect_before_start_is_a_probe_error(self):
        probe = procfs.ProcfsProbe(self.conf, proc_root=self.proc)
        self.assertRaises(exception.ProbeError, probe.collect)

    def test_stop_twice_and_describe(self):
        probe = procfs.ProcfsProbe(self.conf, proc_root=self.proc)
        probe.stop()
        probe.stop()
        self.assertIn('approximation', probe.describe())


class TestProcfsExclusionOption(base.TestCase):

    def test_exclude_block_drivers_is_honoured(self):
        root = self.useFixture(fixtures.TempDir()).path
        probe = procfs.ProcfsProbe(self.conf, proc_root=root,
                                   sys_root=os.path.join(root, 'sys'))
        self.assertFalse(probe._is_whole_disk('loop3'))
        self.assertFalse(probe._is_whole_disk('dm-0'))
        self.assertTrue(probe._is_whole_disk('vda'))
        self.flags('multimodal_virt_probes', exclude_block_drivers=['md'])
        self.assertTrue(probe._is_whole_disk('loop3'))
        self.assertFalse(probe._is_whole_disk('md127'))
