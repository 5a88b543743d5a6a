"""kolla-ansible files, rendered and merged by kolla-ansible's own code.

Config sources go through kolla-ansible's ``merge_configs`` action plugin
(``kolla_render``: its ``read_config`` with Ansible's templar, its
``OverrideConfigParser``) with an inventory of two controllers running
memcached and two computes. The merged nova.conf files are read with
oslo.config and Nova's own option definitions, filter and weigher class
paths resolved by Nova's loaders, [pci] values by Nova's parsers; the
collector's config is rendered per host by its role's sources and the
collector started from it (``multimodal-virt-collector --once``),
publishing to a real memcached; the aggregator's config is rendered per
scheduler host and the aggregator started with its ``config.json``
command, and the scheduler's merged nova.conf reads the aggregate it
publishes.
"""

import configparser
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import fixtures
import nova.conf
from nova import objects
from nova.pci import request as nova_request
from nova.pci import whitelist
from nova.scheduler import filters as nova_filters
from nova.scheduler import weights as nova_weights
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import yaml

from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import sysfs
from multimodal_virt.stores import loader
from tests import base
from tests.fixtures import sysfs_builder as layouts
from tests.functional.deploy import kolla_render as kolla
from tests.functional.deploy import test_devstack_plugin
from tests.functional import fixtures as mmv_fixtures
from tests.functional import requirements

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
KOLLA = os.path.join(TOP, 'deploy', 'kolla')
GLOBALS = os.path.join(KOLLA, 'globals-multimodal-virt.yml')
ROLE = os.path.join(KOLLA, 'roles', 'multimodal_virt_collector')
AGGREGATOR_ROLE = os.path.join(KOLLA, 'roles', 'multimodal_virt_aggregator')
STORE_TEMPLATE = os.path.join(KOLLA, 'templates',
                              'multimodal-virt-store.conf.j2')
# What kolla's nova role renders before the overrides (abridged).
BASE_NOVA_CONF = """[DEFAULT]
debug = False
transport_url = rabbit://openstack:secret@192.0.2.5:5672//

[filter_scheduler]
enabled_filters = ComputeFilter,AvailabilityZoneFilter

[pci]
alias = {"name": "old-alias", "vendor_id": "dead", "product_id": "beef"}
"""
FILTER = 'multimodal_virt.scheduler.latency_filter.LatencyFilter'
WEIGHER = 'multimodal_virt.scheduler.latency_weigher.LatencyWeigher'
KEY = 'e4c6b0f1a1d94c0b8d2b5c7e9f01a2b3'


def inventory(memcached_addresses=('192.0.2.11', '192.0.2.12'),
              memcached_port=11211):
    """Variables kolla-ansible has for a host of a small deployment."""
    count = len(memcached_addresses)
    controllers = ['ctl%d' % n for n in range(1, count + 1)]
    hostvars = {host: {'api_interface_address': address}
                for host, address in zip(controllers, memcached_addresses)}
    hostvars.update({'gpu1': {'api_interface_address': '192.0.2.21'},
                     'gpu2': {'api_interface_address': '192.0.2.22'}})
    return {'groups': {'memcached': controllers, 'compute': ['gpu1', 'gpu2'],
                       'nova-scheduler': controllers,
                       'all': controllers + ['gpu1', 'gpu2']},
            'hostvars': hostvars, 'memcached_port': memcached_port,
            'kolla_internal_vip_address': '192.0.2.5',
            'mmv_store_signing_key': KEY}


class KollaTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        try:
            kolla.merge_configs_module()
        except exception.MultimodalVirtError as err:
            requirements.require(self, False, str(err))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.base = self._write('nova.conf', BASE_NOVA_CONF)
        self.variables = dict(kolla.load_variables([GLOBALS]), **inventory())

    def _write(self, name, text):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(text)
        return path

    @staticmethod
    def _role_yaml(role, *parts):
        with open(os.path.join(role, *parts)) as handle:
            return yaml.safe_load(handle)

    def _start_task(self):
        """The role's one ``start_container`` task (its container)."""
        (start,) = [t['kolla_container']
                    for t in self._role_yaml('tasks', 'main.yml')
                    if t.get('kolla_container', {}).get('action')
                    == 'start_container']
        return start

    def _render_role(self, role, host, variables, overrides):
        """A role's multimodal-virt.conf for ``host``, as its tasks make it.

        The role's defaults under the given variables, its assert task
        checked, its merge_configs sources rendered and merged.

        :returns: ``(merged text, source paths)``.
        """
        role_vars = self._role_yaml(role, 'defaults', 'main.yml')
        host_vars = dict(role_vars, **variables)
        host_vars.update(inventory_hostname=host,
                         ansible_facts={'hostname': host},
                         node_custom_config=overrides, role_path=role)
        tasks = self._role_yaml(role, 'tasks', 'main.yml')
        (check,) = [t['ansible.builtin.assert'] for t in tasks
                    if 'ansible.builtin.assert' in t]
        self.assertIs(True, kolla.template_value(
            '{{ %s }}' % check['that'], host_vars))
        (merge,) = [t['merge_configs'] for t in tasks if 'merge_configs' in t]
        sources = kolla.template_value(merge['sources'], host_vars)
        self.assertEqual(STORE_TEMPLATE, os.path.normpath(sources[0]))
        self.assertEqual(os.path.join(role, 'templates',
                                      'multimodal-virt.conf.j2'), sources[1])
        text = kolla.render_and_merge(sources, host_vars)
        self.assertNotIn('{%', text)
        self.assertNotIn('{{', text)
        return text, sources


