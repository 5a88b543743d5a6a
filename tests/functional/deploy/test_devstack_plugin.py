"""devstack plugin: shellcheck, and its phases run per host role.

The plugin's scripts run in a real bash with devstack's helper functions
stood in by ``devstack_functions.sh`` (see ``devstack_runner``), and the
real ``multimodal-virt`` command of this checkout generating the [pci]
config from a recorded SR-IOV sysfs layout. The resulting nova.conf files
are read back with oslo.config and Nova's own option definitions and
parsers. ``test_deploy_boot`` boots a VF flavor from the same configs.
``AggregatorServiceTest`` starts the aggregator from the command the
plugin gives devstack's process runner and reads the aggregate it
publishes (file store and a real memcached) through the scheduler's own
store configuration.
"""

import configparser
import json
import os
import shutil
import signal
import stat
import subprocess
import time

import fixtures
import nova.conf
from nova import objects
from nova.pci import request as nova_request
from nova.pci import whitelist
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import yaml

from multimodal_virt import conf as mmv_conf
from multimodal_virt.metrics import aggregate
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import sysfs
from multimodal_virt.stores import file as file_store
from multimodal_virt.stores import loader
from tests import base
from tests.fixtures import sysfs_builder as layouts
from tests.functional.deploy import devstack_runner as runner
from tests.functional import fixtures as mmv_fixtures
from tests.functional import requirements

SCRIPTS = ('devstack/plugin.sh', 'devstack/settings',
           'devstack/lib/multimodal_virt')
FILTER = 'multimodal_virt.scheduler.latency_filter.LatencyFilter'
WEIGHER = 'multimodal_virt.scheduler.latency_weigher.LatencyWeigher'
BASE_NOVA_CONF = """[DEFAULT]
debug = True

[filter_scheduler]
enabled_filters = ComputeFilter,AvailabilityZoneFilter,ImagePropertiesFilter

[pci]
alias = {"name": "stale", "vendor_id": "dead", "product_id": "beef"}
"""
CONTROLLER = 'key,n-api,n-sch,n-cond,placement-api,mysql,rabbit'
COMPUTE = 'n-cpu,q-agt'
SHIM = os.path.join(runner.TOP, 'nova', 'virt', 'multimodal_virt')
AGGREGATOR = 'mmv-aggregator'


def read_nova(path):
    """nova.conf read with Nova's and our option definitions."""
    conf = cfg.ConfigOpts()
    for module in (nova.conf.scheduler, nova.conf.pci, nova.conf.compute):
        module.register_opts(conf)
    mmv = cfg.ConfigOpts()
    mmv_conf.register_opts(mmv)
    for opts in (conf, mmv):
        opts([], default_config_files=[path])
    return conf, mmv


