"""Rebuilds, staleness, store outages, bursts and multipliers in real Nova.

Each test drives Nova 34's API, conductor, scheduler (with LatencyFilter
and LatencyWeigher, fed by the background refresher) and fake computes with
real Placement, as a user would.
"""

import os
import shutil
import time

from nova.tests.functional import integrated_helpers
from oslo_config import cfg

from multimodal_virt.conf import scheduler as scheduler_opts
from multimodal_virt.stores import loader
from tests.functional import fixtures as mmv_fixtures
from tests.functional import requirements
from tests.functional import samples
from tests.functional.scheduler import base

SLO = {'multimodal_virt:io_p99_us': '500'}
OTHER_IMAGE = 'a2459075-d96c-40d5-893e-577ff92e721c'


class RebuildTest(base.SchedulingTestBase):

    def test_rebuild_after_slo_breach_stays_active(self):
        slo_flavor = self._create_flavor(
            name='slo', memory_mb=256, vcpu=1, disk=1, ephemeral=0,
            extra_spec=SLO)
        self._publish(host1=(60, None, 0), host2=(4000, None, 0),
                      host3=(4000, None, 0), host4=(4000, None, 0))
        self._await_refresh()
        server = self._create_server(flavor_id=slo_flavor, networks='none')
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        # host1 goes over the flavor's SLO: new boots of the flavor are
        # refused everywhere...
        self._publish(host1=(5000, None, 0))
        self._await_refresh()
        refused = self._create_server(flavor_id=slo_flavor, networks='none',
                                      expected_state='ERROR')
        self.assertIn('No valid host', refused['fault']['message'])
        # ...but rebuilding the server in place with a new image (which
        # goes through the scheduler) is not a placement decision.
        self.assertNotEqual(OTHER_IMAGE, server['image']['id'])
        rebuilt = self._rebuild_server(server, OTHER_IMAGE)
        self.assertEqual('ACTIVE', rebuilt['status'])
        self.assertEqual('host1', rebuilt['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(OTHER_IMAGE, rebuilt['image']['id'])


class StalenessTest(base.SchedulingTestBase):

    def test_all_stale_blocks_only_slo_flavors(self):
        self.flags(stale_after=60.0, stale_policy='reject',
                   group='multimodal_virt_scheduler')
        slo_flavor = self._create_flavor(
            name='slo', memory_mb=256, vcpu=1, disk=1, ephemeral=0,
            extra_spec=SLO)
        self._publish(host1=(60, None, 600), host2=(60, None, 600),
                      host3=(60, None, 600), host4=(60, None, 600))
        # A flavor without latency SLOs boots whatever the samples say.
        self.assertIn(self._boot(), self.hosts)
        # A flavor with an SLO cannot be judged on stale samples.
        self._await_refresh()
        server = self._create_server(flavor_id=slo_flavor, networks='none',
                                     expected_state='ERROR')
        self.assertIn('No valid host', server['fault']['message'])


class MemcachedSchedulingTest(base.SchedulingTestBase):
    """The scheduler reads a real memcached that the test can kill."""

    def _configure_store(self):
        requirements.require(self, shutil.which('memcached'),
                             'memcached binary not installed')
        self.memcached = self.useFixture(mmv_fixtures.MemcachedFixture())
        self.flags(driver='memcached',
                   memcached_servers=[self.memcached.server],
                   key_prefix='sched%d' % self.memcached.port,
                   socket_timeout=0.5, group='multimodal_virt_store')

    def setUp(self):
        super().setUp()
        self.store = loader.get_store(cfg.CONF)
        self.slo_flavor = self._create_flavor(
            name='slo', memory_mb=256, vcpu=1, disk=1, ephemeral=0,
            extra_spec=SLO)

    def _boot_slo(self, expected_state='ACTIVE'):
        self._await_refresh()
        server = self._create_server(flavor_id=self.slo_flavor,
                                     networks='none',
                                     expected_state=expected_state)
        if expected_state == 'ERROR':
            self.assertIn('No valid host', server['fault']['message'])
            return None
        return server['OS-EXT-SRV-ATTR:host']

    def _age_into_stale(self):
        """Let the samples read so far be older than ``stale_after``.

        Boots take seconds on a loaded CI machine, so the tests run with a
        long horizon and shorten it here rather than racing a short one:
        the samples the scheduler keeps are judged again at every refresh.
        """
        self.flags(stale_after=1.0, group='multimodal_virt_scheduler')
        time.sleep(1.5)
        self._await_refresh()

    def test_store_down_keeps_last_ranking_until_stale(self):
        self.flags(stale_after=600.0, stale_policy='reject',
                   group='multimodal_virt_scheduler')
        self._publish(host1=(1000, None, 0), host2=(60, None, 0),
                      host3=(4000, None, 0), host4=(250, None, 0))
        self.assertEqual('host2', self._boot_slo())
        # The refreshes run in the refresh worker, a child of this
        # nova-scheduler; what it logs below reaches the scheduler's log.
        worker = self.provider._refresh_worker
        self.assertNotIn(worker.pid, (None, os.getpid()))
        with open('/proc/%d/cmdline' % worker.pid, 'rb') as cmdline:
            self.assertIn(b'multimodal_virt.scheduler.refresh_worker',
                          cmdline.read())
        self.memcached.stop()  # the store goes down mid-run
        self.assertEqual('host2', self._boot_slo())
        self.assertEqual('host2', self._boot())
        self.assertIn('Latency stats unavailable', self.stdlog.logger.output)
        # The last samples age into the stale policy: SLO flavors can no
        # longer be judged, flavors without SLOs still boot.
        self._age_into_stale()
        self.assertTrue(all(self.provider.snapshot().stale))
        self._boot_slo(expected_state='ERROR')
        self.assertIn(self._boot(), self.hosts)

    def test_dead_host_stays_rejected_after_its_key_expires(self):
        self.flags(stale_after=600.0, stale_policy='reject',
                   group='multimodal_virt_scheduler')
        self.flags(sample_ttl=2, group='multimodal_virt_store')
        self.store = loader.get_store(cfg.CONF)
        # Only host1 meets the SLO.
        self._publish(host1=(60, None, 0), host2=(4000, None, 0),
                      host3=(4000, None, 0), host4=(4000, None, 0))
        self.assertEqual('host1', self._boot_slo())
        # host1's collector dies; the others keep publishing. Its key
        # expires before its sample is stale...
        time.sleep(3.5)
        self._publish(host2=(4000, None, 0), host3=(4000, None, 0),
                      host4=(4000, None, 0))
        self.assertNotIn('host1', self.store.get_all())
        # ...and the scheduler still judges it by that sample, not as a host
        # without one: still chosen while fresh...
        self.assertEqual('host1', self._boot_slo())
        # ...and rejected once stale, as it would have been had its key not
        # expired (without the record it would pass as "no sample").
        self._age_into_stale()
        snapshot = self.provider.snapshot()
        self.assertTrue(snapshot.stale[snapshot.row('host1')])
        self._boot_slo(expected_state='ERROR')


class BurstTestMixin(object):
    """Separate create requests sent at once spread like a multi-create."""

    burst = 8

    def _assert_same_spread(self, multi, burst):
        self.assertEqual(self.burst, sum(multi.values()))
        self.assertEqual(self.burst, sum(burst.values()))
        self.assertEqual(multi[self.best], burst[self.best],
                         (multi, burst))
        self.assertEqual(sorted(multi.values()), sorted(burst.values()),
                         (multi, burst))

    def test_concurrent_burst_spreads_like_multi_create(self):
        self._publish_latencies()
        multi = self._multi_create(self.burst)
        self._publish_latencies()  # new samples: the herd count restarts
        burst = self._boot_concurrently(self.burst)
        self._assert_same_spread(multi, burst)
        self._assert_herd_spread_boots(burst)


class FiveHostBurstTest(BurstTestMixin, base.SchedulingTestBase):

    hosts = ('host1', 'host2', 'host3', 'host4', 'host5')
    best = 'host1'

    def _publish_latencies(self):
        self._publish(host1=(60, None, 0), host2=(250, None, 0),
                      host3=(1000, None, 0), host4=(4000, None, 0),
                      host5=(4000, None, 0))

    def _assert_herd_spread_boots(self, placed):
        # Penalty (250 - 60) / 2.5 per boot: host1 takes 5 of 8, host2 3.
        self.assertEqual({'host1': 5, 'host2': 3}, dict(placed))

    def test_without_herd_guard_the_burst_piles_up(self):
        # The control: a negligible penalty per boot.
        self.flags(herd_penalty_us=0.001, group='multimodal_virt_scheduler')
        self._publish_latencies()
        self.assertEqual({self.best: self.burst},
                         dict(self._boot_concurrently(self.burst)))


class TwelveHostBurstTest(BurstTestMixin, base.SchedulingTestBase):
    """One host stands out among 12: p10 == p90 of the others."""

    hosts = tuple('host%02d' % i for i in range(1, 13))
    best = 'host01'

    def _publish_latencies(self):
        latencies = {host: (1000, None, 0) for host in self.hosts}
        latencies['host01'] = (60, None, 0)
        self._publish(**latencies)

    def _assert_herd_spread_boots(self, placed):
        # herd_spread_boots = 3 boots on the standout, then one each on
        # the others (the old penalty collapsed: ~50 boots on host01).
        self.assertEqual(3, placed['host01'], placed)
        self.assertEqual([1] * 5, sorted(
            count for host, count in placed.items() if host != 'host01'))


class WeightMultiplierTest(base.SchedulingTestBase):
    """Our weigher next to Nova's default weighers, as the README says."""

    weight_classes = ('nova.scheduler.weights.all_weighers', base.WEIGHER)

    def test_default_multiplier_outweighs_nova_resource_weighers(self):
        # host1 has the lowest latency but the least free RAM, disk and
        # CPU (two servers on it): every resource weigher prefers others.
        for _ in range(2):
            self._create_server(flavor_id=self.flavor_id, networks='none',
                                host='host1')
        self._publish(host1=(60, None, 0), host2=(4000, None, 0),
                      host3=(4000, None, 0), host4=(4000, None, 0))
        self.flags(weight_multiplier=1.0, group='multimodal_virt_scheduler')
        self.assertNotEqual('host1', self._boot())  # outvoted at 1
        self.flags(weight_multiplier=10.0,
                   group='multimodal_virt_scheduler')
        self._publish(host1=(60, None, 0))  # reset its herd count
        self.assertEqual('host1', self._boot())
        default, = [opt.default for opt in scheduler_opts.OPTS
                    if opt.name == 'weight_multiplier']
        self.assertEqual(10.0, default)


class TwoNodeHostTest(base.SchedulingTestBase):
    """One nova-compute service host with two nodes, weighed per node."""

    hosts = ('host1', 'host2')

    def setUp(self):
        super().setUp()
        # How Nova's own functional tests give one service several nodes.
        compute = self.computes['host1']
        compute.manager.driver._set_nodes(['host1', 'host1-b'])
        compute.manager.update_available_resource(
            integrated_helpers.context.get_admin_context())
        nodes = {h['hypervisor_hostname'] for h in
                 self.admin_api.api_get('/os-hypervisors').body[
                     'hypervisors']}
        self.assertEqual({'host1', 'host1-b', 'host2'}, nodes)

    def _publish_nodes(self, latencies):
        for (host, node), io_us in latencies.items():
            self.store.put(samples.host_sample(host, io_us=io_us,
                                               nodename=node))

    def _boot_node(self, flavor_id=None):
        self._await_refresh()
        server = self._create_server(
            flavor_id=flavor_id or self.flavor_id, networks='none')
        return (server['OS-EXT-SRV-ATTR:host'],
                server['OS-EXT-SRV-ATTR:hypervisor_hostname'])

    def test_nodes_of_one_host_weighed_apart(self):
        self._publish_nodes({('host1', 'host1'): 4000,
                             ('host1', 'host1-b'): 60,
                             ('host2', None): 1000})
        self.assertEqual(('host1', 'host1-b'), self._boot_node())
        self._publish_nodes({('host1', 'host1'): 60,
                             ('host1', 'host1-b'): 4000})
        self.assertEqual(('host1', 'host1'), self._boot_node())

    def test_nodes_of_one_host_filtered_apart(self):
        slo_flavor = self._create_flavor(
            name='slo', memory_mb=256, vcpu=1, disk=1, ephemeral=0,
            extra_spec=SLO)
        self._publish_nodes({('host1', 'host1'): 4000,
                             ('host1', 'host1-b'): 60,
                             ('host2', None): 1000})
        for _ in range(2):
            self.assertEqual(('host1', 'host1-b'),
                             self._boot_node(slo_flavor))
