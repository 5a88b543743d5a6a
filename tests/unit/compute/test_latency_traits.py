"""Latency-tier logic: hysteresis, dwell, stale samples, owned traits."""

import time

import fixtures
from nova.compute import provider_tree
from oslo_config import cfg

from multimodal_virt.compute import latency_traits as lt
from multimodal_virt import conf as mmv_conf
from multimodal_virt.conf import compute as compute_conf
from multimodal_virt import exception
from tests import base
from tests.functional import samples

NODE = 'node1'
FOREIGN = {'COMPUTE_NODE', 'CUSTOM_OPERATOR'}


class FakeStore:
    def __init__(self):
        self.samples = {}
        self.fail = False
        self.reads = 0

    def get(self, host):
        self.reads += 1
        if self.fail:
            raise exception.StoreUnavailable('down')
        return self.samples.get(host)


class NextTierTest(base.TestCase):

    T = lt.Thresholds(1000.0, 10000.0)

    def test_without_a_current_tier_there_is_no_band(self):
        self.assertEqual('LOW', lt.next_tier(None, 1000, self.T, 0.1))
        self.assertEqual('MEDIUM', lt.next_tier(None, 1001, self.T, 0.1))
        self.assertEqual('HIGH', lt.next_tier(None, 10001, self.T, 0.1))

    def test_moving_up_needs_the_raised_bound(self):
        self.assertEqual('LOW', lt.next_tier('LOW', 1100, self.T, 0.1))
        self.assertEqual('MEDIUM', lt.next_tier('LOW', 1101, self.T, 0.1))
        self.assertEqual('HIGH', lt.next_tier('LOW', 11001, self.T, 0.1))

    def test_moving_down_needs_the_lowered_bound(self):
        self.assertEqual('MEDIUM', lt.next_tier('MEDIUM', 901, self.T, 0.1))
        self.assertEqual('LOW', lt.next_tier('MEDIUM', 900, self.T, 0.1))
        self.assertEqual('HIGH', lt.next_tier('HIGH', 9001, self.T, 0.1))
        self.assertEqual('MEDIUM', lt.next_tier('HIGH', 9000, self.T, 0.1))
        self.assertEqual('LOW', lt.next_tier('HIGH', 10, self.T, 0.1))

    def test_thresholds_must_be_ordered(self):
        self.assertRaises(exception.MultimodalVirtError, lt.Thresholds,
                          10.0, 1.0)


class LatencyTraitsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags('multimodal_virt_compute', tier_min_dwell=300,
                   tier_hysteresis=0.1, sample_stale_after=120)
        self.store = FakeStore()
        # Sample timestamps may not be in the future: start in the past.
        self.clock = base.FakeClock(time.time() - 10000)
        self.traits = lt.LatencyTraits(self.conf.multimodal_virt_compute,
                                       'h', lambda: self.store, self.clock)
        self.tree = provider_tree.ProviderTree()
        self.tree.new_root(NODE, 'uuid-1')
        self.tree.update_traits(NODE, FOREIGN)
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.compute.latency_traits.MIN_READ_INTERVAL', 0))

    def _run(self, io_us=None, gpu_us=None, advance=0.0, age=0.0,
             gpu_exec_us=None):
        self.clock.now += advance
        if (io_us, gpu_us, gpu_exec_us) != (None, None, None):
            sample = samples.host_sample('h', io_us=io_us, gpu_us=gpu_us,
                                         gpu_exec_us=gpu_exec_us)
            self.store.samples['h'] = sample.__class__(**dict(
                vars(sample), timestamp=self.clock.now - age))
        self.traits.update(self.tree, NODE)
        traits = self.tree.data(NODE).traits
        self.assertLessEqual(FOREIGN, traits)
        return sorted(traits - FOREIGN)

    def test_one_trait_per_measured_metric(self):
        # gpu_cmd is gpu_submit's deprecated alias: its trait mirrors it.
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_HIGH',
                          'CUSTOM_MULTIMODAL_VIRT_GPU_EXEC_LAT_MEDIUM',
                          'CUSTOM_MULTIMODAL_VIRT_GPU_SUBMIT_LAT_HIGH',
                          'CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'],
                         self._run(io_us=100, gpu_us=50000,
                                   gpu_exec_us=5000))

    def test_gpu_exec_thresholds_and_hysteresis(self):
        self.flags('multimodal_virt_compute',
                   gpu_exec_latency_low_max_us=1000.0,
                   gpu_exec_latency_medium_max_us=17000.0)
        # Thresholds are read when nova-compute starts the driver.
        self.traits = lt.LatencyTraits(self.conf.multimodal_virt_compute,
                                       'h', lambda: self.store, self.clock)
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_GPU_EXEC_LAT_HIGH'],
                         self._run(gpu_exec_us=50000))
        # p99 of 9500 us values reads 16302 us in log2 buckets: below the
        # 17000 us MEDIUM bound, inside its 10 % band: stays HIGH.
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_GPU_EXEC_LAT_HIGH'],
                         self._run(gpu_exec_us=9500, advance=301))
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_GPU_EXEC_LAT_MEDIUM'],
                         self._run(gpu_exec_us=5000, advance=301))

    def test_a_collector_publishing_only_the_alias_feeds_gpu_submit(self):
        sample = samples.host_sample('h', gpu_us=50)
        self.store.samples['h'] = sample.__class__(**dict(
            vars(sample), gpu_submit=None, timestamp=self.clock.now))
        self.traits.update(self.tree, NODE)
        self.assertEqual({'CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_LOW',
                          'CUSTOM_MULTIMODAL_VIRT_GPU_SUBMIT_LAT_LOW'},
                         self.tree.data(NODE).traits - FOREIGN)

    def test_deprecated_threshold_names_set_gpu_submit(self):
        path = self.useFixture(fixtures.TempDir()).path + '/nova.conf'
        with open(path, 'w') as handle:
            handle.write('[multimodal_virt_compute]\n'
                         'gpu_cmd_latency_low_max_us = 7\n'
                         'gpu_cmd_latency_medium_max_us = 70\n')
        conf = cfg.ConfigOpts()
        mmv_conf.register_opts(conf)
        conf(['--config-file', path], project='multimodal-virt',
             default_config_files=[])
        group = conf.multimodal_virt_compute
        self.assertEqual((7.0, 70.0), (group.gpu_submit_latency_low_max_us,
                                       group.gpu_submit_latency_medium_max_us))
        traits = lt.LatencyTraits(group, 'h', lambda: self.store, self.clock)
        self.store.samples['h'] = samples.host_sample('h', gpu_us=50)
        traits.update(self.tree, NODE)
        self.assertIn('CUSTOM_MULTIMODAL_VIRT_GPU_SUBMIT_LAT_MEDIUM',
                      self.tree.data(NODE).traits)

    def test_trait_names_come_from_one_table(self):
        owned = lt.owned_traits()
        self.assertEqual(3 * len(set(compute_conf.TIER_METRICS) | set(
            lt.ALIASES)), len(owned))
        for metric in compute_conf.TIER_METRICS:
            self.assertIn(lt.trait_name(metric, 'HIGH'), owned)
        self.assertEqual({'gpu_cmd': 'gpu_submit'}, lt.ALIASES)
        self.assertIsNone(lt.tier_of('CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_LOW'))
        self.assertEqual(('gpu_exec', 'LOW'), lt.tier_of(
            'CUSTOM_MULTIMODAL_VIRT_GPU_EXEC_LAT_LOW'))

    def test_dwell_holds_then_releases(self):
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'],
                         self._run(io_us=100))
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'],
                         self._run(io_us=50000, advance=299))
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH'],
                         self._run(io_us=50000, advance=2))

    def test_stale_or_missing_sample_removes_ours_only(self):
        self._run(io_us=100)
        self.assertEqual([], self._run(io_us=100, age=121))
        self._run(io_us=100)
        del self.store.samples['h']
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'], self._run())
        self.assertEqual([], self._run(advance=121))

    def test_empty_window_keeps_the_tier(self):
        self._run(io_us=100)
        sample = self.store.samples['h']
        empty = sample.io.__class__(())
        self.store.samples['h'] = sample.__class__(**dict(
            vars(sample), io=empty, timestamp=self.clock.now + 10))
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'],
                         self._run(advance=10))

    def test_too_few_events_keep_the_tier(self):
        self._run(io_us=100)
        sample = samples.host_sample('h', io_us=50000, events=5)
        self.store.samples['h'] = sample.__class__(**dict(
            vars(sample), min_events={'p99': 10},
            timestamp=self.clock.now + 400))
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'],
                         self._run(advance=400))
        self.store.samples['h'] = sample.__class__(**dict(
            vars(sample), min_events={'p99': 5},
            timestamp=self.clock.now + 400))
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH'],
                         self._run(advance=400))

    def test_a_metric_declared_not_observable_has_no_trait(self):
        self._run(io_us=100, gpu_exec_us=100)
        sample = self.store.samples['h']
        self.store.samples['h'] = sample.__class__(**dict(
            vars(sample), observable={'gpu_exec': False},
            timestamp=self.clock.now + 10))
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'],
                         self._run(advance=10))

    def test_store_outage_keeps_last_sample_until_stale(self):
        self._run(io_us=100)
        self.store.fail = True
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'],
                         self._run(advance=60))
        self.assertEqual([], self._run(advance=61))

    def test_reads_are_rate_limited(self):
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.compute.latency_traits.MIN_READ_INTERVAL', 5))
        for _ in range(10):
            self._run()
        self.assertEqual(1, self.store.reads)

    def test_disabled_removes_our_traits(self):
        self._run(io_us=100)
        self.flags('multimodal_virt_compute', latency_traits=False)
        self.assertEqual([], self._run())

    def test_restart_resumes_from_the_provider_traits(self):
        self.tree.add_traits(NODE, 'CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH')
        # A restarted nova-compute resumes the tier it reported and dwells.
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH'],
                         self._run(io_us=100, advance=0))

    def test_a_broken_store_never_raises(self):
        traits = lt.LatencyTraits(self.conf.multimodal_virt_compute, 'h',
                                  _boom, self.clock)
        traits.update(self.tree, NODE)
        self.assertEqual(FOREIGN, set(self.tree.data(NODE).traits))


def _boom():
    raise RuntimeError('store driver import failed')