class NovaOverridesTest(KollaTestCase):

    def _merged_nova(self, override, variables=None):
        text = kolla.render_and_merge(
            [self.base, os.path.join(KOLLA, 'config', 'nova', override)],
            dict(variables or self.variables, inventory_hostname='ctl1'))
        path = self._write('merged-%s' % override, text)
        conf = cfg.ConfigOpts()
        for module in (nova.conf.scheduler, nova.conf.pci,
                       nova.conf.compute):
            module.register_opts(conf)
        mmv = cfg.ConfigOpts()
        mmv_conf.register_opts(mmv)
        for opts in (conf, mmv):
            opts([], default_config_files=[path])
        return conf, mmv, text

    def test_scheduler_override(self):
        conf, mmv, text = self._merged_nova('nova-scheduler.conf')
        fs = conf.filter_scheduler
        self.assertEqual(['nova.scheduler.filters.all_filters', FILTER],
                         fs.available_filters)
        self.assertEqual(['ComputeFilter', 'ComputeCapabilitiesFilter',
                          'ImagePropertiesFilter',
                          'ServerGroupAntiAffinityFilter',
                          'ServerGroupAffinityFilter', 'PciPassthroughFilter',
                          'LatencyFilter'], fs.enabled_filters)
        self.assertEqual(['nova.scheduler.weights.all_weighers', WEIGHER],
                         fs.weight_classes)
        self.assertTrue(fs.pci_in_placement)
        # Nova's loaders resolve the class paths as the scheduler would.
        filter_names = {cls.__name__ for cls in
                        nova_filters.HostFilterHandler().get_matching_classes(
                            fs.available_filters)}
        self.assertTrue(set(fs.enabled_filters) <= filter_names)
        weighers = nova_weights.HostWeightHandler().get_matching_classes(
            fs.weight_classes)
        self.assertIn('LatencyWeigher', [w.__name__ for w in weighers])
        # Every memcached host, not the VIP (no haproxy in front of it).
        self.assertEqual('memcached', mmv.multimodal_virt_store.driver)
        self.assertEqual(['192.0.2.11:11211', '192.0.2.12:11211'],
                         mmv.multimodal_virt_store.memcached_servers)
        self.assertIn('signing_keys = %s' % KEY, text)
        # The base config outside the override is kept.
        self.assertIn('transport_url = rabbit://', text)
        self.assertEqual('{"name": "old-alias", "vendor_id": "dead", '
                         '"product_id": "beef"}', conf.pci.alias[0])

    def test_scheduler_aggregate_max_age(self):
        for extra, expected in (({}, 15.0),
                                ({'mmv_aggregator_interval': 0.2}, 15.0),
                                ({'mmv_aggregator_interval': 30}, 90.0),
                                ({'mmv_aggregator_interval': 30,
                                  'mmv_aggregate_max_age': 0}, 0.0)):
            _, mmv, _ = self._merged_nova('nova-scheduler.conf',
                                          dict(self.variables, **extra))
            self.assertEqual(expected,
                             mmv.multimodal_virt_store.aggregate_max_age,
                             extra)

    def test_unset_signing_key_fails_the_render(self):
        variables = dict(self.variables)
        del variables['mmv_store_signing_key']
        from ansible import errors as ansible_errors
        err = self.assertRaises(ansible_errors.AnsibleUndefinedVariable,
                                self._merged_nova, 'nova-scheduler.conf',
                                variables)
        self.assertIn('mmv_store_signing_key', str(err))

    def test_scheduler_file_store_and_no_pci_in_placement(self):
        variables = dict(self.variables, mmv_store_driver='file',
                         mmv_pci_in_placement=False)
        conf, mmv, _ = self._merged_nova('nova-scheduler.conf', variables)
        self.assertFalse(conf.filter_scheduler.pci_in_placement)
        self.assertEqual('file', mmv.multimodal_virt_store.driver)
        self.assertEqual('/var/lib/multimodal-virt/stats',
                         mmv.multimodal_virt_store.file_path)

    def test_compute_override_with_generated_pci(self):
        tree = self.useFixture(layouts.SysfsTree('intel-flex170'))
        generated = nova_config.generate(sysfs.discover(tree.root),
                                         nova_config.Settings())
        pci_json = self._write('pci.json', generated.to_json())
        variables = dict(self.variables, **kolla.load_variables(
            pci_config=pci_json))
        conf, mmv, text = self._merged_nova('nova-compute.conf', variables)
        options = generated.nova_options()
        self.assertEqual([json.loads(s) for s in
                          options[('pci', 'device_spec')]],
                         [json.loads(s) for s in conf.pci.device_spec])
        self.assertTrue(conf.pci.report_in_placement)
        objects.register_all()
        self.assertEqual(len(generated.device_spec), len(
            whitelist.Whitelist(conf.pci.device_spec).specs))
        # kolla replaces the base's alias with the override's lines.
        nova_cfg = self.useFixture(config_fixture.Config(nova.conf.CONF))
        nova_cfg.config(alias=conf.pci.alias, group='pci')
        nova_request.get_alias_from_config.cache_clear()
        self.addCleanup(nova_request.get_alias_from_config.cache_clear)
        self.assertEqual([a['name'] for a in generated.alias],
                         list(nova_request.get_alias_from_config()))
        self.assertEqual('multimodal_virt.LibvirtDriver',
                         conf.compute_driver)
        self.assertEqual(['192.0.2.11:11211', '192.0.2.12:11211'],
                         mmv.multimodal_virt_store.memcached_servers)
        # Nothing nova-compute would not read.
        self.assertNotIn('multimodal_virt_libvirt', text)

        api, _, _ = self._merged_nova('nova-api.conf', variables)
        self.assertEqual(conf.pci.alias, api.pci.alias)

    def test_compute_without_vfs_leaves_pci_alone(self):
        conf, _, _ = self._merged_nova('nova-compute.conf')
        self.assertEqual([], conf.pci.device_spec)
        self.assertFalse(conf.pci.report_in_placement)
        self.assertIn('old-alias', conf.pci.alias[0])

    def test_kolla_merge_rules(self):
        first = self._write('a.conf', '[a]\nx = 1\nm = 1\nm = 2\n')
        second = self._write('b.conf', '[a]\nm = 3\n[b]\ny =\n')
        merged = kolla.render_and_merge(
            [first, os.path.join(self.tmp, 'missing.conf'), second], {})
        self.assertEqual('[a]\nx = 1\nm = 3\n\n[b]\ny =\n\n', merged)


