"""Latency-tier traits reported by nova-compute running our driver.

Two computes with ``compute_driver = multimodal_virt.LibvirtDriver`` read
their own samples from a real file stats store (what the collector on each
host publishes); Nova's resource tracker sends the traits to real Placement
with its own report client; the real scheduler honours a flavor that
forbids the high-latency trait.
"""

import time

import fixtures

from multimodal_virt.compute import latency_traits
from multimodal_virt import conf as mmv_conf
from multimodal_virt.stores import loader
from tests import base as test_base
from tests.functional.compute import base
from tests.functional import samples

IO_HIGH = 'CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH'
IO_LOW = 'CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'
OPERATOR_TRAIT = 'CUSTOM_OPERATOR_RACK_A'


class LatencyTraitsTest(base.ShimServersTestBase):

    def setUp(self):
        super().setUp()
        store_dir = self.useFixture(fixtures.TempDir()).path
        self.flags(driver='file', file_path=store_dir,
                   signing_keys=[test_base.TEST_SIGNING_KEY],
                   group='multimodal_virt_store')
        self.flags(tier_min_dwell=0, group='multimodal_virt_compute')
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.compute.latency_traits.MIN_READ_INTERVAL', 0))
        self.store = loader.get_store(mmv_conf.CONF)
        self.start_compute('compute1')
        self.start_compute('compute2')

    def _publish(self, host, io_us, age=0.0, **gpu):
        self.store.put(samples.host_sample(host, io_us=io_us, age=age,
                                           **gpu))

    def _tiers(self, host):
        traits = self._get_provider_traits(self.compute_rp_uuids[host])
        return sorted(t for t in traits if t in latency_traits.owned_traits())

    def _refresh(self):
        self._run_periodics()

    def test_traits_follow_the_local_sample_and_scheduling_avoids_high(self):
        rp1 = self.compute_rp_uuids['compute1']
        nova_traits = set(self._get_provider_traits(rp1))
        self.placement.put('/traits/%s' % OPERATOR_TRAIT, None,
                           version='1.6')
        self._set_provider_traits(rp1, sorted(nova_traits | {OPERATOR_TRAIT}))
        self._publish('compute1', io_us=50000)
        self._publish('compute2', io_us=100)
        self._refresh()
        self.assertEqual([IO_HIGH], self._tiers('compute1'))
        self.assertEqual([IO_LOW], self._tiers('compute2'))
        after = set(self._get_provider_traits(rp1))
        # Nova's own traits and an operator's trait are left alone.
        self.assertLessEqual(nova_traits | {OPERATOR_TRAIT}, after)

        flavor = self._create_flavor(extra_spec={
            'trait:%s' % IO_HIGH: 'forbidden'})
        # A burst: every request sent before any is waited for.
        servers = [self.api.post_server({'server': {
            'name': 'burst-%d' % i, 'flavorRef': flavor,
            'imageRef': '155d900f-4e14-4e4c-a73d-069cbf4541e6',
            'networks': 'none'}}) for i in range(3)]
        for server in servers:
            server = self._wait_for_state_change(server, 'ACTIVE')
            self.assertEqual('compute2', server['OS-EXT-SRV-ATTR:host'])

    def test_dwell_holds_a_tier_and_stale_samples_remove_it(self):
        self.flags(sample_stale_after=100000,
                   group='multimodal_virt_compute')
        self._publish('compute1', io_us=50000)
        self._refresh()
        self.assertEqual([IO_HIGH], self._tiers('compute1'))

        self.flags(tier_min_dwell=3600, group='multimodal_virt_compute')
        self._publish('compute1', io_us=100)
        self._refresh()
        self.assertEqual([IO_HIGH], self._tiers('compute1'))  # dwelling

        driver = self.computes['compute1'].driver
        driver._latency_traits._clock = lambda: time.time() + 3700
        self._refresh()
        self.assertEqual([IO_LOW], self._tiers('compute1'))

        self.flags(sample_stale_after=60, group='multimodal_virt_compute')
        self._publish('compute1', io_us=100, age=120)
        self._refresh()
        self.assertEqual([], self._tiers('compute1'))

    def test_hysteresis_keeps_a_tier_inside_the_band(self):
        # p99 of 900 us samples is 1018.88 us (log2 buckets): above the
        # 1000 us LOW bound, inside its 10 % band.
        self._publish('compute1', io_us=100)
        self._refresh()
        self.assertEqual([IO_LOW], self._tiers('compute1'))
        self._publish('compute1', io_us=900)
        self._refresh()
        self.assertEqual([IO_LOW], self._tiers('compute1'))
        self.flags(tier_hysteresis=0.0, group='multimodal_virt_compute')
        self._refresh()
        self.assertEqual(['CUSTOM_MULTIMODAL_VIRT_IO_LAT_MEDIUM'],
                         self._tiers('compute1'))

    def test_forbidding_the_gpu_exec_high_trait_avoids_that_host(self):
        name = latency_traits.trait_name
        self._publish('compute1', io_us=100, gpu_exec_us=50000, gpu_us=50)
        self._publish('compute2', io_us=100, gpu_exec_us=500, gpu_us=5000)
        self._refresh()
        self.assertEqual(sorted([
            name('io', 'LOW'), name('gpu_exec', 'HIGH'),
            name('gpu_submit', 'LOW'), name('gpu_cmd', 'LOW')]),
            self._tiers('compute1'))
        self.assertEqual(sorted([
            name('io', 'LOW'), name('gpu_exec', 'LOW'),
            name('gpu_submit', 'HIGH'), name('gpu_cmd', 'HIGH')]),
            self._tiers('compute2'))

        flavor = self._create_flavor(extra_spec={
            'trait:%s' % name('gpu_exec', 'HIGH'): 'forbidden'})
        servers = [self.api.post_server({'server': {
            'name': 'exec-%d' % i, 'flavorRef': flavor,
            'imageRef': '155d900f-4e14-4e4c-a73d-069cbf4541e6',
            'networks': 'none'}}) for i in range(3)]
        for server in servers:
            server = self._wait_for_state_change(server, 'ACTIVE')
            self.assertEqual('compute2', server['OS-EXT-SRV-ATTR:host'])

        # The deprecated gpu_cmd trait still steers like gpu_submit's.
        flavor = self._create_flavor(extra_spec={
            'trait:%s' % name('gpu_cmd', 'HIGH'): 'forbidden'})
        server = self._create_server(flavor_id=flavor, networks='none')
        self.assertEqual('compute1', server['OS-EXT-SRV-ATTR:host'])
