"""LatencyFilter and LatencyWeigher inside Nova's real scheduler.

Nova 34 and Placement run in-process through Nova's functional test base
with fake computes; samples are published to a real file store (and a
memcached store that is down), and servers are booted through the API.
"""

from nova.tests.functional.api import client as api_client

from tests.functional.scheduler import base

HOSTS = base.SchedulingTestBase.hosts
WEIGHER = base.WEIGHER


class LatencySchedulingTest(base.SchedulingTestBase):
    """Boots land according to published latency."""

    def test_boot_lands_on_lowest_latency_host(self):
        self._publish(host1=(1000, None, 0), host2=(60, None, 0),
                      host3=(4000, None, 0), host4=(250, None, 0))
        self.assertEqual('host2', self._boot())

    def test_gpu_and_io_latency_are_blended(self):
        # host1 has the best I/O but a congested GPU command path.
        self._publish(host1=(60, 4000, 0), host2=(250, 60, 0),
                      host3=(1000, 1000, 0), host4=(4000, 4000, 0))
        self.assertEqual('host2', self._boot())
        # Weighing only I/O prefers host1.
        self.flags(gpu_cmd_weight=0.0, group='multimodal_virt_scheduler')
        self.assertEqual('host1', self._boot())

    def test_slo_flavor_refused_by_over_slo_hosts(self):
        # host1 has the best blend but I/O p99 over 500 us.
        self._publish(host1=(1000, 30, 0), host2=(250, 2000, 0),
                      host3=(60, 4000, 0), host4=(4000, 4000, 0))
        slo_flavor = self._create_flavor(
            name='slo', memory_mb=256, vcpu=1, disk=1, ephemeral=0,
            extra_spec={'multimodal_virt:io_p99_us': '500'})
        self.assertEqual('host1', self._boot())
        self.assertEqual('host2', self._boot(slo_flavor))

    def test_unmeetable_slo_gives_no_valid_host(self):
        self._publish(host1=(1000, None, 0), host2=(1000, None, 0),
                      host3=(4000, None, 0), host4=(4000, None, 0))
        slo_flavor = self._create_flavor(
            name='strict', memory_mb=256, vcpu=1, disk=1, ephemeral=0,
            extra_spec={'multimodal_virt:io_p95_us': '100'})
        server = self._create_server(flavor_id=slo_flavor, networks='none',
                                     expected_state='ERROR')
        self.assertIn('No valid host', server['fault']['message'])

    def test_api_refuses_malformed_slo_extra_specs(self):
        flavor = self.api_fixture.admin_api.post_flavor(
            self._build_flavor(name='typo', memory_mb=256, vcpu=1, disk=1))
        for key, value in (('multimodal_virt:io_p99_us', 'fast'),
                           ('multimodal_virt:io_p98_us', '100'),
                           ('multimodal_virt:gpu_p99_us', '100'),
                           ('multimodal_virt:io_p99_us', '0')):
            error = self.assertRaises(
                api_client.OpenStackApiException,
                self.api_fixture.admin_api.post_extra_spec, flavor['id'],
                {'extra_specs': {key: value}})
            self.assertEqual(400, error.response.status_code, key)
        self.api_fixture.admin_api.post_extra_spec(
            flavor['id'], {'extra_specs': {'multimodal_virt:io_p99_us':
                                           '750'}})

    def test_stale_sample_rejected_by_policy(self):
        self._publish(host1=(60, None, 600), host2=(250, None, 0),
                      host3=(1000, None, 0), host4=(4000, None, 0))
        self.flags(stale_after=60.0, stale_policy='reject',
                   group='multimodal_virt_scheduler')
        self.assertEqual('host2', self._boot())

    def test_stale_sample_penalized_by_policy(self):
        self._publish(host1=(60, None, 600), host2=(250, None, 0),
                      host3=(1000, None, 0), host4=(4000, None, 0))
        self.flags(stale_after=60.0, stale_policy='penalize',
                   group='multimodal_virt_scheduler')
        self.assertEqual('host2', self._boot())
        # Trusted as fresh, host1 would have won.
        self.flags(stale_after=3600.0, group='multimodal_virt_scheduler')
        self.assertEqual('host1', self._boot())

    def test_host_without_sample_keeps_others_ranked(self):
        # host4 never reported: it must neither crash scheduling nor win
        # over the best reporting host (MetricsWeigher's -10000 default
        # would instead wipe the ranking of the others).
        self._publish(host1=(1000, None, 0), host2=(60, None, 0),
                      host3=(4000, None, 0))
        self.assertEqual('host2', self._boot())

    def test_back_to_back_boots_spread_by_herd_guard(self):
        # herd_spread_boots=3 and a penalty of (250 - 60) / 2.5 us per boot:
        # three boots on the best host, then the next-best gets one, then
        # they alternate; hosts 4x slower get none.
        self._publish(host1=(60, None, 0), host2=(250, None, 0),
                      host3=(1000, None, 0), host4=(4000, None, 0))
        order = [self._boot() for _ in range(6)]
        self.assertEqual(['host1'] * 3 + ['host2', 'host1', 'host2'], order)

    def test_without_herd_penalty_a_burst_piles_on_one_host(self):
        # The control for the test above: a negligible penalty per boot.
        self.flags(herd_penalty_us=0.001, group='multimodal_virt_scheduler')
        self._publish(host1=(60, None, 0), host2=(250, None, 0),
                      host3=(1000, None, 0), host4=(4000, None, 0))
        self.assertEqual({'host1': 4}, dict(self._boot_burst(4)))

    def test_new_sample_resets_herd_count(self):
        self._publish(host1=(60, None, 0), host2=(250, None, 0),
                      host3=(1000, None, 0), host4=(4000, None, 0))
        self.assertEqual({'host1': 3, 'host2': 1},
                         dict(self._boot_burst(4)))
        # host1 reports again; its boots are now in its latency.
        self._publish(host1=(60, None, 0))
        self.assertEqual('host1', self._boot())


class StoreDownSchedulingTest(LatencySchedulingTest):
    """A memcached store that does not answer: servers still boot.

    Nova's own weighers run beside ours; with no latency data our weigher
    must leave Nova's default spreading (RAMWeigher) in charge.
    """

    def _configure_store(self):
        self.flags(driver='memcached', memcached_servers=['127.0.0.1:9'],
                   socket_timeout=0.2, group='multimodal_virt_store')
        self.flags(weight_classes=['nova.scheduler.weights.all_weighers',
                                   WEIGHER], group='filter_scheduler')

    def test_boot_lands_on_lowest_latency_host(self):
        # Published to the file store, which this scheduler does not read.
        self._publish(host1=(1000, None, 0), host2=(60, None, 0))
        hosts = [self._boot() for _ in range(4)]
        self.assertEqual(set(HOSTS), set(hosts))
        # Filter and weigher share one provider: one rate-limited warning,
        # not one per plugin, request or host.
        warnings = self.stdlog.logger.output.count(
            'Latency stats unavailable')
        self.assertEqual(1, warnings)


def load_tests(loader, standard_tests, pattern):
    """Only run the one store-down scenario, not every inherited test."""
    suite = loader.suiteClass()
    suite.addTests(loader.loadTestsFromTestCase(LatencySchedulingTest))
    suite.addTest(StoreDownSchedulingTest(
        'test_boot_lands_on_lowest_latency_host'))
    return suite