class CollectorRoleTest(KollaTestCase):

    def _role_yaml(self, *parts):
        return KollaTestCase._role_yaml(ROLE, *parts)

    def test_rendered_per_host_and_started(self):
        memcached = self.useFixture(mmv_fixtures.MemcachedFixture())
        variables = dict(self.variables, **inventory(
            memcached_addresses=('127.0.0.1',),
            memcached_port=memcached.port))
        variables['mmv_collector_interval'] = 0.5
        overrides = os.path.join(self.tmp, 'etc-kolla-config')
        # The operator's overrides: procfs everywhere, and on gpu2 a
        # different interval.
        self._write('etc-kolla-config/multimodal-virt-collector.conf',
                    '[multimodal_virt_collector]\nprobes = procfs\n')
        self._write('etc-kolla-config/multimodal-virt-collector/gpu2/'
                    'multimodal-virt.conf',
                    '[multimodal_virt_collector]\ninterval = 0.25\n')
        rendered = {}
        for host in ('gpu1', 'gpu2'):
            text, _ = self._render_role(ROLE, host, variables, overrides)
            rendered[host] = self._write('%s/multimodal-virt.conf' % host,
                                         text)
        parsed = {host: configparser.ConfigParser() for host in rendered}
        for host, parser in parsed.items():
            parser.read(rendered[host])
            self.assertEqual(host, parser['multimodal_virt_collector']
                             ['host'])
            self.assertEqual('procfs',
                             parser['multimodal_virt_collector']['probes'])
            self.assertEqual(memcached.server, parser[
                'multimodal_virt_store']['memcached_servers'])
        self.assertEqual('0.5', parsed['gpu1']['multimodal_virt_collector']
                         ['interval'])
        self.assertEqual('0.25', parsed['gpu2']['multimodal_virt_collector']
                         ['interval'])

        # The collector starts from each rendered file and publishes.
        collector = os.path.join(os.path.dirname(sys.executable),
                                 'multimodal-virt-collector')
        for host, path in rendered.items():
            result = subprocess.run(
                [collector, '--config-file', path, '--once'],
                capture_output=True, text=True, timeout=120, check=False)
            self.assertEqual(0, result.returncode, result.stderr)
            self.assertEqual(host, json.loads(result.stdout)['host'])
        conf = cfg.ConfigOpts()
        mmv_conf.register_opts(conf)
        conf([], default_config_files=[rendered['gpu1']])
        store = loader.get_store(conf)
        try:
            self.assertEqual({'gpu1', 'gpu2'}, set(store.get_all()))
        finally:
            store.close()

    def test_container_runs_with_reduced_capabilities(self):
        defaults = self._role_yaml('defaults', 'main.yml')
        start = self._start_task()
        self.assertIs(False, start['privileged'])
        self.assertEqual('host', start['pid_mode'])
        self.assertEqual('{{ mmv_collector_capabilities }}',
                         start['cap_add'])
        self.assertEqual(['BPF', 'PERFMON'],
                         defaults['mmv_collector_capabilities'])
        # The container gets the rendered directory, read-only; nothing
        # from /etc/kolla/config (raw templates) is mounted.
        volumes = defaults['mmv_collector_volumes']
        self.assertIn('{{ mmv_collector_config_dir }}/:'
                      '/var/lib/kolla/config_files/:ro', volumes)
        self.assertFalse([v for v in volumes if 'node_custom_config' in v
                          or '/etc/kolla/config' in v])
        with open(os.path.join(ROLE, 'templates', 'config.json.j2')) as fh:
            config_json = json.loads(kolla.render(fh.name, {}))
        self.assertEqual('multimodal-virt-collector --config-file '
                         '/etc/multimodal-virt/multimodal-virt.conf',
                         config_json['command'])
        self.assertEqual('/etc/multimodal-virt/multimodal-virt.conf',
                         config_json['config_files'][0]['dest'])


