"""Nova's real scheduler with our plugins, for the functional tests.

Nova 34 and Placement run in-process through Nova's functional test base
with fake computes; samples go to a real store, the scheduler's background
refresher reads it, and servers are booted through the API.
"""

import collections
import threading
import time

import fixtures
from nova.tests.functional.api import client as api_client
from nova.tests.functional import integrated_helpers
from oslo_config import cfg

from multimodal_virt import conf as mmv_conf
from multimodal_virt.scheduler import provider as provider_mod
from multimodal_virt.stores import file as file_store
from tests import base as test_base
from tests.functional import nova_env
from tests.functional import samples

FILTER = 'multimodal_virt.scheduler.latency_filter.LatencyFilter'
WEIGHER = 'multimodal_virt.scheduler.latency_weigher.LatencyWeigher'
REFRESH_INTERVAL = 0.05


class SchedulingTestBase(integrated_helpers.ProviderUsageBaseTestCase):
    """Boots through Nova's API with LatencyFilter and LatencyWeigher."""

    compute_driver = 'fake.MediumFakeDriver'
    microversion = '2.86'  # flavor extra specs are validated from 2.86
    hosts = ('host1', 'host2', 'host3', 'host4')
    weight_classes = (WEIGHER,)

    def setUp(self):
        self.stats_dir = self.useFixture(fixtures.TempDir()).path
        mmv_conf.register_opts(cfg.CONF)
        self.flags(api_paste_config=nova_env.api_paste_config(),
                   group='wsgi')
        self.flags(available_filters=['nova.scheduler.filters.all_filters',
                                      FILTER],
                   enabled_filters=['ComputeFilter', 'LatencyFilter'],
                   weight_classes=list(self.weight_classes),
                   group='filter_scheduler')
        self.flags(driver='file', file_path=self.stats_dir,
                   signing_keys=[test_base.TEST_SIGNING_KEY],
                   group='multimodal_virt_store')
        # Boots take seconds on a loaded CI machine: samples published at
        # the start of a test stay fresh unless a test sets its own horizon.
        self.flags(refresh_interval=REFRESH_INTERVAL, stale_after=3600.0,
                   group='multimodal_virt_scheduler')
        # Bursts of servers: no quota in the way.
        self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        self._configure_store()
        super().setUp()
        self.addCleanup(self._stop_refresher)
        self.store = file_store.FileStore(cfg.CONF)
        for host in self.hosts:
            self._start_compute(host)
        self.flavor_id = self._create_flavor(
            name='small', memory_mb=256, vcpu=1, disk=1, ephemeral=0)

    def _configure_store(self):
        """Hook for subclasses to point the scheduler at another store."""

    @staticmethod
    def _stop_refresher():
        """One scheduler per test: its refresher must not outlive it."""
        registry = provider_mod.SnapshotProvider._shared
        stopped = registry.pop(id(cfg.CONF), None)
        if stopped is not None:
            stopped.close()

    @property
    def provider(self):
        """The scheduler's snapshot provider (shared by both plugins)."""
        return provider_mod.SnapshotProvider.shared(cfg.CONF)

    def _await_refresh(self, timeout=30.0):
        """Wait until the refresher swapped in a snapshot read from now on."""
        mark = time.time()
        deadline = time.monotonic() + timeout
        # The refresher's own snapshot: before its first refresh (the
        # refresh worker still starting) snapshot() is an empty one.
        while getattr(self.provider._snapshot, 'taken_at', 0.0) <= mark:
            if time.monotonic() > deadline:
                self.fail('the snapshot refresher did not refresh')
            time.sleep(REFRESH_INTERVAL / 2)

    def _publish(self, **latencies):
        """Publish one sample per host: ``host1=(io_us, gpu_us, age)``."""
        for host, (io_us, gpu_us, age) in latencies.items():
            self.store.put(samples.host_sample(host, io_us=io_us,
                                               gpu_us=gpu_us, age=age))

    def _boot(self, flavor_id=None, expected_state='ACTIVE'):
        self._await_refresh()
        server = self._create_server(
            flavor_id=flavor_id or self.flavor_id, networks='none',
            expected_state=expected_state)
        return server['OS-EXT-SRV-ATTR:host']

    def _boot_burst(self, count):
        """``count`` boots one after the other."""
        return collections.Counter(self._boot() for _ in range(count))

    def _boot_concurrently(self, count):
        """``count`` separate create requests sent without waiting."""
        self._await_refresh()
        posted = [None] * count
        errors = []

        def post(index):
            try:
                # One client per caller, as separate users would have.
                client = api_client.TestOpenStackClient(
                    self.api.auth_user, self.api.base_url,
                    project_id=self.api.project_id, roles=self.api.roles)
                client.microversion = self.api.microversion
                body = self._build_server(flavor_id=self.flavor_id,
                                          networks='none')
                posted[index] = client.post_server({'server': body})
            except Exception as err:  # reported by the test below
                errors.append(err)

        threads = [threading.Thread(target=post, args=(i,))
                   for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual([], errors)
        return self._placements(posted)

    def _multi_create(self, count):
        """One create request for ``count`` servers."""
        self._await_refresh()
        body = self._build_server(flavor_id=self.flavor_id, networks='none')
        body.update(min_count=count, max_count=count,
                    name='multi-%s' % time.monotonic())
        self.api.post_server({'server': body})
        servers = [s for s in self.api.get_servers()
                   if s['name'].startswith(body['name'])]
        self.assertEqual(count, len(servers))
        return self._placements(servers)

    def _placements(self, servers):
        placed = collections.Counter()
        for server in servers:
            # Generous: a burst of builds on a loaded 2-CPU CI machine.
            active = self._wait_for_server_parameter(
                server, {'status': 'ACTIVE'}, max_retries=240)
            placed[active['OS-EXT-SRV-ATTR:host']] += 1
        return placed
