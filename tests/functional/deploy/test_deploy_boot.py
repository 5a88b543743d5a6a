"""A VF flavor boots from the configs devstack and kolla generate.

The plugin's phases run for a controller (keystone, nova-api,
nova-scheduler; no VFs) and for a GPU compute (nova-compute, the
collector), as in ``test_devstack_plugin``. Nova 34 then starts in-process
through its own functional base (``_PCIServersTestBase``: real API,
conductor, scheduler, Placement, the libvirt driver over fakelibvirt with
the compute's VFs) with the options of those two nova.conf files: the
controller's for the API and scheduler, the compute's for nova-compute
(one process has one CONF, so every option both files set must agree,
which the test checks). The stats store is a real memcached, named to
the plugin as devstack's MEMCACHE_SERVERS would be. In the devstack
variant the controller's aggregator runs from the command the plugin
hands devstack's process runner, and the scheduler's refreshes switch to
the aggregate it publishes.

The kolla variant renders nova-api.conf and nova-scheduler.conf (the
controller) and nova-compute.conf (with the compute's generated PCI
config) through kolla-ansible's merge_configs, with memcached in the
inventory, and boots the same way.
"""

import json
import os
import time

import fixtures
from nova import context as nova_context
from nova import objects
from nova.tests.functional.libvirt import test_pci_sriov_servers
from oslo_config import cfg

from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import sysfs
from multimodal_virt.scheduler import provider as provider_mod
from multimodal_virt.stores import loader
from tests.fixtures import sysfs_builder as layouts
from tests.functional.deploy import devstack_runner as runner
from tests.functional.deploy import kolla_render
from tests.functional.deploy import test_kolla
from tests.functional import fixtures as mmv_fixtures
from tests.functional import nova_env
from tests.functional.pci import test_nova_generated_config as generated_boot
from tests.functional import requirements
from tests.functional import samples

HOST = 'compute1'
LAYOUT = 'intel-flex170'  # VFs at functions 1..N, as fakelibvirt needs
CONTROLLER = 'key,n-api,n-sch,n-cond,placement-api,mysql,rabbit'
COMPUTE = 'n-cpu,q-agt'
# Options nova-compute reads that the compute's nova.conf sets.
COMPUTE_OPTIONS = (('pci', 'device_spec'), ('pci', 'alias'),
                   ('pci', 'report_in_placement'),
                   ('compute', 'provider_config_location'))


def read_options(path):
    """``{section: {key: [values]}}`` of a generated nova.conf."""
    with open(path) as handle:
        return kolla_render.parse(handle.read())


def merged_options(*option_sets):
    """Union of parsed configs; an option set twice must agree."""
    merged = {}
    for options in option_sets:
        for section, values in options.items():
            target = merged.setdefault(section, {})
            for key, value in values.items():
                if key in target and target[key] != value:
                    raise AssertionError('[%s] %s differs: %s / %s'
                                         % (section, key, target[key], value))
                target[key] = value
    return merged


