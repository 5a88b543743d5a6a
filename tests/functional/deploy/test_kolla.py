"""kolla-ansible files: rendered with Jinja2, merged like merge_configs.

The merged nova.conf is read with oslo.config and Nova's own option
definitions; the filter and weigher class paths are resolved by Nova's
loaders and the [pci] values by Nova's parsers.
"""

import json
import os

import fixtures
import jinja2
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
from tests.functional.deploy import kolla_render as kolla
from multimodal_virt import exception
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import sysfs
from tests import base
from tests.fixtures import sysfs_builder as layouts

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
KOLLA = os.path.join(TOP, 'deploy', 'kolla')
GLOBALS = os.path.join(KOLLA, 'globals-multimodal-virt.yml')
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


class KollaConfigTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.base = self._write('nova.conf', BASE_NOVA_CONF)
        self.variables = kolla.load_variables([GLOBALS])
        self.variables['kolla_internal_vip_address'] = '192.0.2.5'

    def _write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as handle:
            handle.write(text)
        return path

    def _merged_nova(self, override, variables=None):
        text = kolla.render_and_merge(
            [self.base, os.path.join(KOLLA, 'config', 'nova', override)],
            variables or self.variables)
        path = self._write('merged.conf', text)
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
        self.assertEqual('memcached', mmv.multimodal_virt_store.driver)
        self.assertEqual(['192.0.2.5:11211'],
                         mmv.multimodal_virt_store.memcached_servers)
        # The base config outside the override is kept.
        self.assertIn('transport_url = rabbit://', text)
        self.assertEqual('{"name": "old-alias", "vendor_id": "dead", '
                         '"product_id": "beef"}', conf.pci.alias[0])

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
        conf, mmv, _ = self._merged_nova('nova-compute.conf', variables)
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
        self.assertEqual('/var/lib/nova/multimodal-virt/vf-ledger.json',
                         mmv.multimodal_virt_libvirt.ledger_path)

        api, _, _ = self._merged_nova('nova-api.conf', variables)
        self.assertEqual(conf.pci.alias, api.pci.alias)

    def test_compute_without_vfs_leaves_pci_alone(self):
        conf, _, text = self._merged_nova('nova-compute.conf')
        self.assertEqual([], conf.pci.device_spec)
        self.assertFalse(conf.pci.report_in_placement)
        self.assertIn('old-alias', conf.pci.alias[0])

    def test_merge_rules(self):
        merged = kolla.merge(['[a]\nx = 1\nm = 1\nm = 2\n',
                              '[a]\nm = 3\n[b]\ny =\n'])
        self.assertEqual({'x': ['1'], 'm': ['3']}, dict(merged['a']))
        self.assertEqual('[a]\nx = 1\nm = 3\n\n[b]\ny =\n\n',
                         kolla.dump(merged))
        err = self.assertRaises(exception.MultimodalVirtError, kolla.merge,
                                ['[a]\nnot an option\n'])
        self.assertIn('line 2', str(err))

    def test_undefined_variable_is_named(self):
        path = self._write('bad.conf', '[a]\nx = {{ mmv_nope }}\n')
        err = self.assertRaises(exception.MultimodalVirtError, kolla.render,
                                path, {})
        self.assertIn('bad.conf', str(err))
        self.assertIn('mmv_nope', str(err))

    def test_collector_container_and_config(self):
        compose = yaml.safe_load(kolla.render(
            os.path.join(KOLLA, 'multimodal-virt-collector.yml'),
            dict(self.variables, docker_registry='registry.example:4000',
                 openstack_tag='2026.2')))
        service = compose['services']['multimodal_virt_collector']
        self.assertEqual('registry.example:4000/openstack.kolla/'
                         'multimodal-virt-collector:2026.2', service['image'])
        self.assertIs(True, service['privileged'])
        self.assertEqual('host', service['pid'])
        mounts = {v.split(':')[1]: v for v in service['volumes']}
        for target in ('/sys/kernel/btf', '/sys/fs/bpf', '/sys/kernel/tracing',
                       '/etc/multimodal-virt', '/run/libvirt'):
            self.assertIn(target, mounts)
        self.assertTrue(mounts['/sys/kernel/btf'].endswith(':ro'))
        config_dir = mounts['/etc/multimodal-virt'].split(':')[0]
        self.assertEqual('/etc/kolla/config/multimodal-virt', config_dir)
        self.assertIn('--config-file /etc/multimodal-virt/multimodal-virt.conf',
                      service['command'])

        text = kolla.render(os.path.join(KOLLA, 'config', 'multimodal-virt',
                                         'multimodal-virt.conf'),
                            self.variables)
        conf = cfg.ConfigOpts()
        mmv_conf.register_opts(conf)
        conf([], default_config_files=[self._write('collector.conf', text)])
        self.assertEqual(['block_io', 'gpu_ioctl', 'kvm_exit', 'irq'],
                         conf.multimodal_virt_collector.probes)
        self.assertEqual(['192.0.2.5:11211'],
                         conf.multimodal_virt_store.memcached_servers)

    def test_build_template_override(self):
        # A stand-in for kolla's Dockerfile.j2 of each image: the footer
        # block sits before the switch to the service user.
        parent = ('FROM base\n{% block nova_scheduler_footer %}'
                  '{% endblock %}\n{% block nova_compute_footer %}'
                  '{% endblock %}\n{% block nova_api_footer %}{% endblock %}'
                  '\nUSER nova\n')
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(KOLLA))
        child = env.get_template('template-overrides.j2')
        rendered = child.render(parent_template=env.from_string(parent))
        run = ('RUN /var/lib/kolla/venv/bin/python3 -m pip --no-cache-dir '
               'install multimodal-virt')
        self.assertEqual(3, rendered.count(run))
        self.assertLess(rendered.rindex(run), rendered.index('USER nova'))
        rendered = child.render(parent_template=env.from_string(parent),
                                mmv_pip_spec='/plugins/mmv.tar.gz')
        self.assertIn('install /plugins/mmv.tar.gz', rendered)