def raw(path):
    """The file as configparser sees it (options we may not register)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(path)
    return parser


def read_aggregate(conf_path, now=None):
    """``(created, SampleBatch)`` of the aggregate in the store that
    ``conf_path`` configures, verified with its keys; ``None`` if none."""
    conf = cfg.ConfigOpts()
    mmv_conf.register_opts(conf)
    conf([], default_config_files=[conf_path])
    store = loader.get_store(conf)
    try:
        payload = store.read_aggregate()
        if payload is None:
            return None
        return aggregate.decode(payload, store.keyring, now or time.time(),
                                store.max_aggregate_bytes, store.max_hosts)
    finally:
        store.close()


def generated(sysfs_root):
    """What ``multimodal-virt pci config`` generates for the layout."""
    return nova_config.generate(sysfs.discover(sysfs_root),
                                nova_config.Settings(), hostname='compute1')


class ShellcheckTest(base.TestCase):

    def test_scripts_pass_shellcheck(self):
        shellcheck = shutil.which('shellcheck')
        requirements.require(self, shellcheck,
                             'shellcheck (apt-get install shellcheck)')
        result = subprocess.run(
            [shellcheck, '-x', '-s', 'bash'] + list(SCRIPTS)
            + [os.path.relpath(runner.STUB, runner.TOP)],
            cwd=runner.TOP, capture_output=True, text=True, check=False)
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)


class DevstackTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, shutil.which('bash'), 'bash')
        requirements.require(
            self, os.path.exists(os.path.join(runner.BIN, 'dsconf')),
            'dsconf from devstack-tools (pip install devstack-tools)')
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.sysfs = self.useFixture(layouts.SysfsTree('nvidia-a100')).root
        self.empty_sysfs = os.path.join(self.tmp, 'empty-sys')
        os.makedirs(os.path.join(self.empty_sysfs, 'bus', 'pci', 'devices'))

    def host(self, name, services, **env):
        env.setdefault('MMV_SYSFS_ROOT', self.sysfs)
        return runner.Host(os.path.join(self.tmp, name), services,
                           nova_conf=BASE_NOVA_CONF, **env)

    def check_nova_alias(self, aliases, expected_names):
        objects.register_all()
        nova_cfg = self.useFixture(config_fixture.Config(nova.conf.CONF))
        nova_cfg.config(alias=aliases, group='pci')
        nova_request.get_alias_from_config.cache_clear()
        self.addCleanup(nova_request.get_alias_from_config.cache_clear)
        self.assertEqual(expected_names,
                         list(nova_request.get_alias_from_config()))


class AllInOneTest(DevstackTestCase):

    def _check_scheduler(self, conf):
        fs = conf.filter_scheduler
        self.assertEqual(['nova.scheduler.filters.all_filters', FILTER],
                         fs.available_filters)
        self.assertEqual(['ComputeFilter', 'AvailabilityZoneFilter',
                          'ImagePropertiesFilter', 'LatencyFilter',
                          'PciPassthroughFilter'], fs.enabled_filters)
        self.assertEqual(['nova.scheduler.weights.all_weighers', WEIGHER],
                         fs.weight_classes)

    def test_stack_unstack_clean(self):
        aio = self.host('aio', CONTROLLER + ',' + COMPUTE)
        aio.phases('stack install', 'stack post-config', 'stack extra')
        conf, mmv = read_nova(aio.nova_conf)
        self._check_scheduler(conf)
        # The store: devstack's MEMCACHE_SERVERS (localhost) as the other
        # nodes reach it.
        self.assertEqual('memcached', mmv.multimodal_virt_store.driver)
        self.assertEqual(['192.0.2.10:11211'],
                         mmv.multimodal_virt_store.memcached_servers)

        # [pci]: the generated lines replaced the stale alias, and Nova's
        # own parsers accept them.
        expected = generated(self.sysfs).nova_options()
        self.assertEqual(expected[('pci', 'device_spec')],
                         conf.pci.device_spec)
        self.assertEqual(expected[('pci', 'alias')], conf.pci.alias)
        self.assertEqual(len(expected[('pci', 'device_spec')]), len(
            whitelist.Whitelist(conf.pci.device_spec).specs))
        self.check_nova_alias(conf.pci.alias, ['mmv-nvidia-20f1-vf'])
        self.assertTrue(conf.pci.report_in_placement)
        self.assertTrue(conf.filter_scheduler.pci_in_placement)
        self.assertEqual(aio.provider_dir,
                         conf.compute.provider_config_location)
        with open(os.path.join(aio.provider_dir,
                               'multimodal-virt.yaml')) as fh:
            provider = yaml.safe_load(fh)
        self.assertEqual({'name': 'compute1'},
                         provider['providers'][0]['identification'])

        # The collector: enabled because n-cpu is, with its own config.
        parsed = raw(aio.mmv_conf)
        self.assertEqual(self.sysfs,
                         parsed['multimodal_virt_pci']['sysfs_root'])
        recorded = aio.recorded()
        self.assertIn(['setup_develop', runner.TOP, 'collector'], recorded)
        self.assertIn(['install_package', 'clang', 'llvm', 'libbpf-dev',
                       'bpftool', 'libvirt-dev', 'pkg-config'], recorded)
        self.assertIn(['run_process', 'mmv-collector',
                       '%s/multimodal-virt-collector --config-file %s'
                       % (runner.BIN, aio.mmv_conf), '', 'root'], recorded)
        # The aggregator: enabled because n-sch is; the stack user, the
        # same config file.
        self.assertIn(['run_process', AGGREGATOR,
                       '%s/multimodal-virt-aggregator --config-file %s'
                       % (runner.BIN, aio.mmv_conf), '', ''], recorded)

        # post-config again (re-stack): nothing added twice.
        aio.phases('stack post-config')
        again, _ = read_nova(aio.nova_conf)
        self._check_scheduler(again)
        self.assertEqual(conf.pci.device_spec, again.pci.device_spec)
        self.assertEqual(conf.pci.alias, again.pci.alias)

        aio.phases('unstack', 'clean')
        self.assertEqual([['stop_process', AGGREGATOR],
                          ['stop_process', 'mmv-collector']],
                         aio.recorded()[-2:])
        self.assertFalse(os.path.exists(aio.mmv_conf))
        self.assertFalse(os.path.exists(os.path.join(
            aio.provider_dir, 'multimodal-virt.yaml')))


class MultiNodeTest(DevstackTestCase):
    """A controller without VFs and a GPU compute, configured separately."""

    def setUp(self):
        super().setUp()
        self.alias = generated(self.sysfs).nova_options()[('pci', 'alias')]
        self.controller = self.host(
            'controller', CONTROLLER, MMV_SYSFS_ROOT=self.empty_sysfs,
            MMV_PCI_ALIAS='\n'.join(self.alias))
        self.compute = self.host('compute', COMPUTE)
        for host in (self.controller, self.compute):
            host.phases('stack install', 'stack post-config', 'stack extra')

    def test_controller_role(self):
        conf, mmv = read_nova(self.controller.nova_conf)
        fs = conf.filter_scheduler
        self.assertEqual(['nova.scheduler.filters.all_filters', FILTER],
                         fs.available_filters)
        self.assertIn('PciPassthroughFilter', fs.enabled_filters)
        self.assertIn('LatencyFilter', fs.enabled_filters)
        self.assertIn(WEIGHER, fs.weight_classes)
        self.assertTrue(fs.pci_in_placement)
        # nova-api needs the alias even without VFs on this host.
        self.assertEqual(self.alias, conf.pci.alias)
        self.check_nova_alias(conf.pci.alias, ['mmv-nvidia-20f1-vf'])
        self.assertEqual([], conf.pci.device_spec)
        recorded = self.controller.recorded()
        self.assertIn(['setup_develop', runner.TOP], recorded)
        # The aggregator, not the collector.
        self.assertEqual([AGGREGATOR], [r[1] for r in recorded
                                        if r[0] == 'run_process'])
        # The CLI's config on the controller reads the same store.
        self.assertEqual(
            raw(self.controller.nova_conf)['multimodal_virt_store']
            ['memcached_servers'],
            raw(self.controller.mmv_conf)['multimodal_virt_store']
            ['memcached_servers'])

    def test_compute_role(self):
        conf, _ = read_nova(self.compute.nova_conf)
        expected = generated(self.sysfs).nova_options()
        self.assertEqual(expected[('pci', 'device_spec')],
                         conf.pci.device_spec)
        self.assertEqual(self.alias, conf.pci.alias)
        self.assertTrue(conf.pci.report_in_placement)
        # No scheduler settings on a compute.
        self.assertNotIn('LatencyFilter',
                         conf.filter_scheduler.enabled_filters)
        recorded = self.compute.recorded()
        self.assertIn(['setup_develop', runner.TOP, 'collector'], recorded)
        self.assertEqual(['mmv-collector'], [r[1] for r in recorded
                                             if r[0] == 'run_process'])
        link = os.path.join(self.compute.env['MMV_NOVA_VIRT_DIR'],
                            'multimodal_virt')
        compute_driver = raw(self.compute.nova_conf)['DEFAULT'].get(
            'compute_driver')
        self.assertEqual(SHIM, os.readlink(link))
        self.assertEqual('multimodal_virt.LibvirtDriver', compute_driver)

    def test_every_node_shares_store_and_key(self):
        stores = [raw(path)['multimodal_virt_store'] for path in (
            self.controller.nova_conf, self.controller.mmv_conf,
            self.compute.nova_conf, self.compute.mmv_conf)]
        for store in stores:
            self.assertEqual('memcached', store['driver'])
            self.assertEqual('192.0.2.10:11211', store['memcached_servers'])
            self.assertEqual(stores[0]['signing_keys'],
                             store['signing_keys'])
        self.assertRegex(stores[0]['signing_keys'], '^[0-9a-f]{64}$')
        # Another deployment (another SERVICE_PASSWORD): another key.
        other = self.host('other', COMPUTE, SERVICE_PASSWORD='different')
        other.phases('stack post-config')
        self.assertNotEqual(
            stores[0]['signing_keys'],
            raw(other.nova_conf)['multimodal_virt_store']['signing_keys'])

    def test_controller_memcached_listens_on_service_host(self):
        with open(self.controller.memcached_conf) as handle:
            lines = handle.read().splitlines()
        self.assertIn('-l 127.0.0.1,192.0.2.10', lines)
        self.assertEqual(1, sum(line.startswith('-l') for line in lines))
        self.assertIn(['restart_service', 'memcached'],
                      self.controller.recorded())
        # Again: already listening, no second restart.
        self.controller.phases('stack post-config')
        restarts = [r for r in self.controller.recorded()
                    if r[0] == 'restart_service']
        self.assertEqual(1, len(restarts))


class EdgeCasesTest(DevstackTestCase):

    def test_hosts_without_vfs_keep_pci_alone(self):
        for services in (COMPUTE, CONTROLLER):
            node = self.host(services.split(',')[0], services,
                             MMV_SYSFS_ROOT=self.empty_sysfs)
            node.phases('stack post-config')
            conf, _ = read_nova(node.nova_conf)
            self.assertEqual([], conf.pci.device_spec)
            self.assertEqual(1, len(conf.pci.alias))  # the operator's, kept
            self.assertNotIn('PciPassthroughFilter',
                             conf.filter_scheduler.enabled_filters)
            warnings = ' '.join(r[1] for r in node.recorded()
                                if r[0] == 'warn')
            self.assertIn('MMV_PCI_ALIAS' if services == CONTROLLER
                          else 'no SR-IOV GPU VFs', warnings)

    def test_file_store_scheduler_only(self):
        node = self.host('sched', 'n-sch', MMV_STORE_DRIVER='file',
                         MMV_CONFIGURE_PCI='False')
        with open(node.nova_conf, 'w') as handle:
            handle.write('[DEFAULT]\n')  # no [filter_scheduler] yet
        node.phases('stack install', 'stack post-config', 'stack extra')
        conf, mmv = read_nova(node.nova_conf)
        self.assertEqual('file', mmv.multimodal_virt_store.driver)
        self.assertEqual(os.path.join(node.tmp, 'data', 'multimodal-virt',
                                      'stats'),
                         mmv.multimodal_virt_store.file_path)
        # Nova's defaults kept beside ours.
        self.assertEqual(['ComputeFilter', 'ComputeCapabilitiesFilter',
                          'ImagePropertiesFilter',
                          'ServerGroupAntiAffinityFilter',
                          'ServerGroupAffinityFilter', 'LatencyFilter'],
                         conf.filter_scheduler.enabled_filters)
        self.assertEqual([], conf.pci.device_spec)
        self.assertEqual([['setup_develop', runner.TOP],
                          ['run_process', AGGREGATOR,
                           '%s/multimodal-virt-aggregator --config-file %s'
                           % (runner.BIN, node.mmv_conf), '', '']],
                         node.recorded())
        # Made by the plugin for the stack user: the aggregator writes its
        # aggregate there, beside the (root) collector's samples.
        st = os.stat(mmv.multimodal_virt_store.file_path)
        self.assertEqual(os.getuid(), st.st_uid)
        self.assertEqual(0o755, stat.S_IMODE(st.st_mode))

    def test_signing_key_setting_wins(self):
        node = self.host('keyed', 'n-sch', MMV_STORE_SIGNING_KEY='k' * 32,
                         MMV_CONFIGURE_PCI='False')
        node.phases('stack post-config')
        self.assertEqual('k' * 32, raw(node.nova_conf)[
            'multimodal_virt_store']['signing_keys'])


class AggregatorServiceTest(DevstackTestCase):
    """The aggregator as devstack runs it, publishing a real aggregate."""

    def _stack(self, **env):
        """An all-in-one host stacked with the procfs probe only; the
        collector publishes once (its BPF probes need root)."""
        aio = self.host('aio', CONTROLLER + ',' + COMPUTE,
                        MMV_COLLECTOR_PROBES='procfs',
                        MMV_AGGREGATOR_INTERVAL='0.2', **env)
        aio.phases('stack install', 'stack post-config', 'stack extra')
        result = subprocess.run(
            [os.path.join(runner.BIN, 'multimodal-virt-collector'),
             '--config-file', aio.mmv_conf, '--once'],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(0, result.returncode, result.stderr)
        return aio, json.loads(result.stdout)['host']

    def _wait_for_aggregates(self, conf_path, count, process, log):
        """The ``count`` first distinct aggregates read from the store."""
        seen = []
        deadline = time.monotonic() + 60
        while len(seen) < count:
            found = read_aggregate(conf_path)
            if found is not None and (not seen
                                      or found[0] != seen[-1][0]):
                seen.append(found)
            if time.monotonic() > deadline or process.poll() is not None:
                with open(log) as handle:
                    self.fail('%d of %d aggregates; aggregator output:\n%s'
                              % (len(seen), count, handle.read()))
            time.sleep(0.05)
        return seen

    def _reload_interval(self, aio, process, seconds):
        """``systemctl reload`` (devstack's units: ``kill -HUP``) after
        changing the interval in the config file."""
        subprocess.run([os.path.join(runner.BIN, 'dsconf'), 'iniset',
                        aio.mmv_conf, 'multimodal_virt_aggregator',
                        'interval', str(seconds)], check=True)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while True:
            with open(aio.log(AGGREGATOR)) as handle:
                if 'SIGHUP: reloading the configuration' in handle.read():
                    break
            self.assertLess(time.monotonic(), deadline, 'no reload logged')
            time.sleep(0.05)
        # One aggregation right after the reload, then none for a while.
        time.sleep(0.5)
        first = read_aggregate(aio.nova_conf)[0]
        time.sleep(1.5)
        self.assertEqual(first, read_aggregate(aio.nova_conf)[0])
        self.assertIsNone(process.poll())

    def _check_runs_and_publishes(self, aio, host, reload_interval=None):
        process = aio.start(AGGREGATOR)
        self.addCleanup(aio.stop, process, 5)
        # Read through the scheduler's own store options (nova.conf):
        # the same store and key as the aggregator's config file.
        aggregates = self._wait_for_aggregates(
            aio.nova_conf, 3, process, aio.log(AGGREGATOR))
        for created, batch in aggregates:
            self.assertEqual([host], list(batch.keys))
            self.assertEqual({}, batch.rejected)
            self.assertLess(abs(time.time() - created), 30)
        # A service, not a one-shot: the aggregate is renewed.
        self.assertLess(aggregates[0][0], aggregates[-1][0])
        if reload_interval:
            self._reload_interval(aio, process, reload_interval)

        # Stopped within aio.stop's 30 s, whatever the interval.
        aio.phases('unstack')
        self.assertIn(['stop_process', AGGREGATOR], aio.recorded())
        self.assertEqual(0, aio.stop(process))
        with open(aio.log(AGGREGATOR)) as handle:
            output = handle.read()
        self.assertIn('multimodal-virt-aggregator stopped', output)
        self.assertNotIn('Aggregation failed', output)
        return output

    def test_file_store(self):
        aio, host = self._stack(MMV_STORE_DRIVER='file')
        parsed = raw(aio.mmv_conf)
        self.assertEqual('0.2', parsed['multimodal_virt_aggregator']
                         ['interval'])
        # Three intervals would be under the package default: kept at 15.
        for path in (aio.mmv_conf, aio.nova_conf):
            self.assertEqual('15', raw(path)['multimodal_virt_store']
                             ['aggregate_max_age'])
        # SIGHUP applies a new interval (60 s: the stop below must not
        # wait for it).
        self._check_runs_and_publishes(aio, host, reload_interval=60)
        stats = raw(aio.mmv_conf)['multimodal_virt_store']['file_path']
        self.assertTrue(os.path.isfile(os.path.join(
            stats, file_store.AGGREGATE_NAME)))

    def test_memcached_store(self):
        memcached = self.useFixture(mmv_fixtures.MemcachedFixture())
        # devstack's MEMCACHE_SERVERS, localhost named as SERVICE_HOST.
        aio, host = self._stack(SERVICE_HOST='127.0.0.1',
                                MEMCACHE_SERVERS='localhost:%d'
                                % memcached.port)
        self.assertEqual(memcached.server, raw(aio.nova_conf)[
            'multimodal_virt_store']['memcached_servers'])
        self._check_runs_and_publishes(aio, host)

    def test_where_it_runs(self):
        cases = [(CONTROLLER, {}, True), ('n-sch', {}, True),
                 (COMPUTE, {}, False), ('n-api,n-cond', {}, False),
                 (CONTROLLER, {'MMV_ENABLE_AGGREGATOR': 'False'}, False),
                 (CONTROLLER, {'MMV_ENABLE_AGGREGATOR': 'no'}, False)]
        for number, (services, env, expected) in enumerate(cases):
            node = self.host('node%d' % number, services,
                             MMV_CONFIGURE_PCI='False', **env)
            node.phases('stack install', 'stack post-config', 'stack extra',
                        'unstack')
            runs = [r[1] for r in node.recorded() if r[0] == 'run_process']
            stops = [r[1] for r in node.recorded()
                     if r[0] == 'stop_process']
            self.assertEqual(expected, AGGREGATOR in runs,
                             (services, env))
            self.assertEqual(expected, AGGREGATOR in stops,
                             (services, env))
            # Not set unless asked for: the package defaults.
            self.assertNotIn('multimodal_virt_aggregator',
                             raw(node.mmv_conf))
            self.assertNotIn('aggregate_max_age',
                             raw(node.nova_conf)['multimodal_virt_store'])

    def test_interval_and_max_age_settings(self):
        node = self.host('slow', 'n-sch', MMV_CONFIGURE_PCI='False',
                         MMV_AGGREGATOR_INTERVAL='30')
        node.phases('stack post-config')
        self.assertEqual('30', raw(node.mmv_conf)[
            'multimodal_virt_aggregator']['interval'])
        # Three intervals: an aggregate two intervals old is still used.
        conf, mmv = read_nova(node.nova_conf)
        self.assertEqual(90.0, mmv.multimodal_virt_store.aggregate_max_age)
        node = self.host('set', 'n-sch', MMV_CONFIGURE_PCI='False',
                         MMV_AGGREGATOR_INTERVAL='30',
                         MMV_AGGREGATE_MAX_AGE='0')
        node.phases('stack post-config')
        conf, mmv = read_nova(node.nova_conf)
        self.assertEqual(0.0, mmv.multimodal_virt_store.aggregate_max_age)

    def test_bad_interval_is_refused(self):
        for name in ('MMV_AGGREGATOR_INTERVAL', 'MMV_AGGREGATE_MAX_AGE'):
            node = self.host(name, 'n-sch', MMV_CONFIGURE_PCI='False',
                             **{name: '5s'})
            err = self.assertRaises(AssertionError, node.phases,
                                    'stack post-config')
            self.assertIn("%s must be a number of seconds, not '5s'" % name,
                          str(err))