class ImageBuildTest(base.TestCase):

    def test_kolla_build_plugin_sources(self):
        parser = configparser.ConfigParser()
        parser.read(os.path.join(KOLLA, 'kolla-build.conf'))
        for section in ('nova-base-plugin-multimodal-virt',
                        'multimodal-virt-collector-plugin-multimodal-virt'):
            self.assertIn(section, parser.sections())
            self.assertIn(parser[section]['type'], ('git', 'local', 'url'))
        self.assertFalse(os.path.exists(os.path.join(
            KOLLA, 'template-overrides.j2')))

    def test_kolla_build_renders_the_images(self):
        """kolla-build itself renders nova-base, nova-scheduler (the
        aggregator's image) and the collector image.

        ``--template-only`` writes the Dockerfiles without a container
        engine; the plugin sources point at this checkout.
        """
        kolla_build = os.path.join(os.path.dirname(sys.executable),
                                   'kolla-build')
        requirements.require(self, os.path.exists(kolla_build),
                             'kolla-build (pip install kolla docker)')
        tmp = self.useFixture(fixtures.TempDir()).path
        parser = configparser.ConfigParser()
        parser.read(os.path.join(KOLLA, 'kolla-build.conf'))
        for section in parser.sections():
            parser[section]['type'] = 'local'
            parser[section]['location'] = TOP
        parser['DEFAULT']['base'] = 'debian'
        config = os.path.join(tmp, 'kolla-build.conf')
        with open(config, 'w') as handle:
            parser.write(handle)
        work = os.path.join(tmp, 'work')
        result = subprocess.run(
            [kolla_build, '--config-file', config, '--template-only',
             '--work-dir', work, '--docker-dir',
             os.path.join(KOLLA, 'docker'), 'nova-base', 'nova-scheduler',
             'multimodal-virt-collector'],
            capture_output=True, text=True, timeout=300, check=False)
        self.assertEqual(0, result.returncode, result.stderr)

        def dockerfile(*parts):
            with open(os.path.join(work, 'docker', *parts,
                                   'Dockerfile')) as handle:
                return handle.read()

        constrained = ('python3 -m pip --no-cache-dir install --upgrade '
                       '-c /requirements/upper-constraints.txt ')
        nova_base = dockerfile('nova', 'nova-base')
        self.assertIn('ADD plugins-archive /', nova_base)
        self.assertIn(constrained + '/plugins/*', nova_base)
        # The aggregator's image: nova-base's plugins, run as nova (the
        # owner its config.json gives the config file).
        scheduler = dockerfile('nova', 'nova-scheduler').splitlines()
        self.assertIn('nova-base:', scheduler[0])
        self.assertEqual('USER nova', [line for line in scheduler
                                       if line.startswith('USER')][-1])
        collector = dockerfile('multimodal-virt-collector')
        self.assertIn('openstack-base:', collector.splitlines()[0])
        self.assertIn('ADD plugins-archive /', collector)
        self.assertIn(constrained + '/plugins/multimodal-virt[collector]',
                      collector)
        self.assertIn('libbpf1', collector)
        self.assertNotIn('{{', collector)


