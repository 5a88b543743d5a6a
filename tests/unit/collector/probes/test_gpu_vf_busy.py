"""gpu_vf_busy over a recorded xe PMU and PCI sysfs tree (no device).

The tree follows the xe driver's PMU description (Linux 6.16+:
``format/function`` config:44-59, gt 60-63, engine_class 20-27,
engine_instance 12-19, event 0-11; ``events/engine-active-ticks``
event=0x02, ``engine-total-ticks`` event=0x03). perf_event_open on a real
xe PMU is not exercised here (no such device); the opener is a fake that
serves counter values per config.
"""

import os
import shutil
import tempfile

from multimodal_virt.collector.probes import gpu_vf_busy as vf
from tests import base

PF = '0000:03:00.0'
PMU = 'xe_0000_03_00.0'
FORMATS = {'event': 'config:0-11', 'gt': 'config:60-63',
           'engine_class': 'config:20-27',
           'engine_instance': 'config:12-19', 'function': 'config:44-59'}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


class Tree(object):
    """A recorded sysfs: one xe PF with ``vfs`` VFs."""

    def __init__(self, root, vfs=2, formats=FORMATS, events=True):
        self.pmu_root = os.path.join(root, 'event_source')
        self.pci_root = os.path.join(root, 'pci')
        pmu = os.path.join(self.pmu_root, PMU)
        write(os.path.join(pmu, 'type'), '42\n')
        for name, text in formats.items():
            write(os.path.join(pmu, 'format', name), text + '\n')
        if events:
            write(os.path.join(pmu, 'events', vf.ACTIVE), 'event=0x02\n')
            write(os.path.join(pmu, 'events', vf.TOTAL), 'event=0x03\n')
        write(os.path.join(self.pmu_root, 'cpu', 'type'), '4\n')
        os.makedirs(os.path.join(self.pci_root, PF))
        for n in range(vfs):
            address = '0000:03:00.%d' % (n + 1)
            os.makedirs(os.path.join(self.pci_root, address))
            os.symlink('../' + address,
                       os.path.join(self.pci_root, PF, 'virtfn%d' % n))


class FakeCounters(object):
    """Opener: counters exist for the configs in ``values``."""

    def __init__(self):
        self.values = {}
        self.opened = []
        self.closed = 0

    def __call__(self, pmu_type, config):
        if (pmu_type, config) not in self.values:
            raise OSError(2, 'No such file or directory')
        self.opened.append(config)
        outer = self

        class Counter(object):
            def read(self):
                return outer.values[(pmu_type, config)]

            def close(self):
                outer.closed += 1
        return Counter()


def cfg(event, gt, klass, instance, function):
    return (event | klass << 20 | instance << 12 | gt << 60
            | function << 44)


class TestParsing(base.TestCase):

    def test_format_and_encode(self):
        self.assertEqual((44, 59), vf.parse_format('config:44-59\n'))
        self.assertEqual((5, 5), vf.parse_format('config:5'))
        for bad in ('config1:0-3', 'config:9-2', 'config:60-70', 'x'):
            self.assertRaises(vf.PmuError, vf.parse_format, bad)
        formats = {k: vf.parse_format(v) for k, v in FORMATS.items()}
        self.assertEqual(cfg(2, 1, 4, 3, 7), vf.encode(formats, {
            'event': 2, 'gt': 1, 'engine_class': 4, 'engine_instance': 3,
            'function': 7}))
        self.assertRaises(vf.PmuError, vf.encode, formats, {'gt': 16})
        self.assertRaises(vf.PmuError, vf.encode, formats, {'tile': 0})
        self.assertEqual(2, vf.parse_event('event=0x02\n', formats))
        self.assertRaises(vf.PmuError, vf.parse_event, 'ns', formats)

    def test_describe_and_discover(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        tree = Tree(root)
        pmus, reasons = vf.discover(tree.pmu_root)
        self.assertEqual([], reasons)
        self.assertEqual(1, len(pmus))
        pmu = pmus[0]
        self.assertEqual((PMU, PF, 42), (pmu.name, pmu.pf, pmu.type))
        self.assertEqual(cfg(3, 0, 0, 0, 2),
                         pmu.config(vf.TOTAL, 0, 0, 0, 2))
        self.assertEqual({1: '0000:03:00.1', 2: '0000:03:00.2'},
                         vf.vf_functions(PF, tree.pci_root))

    def test_older_xe_without_function_field_is_named(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        formats = dict(FORMATS)
        del formats['function']
        tree = Tree(root, formats=formats)
        pmus, reasons = vf.discover(tree.pmu_root)
        self.assertEqual([], pmus)
        self.assertIn('xe_0000_03_00.0 has no per-function engine counters',
                      reasons[0])

    def test_busy_percent(self):
        self.assertEqual(25.0, vf.busy_percent(250, 1000))
        self.assertEqual(100.0, vf.busy_percent(1200, 1000))
        self.assertIsNone(vf.busy_percent(5, 0))
        self.assertIsNone(vf.busy_percent(-1, 10))


class TestProbe(base.TestCase):

    def setUp(self):
        super().setUp()
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        self.tree = Tree(root)
        self.counters = FakeCounters()

    def probe(self):
        probe = vf.GpuVfBusyProbe(self.conf, self.tree.pmu_root,
                                  self.tree.pci_root, self.counters)
        self.addCleanup(probe.stop)
        return probe

    def set(self, gt, klass, instance, function, active, total):
        self.counters.values[(42, cfg(2, gt, klass, instance,
                                      function))] = active
        self.counters.values[(42, cfg(3, gt, klass, instance,
                                      function))] = total

    def test_busy_per_vf_is_its_busiest_engine(self):
        # VF 1: render and compute on gt0; VF 2: video on gt1.
        self.set(0, 0, 0, 1, 100, 1000)
        self.set(0, 4, 0, 1, 0, 1000)
        self.set(1, 2, 0, 2, 0, 1000)
        probe = self.probe()
        probe.start()
        self.assertEqual(6, len(self.counters.opened))
        self.set(0, 0, 0, 1, 300, 2000)      # 200/1000 = 20 %
        self.set(0, 4, 0, 1, 600, 2000)      # 600/1000 = 60 %
        self.set(1, 2, 0, 2, 0, 2000)        # idle
        reading = probe.collect()
        self.assertEqual({'0000:03:00.1': 60.0, '0000:03:00.2': 0.0},
                         reading.gpu_busy_by_vf)
        self.assertEqual(('gpu_busy',), reading.gpu_observed)
        self.assertEqual('pmu', reading.source)
        # A window where no time passed gives no figure, not 0 %.
        self.assertEqual({}, probe.collect().gpu_busy_by_vf)
        probe.stop()
        self.assertEqual(6, self.counters.closed)

    def test_not_observable_without_counters(self):
        probe = self.probe()
        with self.assertLogs('multimodal_virt.collector.probes.gpu_vf_busy',
                             level='WARNING') as logs:
            probe.start()
        self.assertIn('not observable', logs.output[0])
        self.assertIn('no engine counter opens for function 1',
                      logs.output[0])
        reading = probe.collect()
        self.assertEqual({}, reading.gpu_busy_by_vf)
        self.assertEqual((), reading.gpu_observed)
        self.assertIn('VFs 0000:03:00.1, 0000:03:00.2', probe.describe())

    def test_not_observable_without_pmu(self):
        probe = vf.GpuVfBusyProbe(self.conf, '/nonexistent', '/nonexistent',
                                  self.counters)
        probe.start()
        self.assertEqual((), probe.collect().gpu_observed)
        self.assertIn('not observable', probe.describe())
