"""Generated device_spec, alias and provider.yaml, checked by Nova's code."""

import json
import os

import ddt
import fixtures
import nova.conf
from nova.compute import provider_config
from nova import exception as nova_exception
from nova import objects
from nova.pci import request as nova_request
from nova.pci import whitelist
from oslo_config import cfg
from oslo_config import fixture as config_fixture

from multimodal_virt import exception
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import sysfs
from tests import base
from tests.fixtures import sysfs_builder as layouts


def _dev(pf, fn):
    return {'vendor_id': fn.vendor_id, 'product_id': fn.product_id,
            'address': str(fn.address),
            'parent_addr': str(pf.address) if fn is not pf else None}


@ddt.ddt
class NovaAcceptsGeneratedConfigTest(base.TestCase):

    def setUp(self):
        super().setUp()
        objects.register_all()
        self.nova_conf = self.useFixture(
            config_fixture.Config(nova.conf.CONF))
        nova_request.get_alias_from_config.cache_clear()
        self.addCleanup(nova_request.get_alias_from_config.cache_clear)

    def _generate(self, name, **settings):
        tree = self.useFixture(layouts.SysfsTree(name))
        pfs = sysfs.discover(tree.root)
        return pfs, nova_config.generate(
            pfs, nova_config.Settings(**settings), hostname='compute1')

    @ddt.data(*layouts.LAYOUTS)
    def test_whitelist_selects_exactly_the_vfs(self, name):
        pfs, generated = self._generate(name)
        specs = generated.nova_options()[('pci', 'device_spec')]
        wl = whitelist.Whitelist(specs)
        self.assertEqual(len(generated.device_spec), len(wl.specs))
        for pf in pfs:
            self.assertIsNone(wl.device_assignable(_dev(pf, pf)))
            for vf in pf.vfs:
                spec = wl.device_assignable(_dev(pf, vf))
                self.assertIsNotNone(spec, vf.address)
                self.assertEqual(
                    'CUSTOM_MMV_GPU_VF_%s_%s' % (vf.vendor_id.upper(),
                                                 vf.product_id.upper()),
                    spec.get_tags()['resource_class'])

    @ddt.data(True, False)
    def test_alias_parsed_by_nova(self, pci_in_placement):
        pfs, generated = self._generate('amd-mi25')
        options = generated.nova_options()
        self.nova_conf.config(group='pci', alias=options[('pci', 'alias')])
        self.nova_conf.config(group='filter_scheduler',
                              pci_in_placement=pci_in_placement)
        aliases = nova_request.get_alias_from_config()
        self.assertEqual(
            {'mmv-amd-686c-vf': ('preferred', [{
                'vendor_id': '1002', 'product_id': '686c',
                'dev_type': 'type-VF',
                'resource_class': 'CUSTOM_MMV_GPU_VF_1002_686C'}])},
            aliases)
        (req,) = nova_request._translate_alias_to_requests(
            'mmv-amd-686c-vf:1')
        self.assertEqual(1, req.count)

    def test_alias_name_from_format(self):
        _, generated = self._generate(
            'intel-flex170', alias_name_format='gpu.{vendor_id}:{product_id}')
        self.nova_conf.config(
            group='pci',
            alias=generated.nova_options()[('pci', 'alias')])
        self.assertEqual(['gpu.8086:56c0'],
                         list(nova_request.get_alias_from_config()))

    def test_broken_alias_is_what_nova_rejects(self):
        # Guard for the check above: Nova really validates aliases here.
        self.nova_conf.config(group='pci', alias=[json.dumps(
            {'name': 'x', 'device_type': 'type-VF', 'bogus': 1})])
        self.assertRaises(nova_exception.PciInvalidAlias,
                          nova_request.get_alias_from_config)

    @ddt.data('pci_in_placement', 'provider_config')
    def test_provider_yaml_loaded_by_nova(self, mode):
        _, generated = self._generate('nvidia-a100', placement_mode=mode)
        directory = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(directory, 'gpu.yaml'), 'w') as handle:
            handle.write(generated.to_yaml())
        configs = provider_config.get_provider_configs(directory)
        provider = configs['compute1']
        self.assertEqual(['CUSTOM_MMV_SRIOV_GPU_HOST'] + (
            ['CUSTOM_MMV_SRIOV_GPU_VF'] if mode == 'provider_config'
            else []), provider['traits']['additional'])
        if mode == 'provider_config':
            (inventory,) = provider['inventories']['additional']
            self.assertEqual(32, inventory[
                'CUSTOM_MMV_GPU_VF_10DE_20F1']['total'])
        else:
            self.assertNotIn('inventories', provider)

    def test_provider_yaml_for_every_compute_node(self):
        tree = self.useFixture(layouts.SysfsTree('amd-mi25'))
        generated = nova_config.generate(
            sysfs.discover(tree.root), nova_config.Settings())
        directory = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(directory, 'gpu.yaml'), 'w') as handle:
            handle.write(generated.to_yaml())
        self.assertIn('$COMPUTE_NODE',
                      provider_config.get_provider_configs(directory))

    def test_ini_round_trips_through_oslo_config(self):
        _, generated = self._generate('nvidia-a100')
        directory = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(directory, 'nova.conf')
        with open(path, 'w') as handle:
            handle.write(generated.to_ini('/etc/nova/provider_config'))
        conf = cfg.ConfigOpts()
        nova.conf.pci.register_opts(conf)
        nova.conf.compute.register_opts(conf)
        nova.conf.scheduler.register_opts(conf)
        conf([], default_config_files=[path])
        options = generated.nova_options()
        self.assertEqual(options[('pci', 'device_spec')],
                         conf.pci.device_spec)
        self.assertEqual(options[('pci', 'alias')], conf.pci.alias)
        self.assertTrue(conf.pci.report_in_placement)
        self.assertTrue(conf.filter_scheduler.pci_in_placement)
        self.assertEqual('/etc/nova/provider_config',
                         conf.compute.provider_config_location)
        self.assertEqual(6, len(whitelist.Whitelist(
            conf.pci.device_spec).specs))

    def test_json_output_has_all_parts(self):
        _, generated = self._generate('intel-flex170')
        doc = json.loads(generated.to_json())
        self.assertEqual(2, len(doc['pci']['device_spec']))
        self.assertEqual(1, len(doc['pci']['alias']))
        self.assertEqual('1.0', doc['provider_config']['meta'][
            'schema_version'])

    def test_no_resource_class_lets_nova_name_it(self):
        _, generated = self._generate('amd-mi25', resource_class_format='',
                                      traits=())
        self.assertEqual({'vendor_id', 'product_id', 'address'},
                         set(generated.device_spec[0]))
        self.assertNotIn('resource_class', generated.alias[0])


