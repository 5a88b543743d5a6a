"""Unit tests of the collector service with injected probes/publishers."""

import threading

import fixtures

from multimodal_virt.collector.probes import base as probe_base
from multimodal_virt.collector.probes import procfs
from multimodal_virt.collector.publishers import base as publisher_base
from multimodal_virt.collector import service
from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from tests import base

UUID_A = 'aaaaaaaa-0000-4000-8000-000000000001'


class FakeProbe(probe_base.Probe):
    def __init__(self, name, source='ebpf', fail_start=False,
                 fail_collect=False, reading=None):
        super().__init__(None)
        self.name = name
        self.source = source
        self.fail_start = fail_start
        self.fail_collect = fail_collect
        self.reading = reading
        self.started = self.stopped = 0

    def start(self):
        self.started += 1
        if self.fail_start:
            raise exception.BPFUnavailable('no CAP_BPF')

    def collect(self):
        if self.fail_collect:
            raise exception.ProbeError('map read failed')
        return self.reading or probe_base.ProbeReading(
            source=self.source,
            io=hist.LatencyHistogram.from_values([100, 200]),
            events=('%s:event' % self.name,))

    def stop(self):
        self.stopped += 1


class FakePublisher(publisher_base.Publisher):
    def __init__(self, fail=False, wanted=None):
        super().__init__(None)
        self.fail = fail
        self.samples = []
        self.closed = 0
        self.wanted = wanted
        self.enough = threading.Event()

    def publish(self, sample):
        if self.fail:
            raise exception.PublishError('store is down')
        self.samples.append(sample)
        if self.wanted and len(self.samples) >= self.wanted:
            self.enough.set()

    def close(self):
        self.closed += 1