class AggregatorRoleTest(KollaTestCase):

    def _role_yaml(self, *parts):
        return KollaTestCase._role_yaml(AGGREGATOR_ROLE, *parts)

    def _config_json(self):
        path = os.path.join(AGGREGATOR_ROLE, 'templates', 'config.json.j2')
        return json.loads(kolla.render(path, {}))

    def _command(self, rendered):
        """The container's command with the config file kolla's
        set_configs copies to ``dest`` read from ``rendered`` instead."""
        config_json = self._config_json()
        dest = config_json['config_files'][0]['dest']
        argv = shlex.split(config_json['command'])
        self.assertIn(dest, argv)
        bindir = os.path.dirname(sys.executable)
        return [os.path.join(bindir, argv[0])] + [
            rendered if arg == dest else arg for arg in argv[1:]]

    def _collect(self, variables, overrides):
        """Both computes' collectors publish one sample (procfs probe)."""
        self._write('etc-kolla-config/multimodal-virt-collector.conf',
                    '[multimodal_virt_collector]\nprobes = procfs\n')
        collector = os.path.join(os.path.dirname(sys.executable),
                                 'multimodal-virt-collector')
        for host in ('gpu1', 'gpu2'):
            text, _ = self._render_role(ROLE, host, variables, overrides)
            path = self._write('%s/multimodal-virt.conf' % host, text)
            result = subprocess.run(
                [collector, '--config-file', path, '--once'],
                capture_output=True, text=True, timeout=120, check=False)
            self.assertEqual(0, result.returncode, result.stderr)

    def _wait_for_aggregate(self, conf_path, keys, process, log):
        deadline = time.monotonic() + 60
        while True:
            found = test_devstack_plugin.read_aggregate(conf_path)
            if found is not None and sorted(found[1].keys) == keys:
                return found
            if time.monotonic() > deadline or process.poll() is not None:
                with open(log) as handle:
                    self.fail('no aggregate of %s (last read: %s); '
                              'aggregator output:\n%s'
                              % (keys, found and list(found[1].keys),
                                 handle.read()))
            time.sleep(0.05)

    def test_rendered_per_host_and_started(self):
        memcached = self.useFixture(mmv_fixtures.MemcachedFixture())
        variables = dict(self.variables, **inventory(
            memcached_addresses=('127.0.0.1',),
            memcached_port=memcached.port))
        variables['groups']['nova-scheduler'] = ['ctl1', 'ctl2']
        variables['mmv_aggregator_interval'] = 0.2
        overrides = os.path.join(self.tmp, 'etc-kolla-config')
        self._collect(variables, overrides)
        # The operator's override on ctl2: another interval.
        self._write('etc-kolla-config/multimodal-virt-aggregator/ctl2/'
                    'multimodal-virt.conf',
                    '[multimodal_virt_aggregator]\ninterval = 0.3\n')
        scheduler = self._write('nova-scheduler.conf', kolla.render_and_merge(
            [self.base, os.path.join(KOLLA, 'config', 'nova',
                                     'nova-scheduler.conf')],
            dict(variables, inventory_hostname='ctl1')))
        scheduler_store = section(scheduler, 'multimodal_virt_store')
        self.assertEqual('15', scheduler_store.pop('aggregate_max_age'))
        rendered = {}
        for host, interval in (('ctl1', '0.2'), ('ctl2', '0.3')):
            text, _ = self._render_role(AGGREGATOR_ROLE, host, variables,
                                        overrides)
            rendered[host] = self._write('%s/multimodal-virt.conf' % host,
                                         text)
            self.assertEqual(interval, section(
                rendered[host], 'multimodal_virt_aggregator')['interval'])
            # The store and key nova-scheduler reads.
            self.assertEqual(scheduler_store, section(
                rendered[host], 'multimodal_virt_store'))

        # ctl1: the container's command, as a service.
        log = os.path.join(self.tmp, 'ctl1-aggregator.log')
        with open(log, 'w') as handle:
            process = subprocess.Popen(
                self._command(rendered['ctl1']), stdout=handle,
                stderr=subprocess.STDOUT)
        self.addCleanup(process.kill)
        # nova-scheduler's merged config reads and verifies it.
        created, batch = self._wait_for_aggregate(
            scheduler, ['gpu1', 'gpu2'], process, log)
        self.assertEqual({}, batch.rejected)
        self.assertLess(abs(time.time() - created), 30)

        # ctl2 too (HA): harmless, the same samples.
        result = subprocess.run(
            self._command(rendered['ctl2']) + ['--once'],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(0, result.returncode, result.stderr)
        summary = json.loads(result.stdout)
        self.assertEqual({'bytes', 'nodes', 'rejected', 'seconds'},
                         set(summary))
        self.assertEqual((2, 0), (summary['nodes'], summary['rejected']))
        self.assertGreater(summary['bytes'], 0)
        # ctl1 keeps renewing it.
        later, batch = self._wait_for_aggregate(
            scheduler, ['gpu1', 'gpu2'], process, log)
        self.assertGreaterEqual(later, created)

        # docker stop: SIGTERM, a clean exit.
        process.send_signal(signal.SIGTERM)
        self.assertEqual(0, process.wait(timeout=30))
        with open(log) as handle:
            output = handle.read()
        self.assertIn('multimodal-virt-aggregator stopped', output)
        self.assertNotIn('Aggregation failed', output)

    def test_container_runs_unprivileged_from_the_scheduler_image(self):
        defaults = self._role_yaml('defaults', 'main.yml')
        start = self._start_task()
        self.assertIs(False, start['privileged'])
        for extra in ('cap_add', 'pid_mode', 'ipc_mode', 'security_opt'):
            self.assertNotIn(extra, start)
        kolla_vars = {'docker_image_url': 'quay.io/openstack.kolla/',
                      'openstack_tag': '2025.2-debian-bookworm',
                      'node_config_directory': '/etc/kolla'}
        image = '%s:%s' % ('{{ mmv_aggregator_image }}',
                           '{{ mmv_aggregator_tag }}')
        self.assertEqual(
            'quay.io/openstack.kolla/nova-scheduler:2025.2-debian-bookworm',
            kolla.template_value(image, dict(defaults, **kolla_vars)))
        # Where Nova's role variables are at hand: the very same image.
        pinned = dict(defaults, nova_scheduler_image='registry/nova-scheduler',
                      nova_scheduler_tag='pinned', **kolla_vars)
        self.assertEqual('registry/nova-scheduler:pinned',
                         kolla.template_value(image, pinned))
        volumes = kolla.template_value(start['volumes'],
                                       dict(defaults, **kolla_vars))
        self.assertIn('/etc/kolla/multimodal-virt-aggregator/:'
                      '/var/lib/kolla/config_files/:ro', volumes)
        self.assertFalse([v for v in volumes if '/etc/kolla/config' in v
                          or '/sys' in v or '/run' in v])
        config_json = self._config_json()
        self.assertEqual('multimodal-virt-aggregator --config-file '
                         '/etc/multimodal-virt/multimodal-virt.conf',
                         config_json['command'])
        # nova-scheduler's image runs as nova (kolla's USER nova).
        self.assertEqual('nova', config_json['config_files'][0]['owner'])
        # Every notify has its handler.
        handlers = {handler['name'] for handler
                    in self._role_yaml('handlers', 'main.yml')}
        self.assertEqual(handlers, {
            t['notify'] for t in self._role_yaml('tasks', 'main.yml')
            if 'notify' in t})

    def test_playbook_targets_the_schedulers(self):
        with open(os.path.join(KOLLA, 'multimodal-virt-aggregator.yml')) as fh:
            (play,) = yaml.safe_load(fh)
        self.assertEqual('nova-scheduler', kolla.template_value(
            play['hosts'], {}))
        self.assertEqual('nova-scheduler', kolla.template_value(
            play['hosts'], kolla.load_variables([GLOBALS])))
        self.assertEqual([{'role': 'multimodal_virt_aggregator'}],
                         play['roles'])

    def test_missing_store_template_stops_the_role(self):
        """A role copied without deploy/kolla/templates fails its check
        instead of rendering a config with no store and no key."""
        tasks = self._role_yaml('tasks', 'main.yml')
        (check,) = [t['ansible.builtin.assert'] for t in tasks
                    if 'ansible.builtin.assert' in t]
        elsewhere = os.path.join(self.tmp, 'roles', 'copied')
        self.assertIs(False, kolla.template_value(
            '{{ %s }}' % check['that'],
            dict(self._role_yaml('defaults', 'main.yml'),
                 role_path=elsewhere)))


def section(path, name):
    """``{key: value}`` of one section of an INI file (the last value of a
    repeated key; no [DEFAULT] values mixed in)."""
    with open(path) as handle:
        return {key: values[-1] for key, values in
                kolla.parse(handle.read())[name].items()}