@ddt.ddt
class SettingsTest(base.TestCase):

    def test_from_conf_defaults(self):
        settings = nova_config.Settings.from_conf(
            self.conf.multimodal_virt_pci)
        self.assertEqual(nova_config.Settings(), settings)

    def test_from_conf_overrides(self):
        self.flags('multimodal_virt_pci', numa_policy='required',
                   traits=['CUSTOM_A'], placement_mode='provider_config')
        settings = nova_config.Settings.from_conf(
            self.conf.multimodal_virt_pci)
        self.assertEqual(('required', ('CUSTOM_A',), 'provider_config'),
                         (settings.numa_policy, settings.traits,
                          settings.placement_mode))

    @ddt.data(({'traits': ('HW_GPU',)}, "trait must be a custom"),
              ({'host_traits': ('custom_x',)}, "'custom_x'"),
              ({'placement_mode': 'magic'}, 'placement_mode must be one'),
              ({'numa_policy': 'strict'}, 'numa_policy must be one'),
              ({'device_spec_style': 'x'}, 'device_spec_style'))
    @ddt.unpack
    def test_bad_settings_named(self, kwargs, text):
        err = self.assertRaises(exception.MultimodalVirtError,
                                nova_config.Settings, **kwargs)
        self.assertIn(text, str(err))

    @ddt.data(('{nope}', 'not a valid format string'),
              ('bad name with spaces', 'alias name'))
    @ddt.unpack
    def test_bad_alias_format(self, fmt, text):
        settings = nova_config.Settings(alias_name_format=fmt)
        err = self.assertRaises(exception.MultimodalVirtError,
                                settings.alias_name, '10de', '20f1')
        self.assertIn(text, str(err))

    def test_bad_resource_class_format(self):
        settings = nova_config.Settings(resource_class_format='GPU-{vendor}')
        err = self.assertRaises(exception.MultimodalVirtError,
                                settings.resource_class, '10de', '20f1')
        self.assertIn("'GPU-NVIDIA'", str(err))