class _ConfigBootBase(test_pci_sriov_servers._PCIServersTestBase):
    """Boot checks; subclasses say how the two nova.conf are made."""

    ADMIN_API = True
    microversion = 'latest'
    # The generated enabled_filters are used as they are.
    ADDITIONAL_FILTERS = []
    PCI_DEVICE_SPEC = []
    PCI_ALIAS = []

    def _apply(self, options, sections):
        """self.flags() for every option of ``sections``.

        :returns: the (section, key) pairs Nova and we do not define.
        """
        unknown = []
        for section in sections:
            for key, values in options.get(section, {}).items():
                try:
                    opt = cfg.CONF._get_opt_info(key, section)['opt']
                except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
                    unknown.append((section, key))
                    continue
                value = values if opt.multi else values[-1]
                self.flags(group=section, **{key: value})
        return unknown

    def generate(self, tmp, sysfs_root, memcached):
        """Write the controller's and compute's nova.conf.

        :returns: ``(controller_options, compute_options)``, each
            ``{section: {key: [values]}}``.
        """
        raise NotImplementedError

    def setUp(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        memcached = self.useFixture(mmv_fixtures.MemcachedFixture())
        tree = self.useFixture(layouts.SysfsTree(LAYOUT))
        self.pfs = sysfs.discover(tree.root)
        self.controller_options, self.compute_options = self.generate(
            tmp, tree.root, memcached)

        mmv_conf.register_opts(cfg.CONF)
        self.flags(api_paste_config=nova_env.api_paste_config(),
                   group='wsgi')
        sections = [s for s in self.controller_options if s != 'DEFAULT']
        self.unknown = self._apply(self.controller_options, sections)
        self.PCI_DEVICE_SPEC = self.compute_options['pci']['device_spec']
        self.PCI_ALIAS = self.controller_options['pci']['alias']
        # Published before the scheduler starts: its first snapshot has it.
        store = loader.get_store(cfg.CONF)
        try:
            store.put(samples.host_sample(HOST, io_us=500))
        finally:
            store.close()
        super().setUp()

        for section, key in COMPUTE_OPTIONS:
            values = self.compute_options.get(section, {}).get(key)
            if values is None:
                continue
            self.flags(group=section, **{key: values if key in (
                'device_spec', 'alias') else values[-1]})
        # The generated compute config names our driver hook; boot with it.
        self.compute_driver = self.compute_options['DEFAULT'][
            'compute_driver'][-1]
        self.assertEqual('multimodal_virt.LibvirtDriver', self.compute_driver)
        self.flags(compute_driver=self.compute_driver)
        self.start_compute(hostname=HOST,
                           pci_info=generated_boot.fake_libvirt_devices(
                               self.pfs))
        # The first refresh runs in the refresh worker and may still be
        # under way: until it ends the snapshot is empty and every host
        # passes. Tests start once it holds the published sample.
        provider = provider_mod.SnapshotProvider.shared(cfg.CONF)
        deadline = time.monotonic() + 60
        while provider.snapshot().row(HOST) is None:
            if time.monotonic() > deadline:
                self.fail('no refresh read the sample of %s' % HOST)
            time.sleep(0.05)

    def test_configs_agree_and_scheduler_uses_them(self):
        # Every option both hosts set has one value.
        for section, options in self.compute_options.items():
            for key, values in options.items():
                theirs = self.controller_options.get(section, {}).get(key)
                if theirs is not None:
                    self.assertEqual(theirs, values, '[%s] %s'
                                     % (section, key))
        known_unregistered = {('multimodal_virt_store', 'signing_keys')}
        self.assertTrue(set(self.unknown) <= known_unregistered,
                        self.unknown)
        host_manager = self.scheduler.manager.host_manager
        self.assertEqual(
            cfg.CONF.filter_scheduler.enabled_filters,
            [f.__class__.__name__ for f in host_manager.enabled_filters])
        self.assertIn('LatencyFilter', cfg.CONF.filter_scheduler
                      .enabled_filters)
        self.assertIn('PciPassthroughFilter', cfg.CONF.filter_scheduler
                      .enabled_filters)
        self.assertIn('LatencyWeigher', [w.__class__.__name__ for w in
                                         host_manager.weighers])
        self.assertTrue(cfg.CONF.filter_scheduler.pci_in_placement)
        self.assertTrue(cfg.CONF.pci.report_in_placement)

    def _vf_flavor(self, io_p99_us):
        """A flavor asking for one VF of the generated alias and an I/O
        p99 SLO."""
        name = json.loads(self.controller_options['pci']['alias'][0])['name']
        return self._create_flavor(extra_spec={
            'pci_passthrough:alias': '%s:1' % name,
            'multimodal_virt:io_p99_us': str(io_p99_us)})

    def test_vf_flavor_boots_within_its_slo(self):
        flavor_id = self._vf_flavor(2000)
        server = self._create_server(flavor_id=flavor_id, networks='none')
        self.assertEqual('ACTIVE', server['status'])
        ctxt = nova_context.get_admin_context()
        (pci_dev,) = objects.PciDeviceList.get_by_instance_uuid(
            ctxt, server['id'])
        self.assertEqual('type-VF', pci_dev.dev_type)
        vfs = {str(vf.address) for pf in self.pfs for vf in pf.vfs}
        self.assertIn(pci_dev.address, vfs)

        # The same VF flavor with an SLO the host's published I/O p99
        # (500 us, in memcached) misses: LatencyFilter refuses the host.
        strict = self._vf_flavor(100)
        server = self._create_server(flavor_id=strict, networks='none',
                                     expected_state='ERROR')
        self.assertIn('No valid host', server['fault']['message'])


class DevstackConfigBootTest(_ConfigBootBase):
    """The devstack plugin's phases for a controller and a GPU compute.

    The controller's ``mmv-aggregator`` runs for the whole test, from the
    command devstack's ``run_process`` got.
    """

    def generate(self, tmp, sysfs_root, memcached):
        empty = os.path.join(tmp, 'empty-sys')
        os.makedirs(os.path.join(empty, 'bus', 'pci', 'devices'))
        # localhost in MEMCACHE_SERVERS becomes SERVICE_HOST: point that
        # at this machine's loopback memcached.
        store_env = {'SERVICE_HOST': '127.0.0.1',
                     'MEMCACHE_SERVERS': 'localhost:%d' % memcached.port}
        compute = runner.Host(os.path.join(tmp, 'compute'), COMPUTE,
                              MMV_SYSFS_ROOT=sysfs_root, **store_env)
        compute.phases('stack install', 'stack post-config', 'stack extra')
        compute_options = read_options(compute.nova_conf)
        alias = compute_options['pci']['alias']
        controller = runner.Host(os.path.join(tmp, 'controller'), CONTROLLER,
                                 MMV_SYSFS_ROOT=empty,
                                 MMV_PCI_ALIAS='\n'.join(alias),
                                 MMV_AGGREGATOR_INTERVAL='0.5', **store_env)
        controller.phases('stack install', 'stack post-config',
                          'stack extra')
        self.controller = controller
        self.aggregator = controller.start('mmv-aggregator')
        self.aggregator_log = controller.log('mmv-aggregator')
        self.addCleanup(controller.stop, self.aggregator, 10)
        return read_options(controller.nova_conf), compute_options

    def setUp(self):
        super().setUp()
        # The tests start once nova-scheduler has read the aggregate: its
        # first refresh (in the refresh worker) may still be running when
        # the scheduler and the compute are up.
        switched = ('Latency refreshes now read the aggregate of '
                    'multimodal-virt-aggregator')
        deadline = time.monotonic() + 60
        while switched not in self.stdlog.logger.output:
            if (time.monotonic() > deadline
                    or self.aggregator.poll() is not None):
                with open(self.aggregator_log) as handle:
                    self.fail('nova-scheduler never read an aggregate; '
                              'aggregator output:\n%s' % handle.read())
            time.sleep(0.2)

    def test_scheduler_reads_the_aggregate(self):
        """nova-scheduler, configured by the plugin, reads the aggregate of
        the aggregator devstack started (setUp waited for it), never
        refuses it, and schedules by it."""
        self.assertIsNone(self.aggregator.poll())
        self.assertNotIn('Ignoring the aggregate', self.stdlog.logger.output)
        self.test_vf_flavor_boots_within_its_slo()
        self.assertNotIn('Ignoring the aggregate', self.stdlog.logger.output)

    def test_aggregator_down_scheduler_reads_every_sample(self):
        """With the aggregator stopped, the scheduler keeps its last
        aggregate until it is aggregate_max_age (15 s) old, then reads the
        compute's own, newer sample."""
        self.assertEqual(0, self.controller.stop(self.aggregator))
        # Newer than the aggregate: I/O p99 now within the strict SLO.
        store = loader.get_store(cfg.CONF)
        try:
            store.put(samples.host_sample(HOST, io_us=50))
        finally:
            store.close()
        strict = self._vf_flavor(100)
        # Still the aggregate's 500 us.
        server = self._create_server(flavor_id=strict, networks='none',
                                     expected_state='ERROR')
        self.assertIn('No valid host', server['fault']['message'])

        back = 'Latency refreshes now read every sample'
        deadline = time.monotonic() + 90
        while back not in self.stdlog.logger.output:
            self.assertLess(time.monotonic(), deadline,
                            'refreshes never went back to the samples')
            time.sleep(0.2)
        self.assertIn('is multimodal-virt-aggregator running?',
                      self.stdlog.logger.output)
        server = self._create_server(flavor_id=strict, networks='none')
        self.assertEqual('ACTIVE', server['status'])


class KollaConfigBootTest(_ConfigBootBase):
    """kolla-ansible's merge of the Nova overrides.

    nova-api and nova-scheduler for the controller, nova-compute for the
    GPU compute; memcached in the inventory.
    """

    def generate(self, tmp, sysfs_root, memcached):
        try:
            kolla_render.merge_configs_module()
        except exception.MultimodalVirtError as err:
            requirements.require(self, False, str(err))
        base = os.path.join(tmp, 'nova.conf')
        with open(base, 'w') as handle:
            handle.write('[DEFAULT]\n')
        pci_json = os.path.join(tmp, 'pci.json')
        with open(pci_json, 'w') as handle:
            handle.write(nova_config.generate(
                self.pfs, nova_config.Settings(), hostname=HOST).to_json())
        variables = dict(
            kolla_render.load_variables([test_kolla.GLOBALS], pci_json),
            **test_kolla.inventory(memcached_addresses=('127.0.0.1',),
                                   memcached_port=memcached.port))

        def merged(override, host):
            return kolla_render.parse(kolla_render.render_and_merge(
                [base, os.path.join(test_kolla.KOLLA, 'config', 'nova',
                                    override)],
                dict(variables, inventory_hostname=host)))

        controller = merged_options(merged('nova-api.conf', 'ctl1'),
                                    merged('nova-scheduler.conf', 'ctl1'))
        return controller, merged('nova-compute.conf', 'gpu1')


def load_tests(loader, standard_tests, pattern):
    """The concrete variants only, not the shared base."""
    suite = loader.suiteClass()
    for case in (DevstackConfigBootTest, KollaConfigBootTest):
        suite.addTests(loader.loadTestsFromTestCase(case))
    return suite