class TestCollectorService(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags('multimodal_virt_collector', host='compute-1',
                   attribution=False)
        self.clock = base.FakeClock(10.0)

    def _service(self, probes, fallback=(), publishers=(), **kwargs):
        return service.CollectorService(
            self.conf, probes=list(probes), fallback_probes=list(fallback),
            publishers=list(publishers), clock=self.clock, **kwargs)

    def test_broken_probe_is_skipped_others_run(self):
        good = FakeProbe('block_io')
        bad = FakeProbe('gpu_ioctl', fail_start=True)
        fallback = FakeProbe('procfs', source='procfs')
        collector = self._service([('gpu_ioctl', bad), ('block_io', good)],
                                  fallback=[('procfs', fallback)])
        # The fallback fills the gap left by the broken probe.
        self.assertEqual(['block_io', 'procfs'], collector.start_probes())
        self.assertEqual(1, bad.stopped)  # cleaned up after its failure
        self.assertEqual(1, fallback.started)

    def test_no_fallback_when_every_probe_starts(self):
        fallback = FakeProbe('procfs', source='procfs')
        collector = self._service([('block_io', FakeProbe('block_io')),
                                   ('irq', FakeProbe('irq'))],
                                  fallback=[('procfs', fallback)])
        self.assertEqual(['block_io', 'irq'], collector.start_probes())
        self.assertEqual(0, fallback.started)

    def test_procfs_fallback_when_no_ebpf_probe_starts(self):
        bad = FakeProbe('block_io', fail_start=True)
        fallback = FakeProbe('procfs', source='procfs')
        publisher = FakePublisher()
        collector = self._service([('block_io', bad)],
                                  fallback=[('procfs', fallback)],
                                  publishers=[('store', publisher)])
        self.assertEqual(['procfs'], collector.start_probes())
        collector.load_publishers()
        self.clock.now += 2.0
        sample = collector.run_once()
        self.assertEqual('procfs', sample.source)
        self.assertEqual(2.0, sample.window_s)
        self.assertEqual([sample], publisher.samples)

    def test_no_probe_at_all_is_an_error(self):
        collector = self._service(
            [('block_io', FakeProbe('block_io', fail_start=True))],
            fallback=[('procfs', FakeProbe('procfs', fail_start=True))])
        err = self.assertRaises(exception.ProbeError,
                                collector.start_probes)
        self.assertIn('block_io', str(err))

    def test_failing_collect_and_publisher_do_not_stop_collection(self):
        good = FakeProbe('block_io')
        flaky = FakeProbe('irq', fail_collect=True)
        down = FakePublisher(fail=True)
        up = FakePublisher()
        collector = self._service([('block_io', good), ('irq', flaky)],
                                  publishers=[('placement', down),
                                              ('store', up)])
        collector.start_probes()
        collector.load_publishers()
        for _ in range(3):
            self.clock.now += 1.0
            self.assertIsNotNone(collector.run_once())
        self.assertEqual(3, len(up.samples))
        self.assertEqual('ebpf', up.samples[0].source)
        self.assertEqual(2, up.samples[0].io.count)

    def test_attribution_feeds_instance_rates(self):
        class Resolver(object):
            def resolve(self, pids):
                return {pid: UUID_A for pid in pids if pid == 42}

            def close(self):
                pass

        reading = probe_base.ProbeReading(
            source='ebpf', vm_exits_by_pid={42: 30, 43: 10},
            events=('kvm:kvm_exit',))
        collector = self._service(
            [('kvm_exit', FakeProbe('kvm_exit', reading=reading))],
            attributor=Resolver())
        collector.start_probes()
        self.clock.now += 2.0
        sample = collector.run_once()
        self.assertEqual(20.0, sample.vm_exit_rate)
        self.assertEqual({UUID_A: 15.0}, sample.vm_exits_by_instance)

    def test_zero_window_builds_nothing(self):
        collector = self._service([('block_io', FakeProbe('block_io'))])
        collector.start_probes()
        self.assertIsNone(collector.run_once())

    def test_stop_detaches_everything_once(self):
        probes = [('block_io', FakeProbe('block_io')),
                  ('irq', FakeProbe('irq'))]
        publisher = FakePublisher()
        collector = self._service(probes, publishers=[('store', publisher)])
        collector.start_probes()
        collector.load_publishers()
        collector.stop()
        collector.stop()
        self.assertEqual([1, 1], [p.stopped for _n, p in probes])
        self.assertEqual(1, publisher.closed)

    def test_periodic_loop_publishes_until_stopped(self):
        self.flags('multimodal_virt_collector', interval=0.1)
        publisher = FakePublisher(wanted=2)
        probe = FakeProbe('block_io')
        collector = service.CollectorService(
            self.conf, probes=[('block_io', probe)],
            publishers=[('store', publisher)])
        collector.start()
        self.addCleanup(collector.stop)
        self.assertTrue(publisher.enough.wait(30))
        collector.stop()
        collector.wait()
        self.assertEqual(1, probe.stopped)
        self.assertFalse(collector._thread.is_alive())
        self.assertTrue(all(s.host == 'compute-1'
                            for s in publisher.samples))


class TestLoadPlugins(base.TestCase):

    def test_unknown_names_are_reported_and_skipped(self):
        plugins = service.load_plugins(service.PROBE_NAMESPACE,
                                       ['nosuchprobe', 'procfs'], self.conf,
                                       'probe')
        self.assertEqual(['procfs'], [name for name, _p in plugins])
        self.assertIsInstance(plugins[0][1], procfs.ProcfsProbe)

    def test_probe_failing_to_load_is_reported_and_skipped(self):
        def broken(self, conf):
            raise ImportError('libbpf.so.1: cannot open shared object')
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.probes.procfs.ProcfsProbe.__init__',
            broken))
        logs = self.useFixture(fixtures.FakeLogger())
        plugins = service.load_plugins(service.PROBE_NAMESPACE, ['procfs'],
                                       self.conf, 'probe')
        self.assertEqual([], plugins)
        self.assertIn('Cannot load probe procfs', logs.output)
        self.assertIn('libbpf.so.1', logs.output)

    def test_describe_probes(self):
        self.flags('multimodal_virt_collector', probes=['procfs'],
                   fallback_probes=[])
        described = dict(service.describe_probes(self.conf))
        self.assertIn('diskstats', described['procfs'])

    def test_publishers_loaded_by_name(self):
        self.flags('multimodal_virt_collector', publishers=['store'])
        collector = service.CollectorService(self.conf)
        self.assertEqual(['store'], collector.load_publishers())
