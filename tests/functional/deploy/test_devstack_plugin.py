"""devstack plugin: shellcheck, and its phases run against a temp nova.conf.

The plugin's scripts run in a real bash with devstack's helper functions
stood in by ``devstack_functions.sh`` (INI edits through devstack-tools'
``dsconf``; setup_develop, install_package and run_process recorded), and
the real ``multimodal-virt`` command of this checkout generating the [pci]
config from a recorded SR-IOV sysfs layout. The resulting nova.conf is read
back with oslo.config and Nova's own option definitions and parsers.
"""

import configparser
import os
import shutil
import subprocess
import sys

import fixtures
import nova.conf
from nova import objects
from nova.pci import request as nova_request
from nova.pci import whitelist
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import yaml

from multimodal_virt import conf as mmv_conf
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import sysfs
from tests import base
from tests.fixtures import sysfs_builder as layouts
from tests.functional import requirements

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    'devstack_functions.sh')
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


class ShellcheckTest(base.TestCase):

    def test_scripts_pass_shellcheck(self):
        shellcheck = shutil.which('shellcheck')
        requirements.require(self, shellcheck,
                             'shellcheck (apt-get install shellcheck)')
        result = subprocess.run(
            [shellcheck, '-x', '-s', 'bash'] + list(SCRIPTS)
            + [os.path.relpath(STUB, TOP)],
            cwd=TOP, capture_output=True, text=True, check=False)
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)


class DevstackPhasesTest(base.TestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, shutil.which('bash'), 'bash')
        self.bin = os.path.dirname(sys.executable)
        requirements.require(
            self, os.path.exists(os.path.join(self.bin, 'dsconf')),
            'dsconf from devstack-tools (pip install devstack-tools)')
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.nova_conf = os.path.join(self.tmp, 'nova.conf')
        with open(self.nova_conf, 'w') as handle:
            handle.write(BASE_NOVA_CONF)
        self.record = os.path.join(self.tmp, 'record.tsv')
        self.sysfs = self.useFixture(layouts.SysfsTree('nvidia-a100')).root
        self.env = {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'HOME': self.tmp, 'DEST': self.tmp,
            'DATA_DIR': os.path.join(self.tmp, 'data'),
            'STACK_USER': subprocess.run(['id', '-un'], capture_output=True,
                                         text=True, check=True).stdout.strip(),
            'SERVICE_HOST': '192.0.2.10',
            'ENABLED_SERVICES': 'n-sch,n-cpu,mmv-collector',
            'NOVA_CONF': self.nova_conf, 'NOVA_CONF_DIR': self.tmp,
            'MMV_DIR': TOP, 'MMV_HOSTNAME': 'compute1',
            'MMV_CONF_DIR': os.path.join(self.tmp, 'etc-mmv'),
            'MMV_SYSFS_ROOT': self.sysfs,
            'MMV_TEST_RECORD': self.record, 'MMV_TEST_BIN': self.bin,
        }

    def _phases(self, *phases, **env):
        script = ['set -o errexit -o nounset -o pipefail',
                  'source %s' % STUB,
                  'source %s/devstack/settings' % TOP]
        for phase in phases:
            script.append('source %s/devstack/plugin.sh %s'
                          % (TOP, phase))
        result = subprocess.run(
            ['bash', '-c', '\n'.join(script)], cwd=self.tmp,
            env=dict(self.env, **env), capture_output=True, text=True,
            check=False, timeout=120)
        self.assertEqual(0, result.returncode,
                         result.stdout + result.stderr)
        return result

    def _recorded(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as handle:
            return [line.rstrip('\n').split('\t') for line in handle]

    def _nova(self):
        conf = cfg.ConfigOpts()
        nova.conf.scheduler.register_opts(conf)
        nova.conf.pci.register_opts(conf)
        nova.conf.compute.register_opts(conf)
        mmv = cfg.ConfigOpts()
        mmv_conf.register_opts(mmv)
        for opts in (conf, mmv):
            opts([], default_config_files=[self.nova_conf])
        return conf, mmv

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
        self._phases('stack install', 'stack post-config', 'stack extra')
        conf, mmv = self._nova()
        self._check_scheduler(conf)
        self.assertEqual('file', mmv.multimodal_virt_store.driver)
        self.assertEqual(os.path.join(self.tmp, 'data', 'multimodal-virt',
                                      'stats'),
                         mmv.multimodal_virt_store.file_path)

        # [pci]: the generated lines replaced the stale alias, and Nova's
        # own parsers accept them.
        objects.register_all()
        expected = nova_config.generate(
            sysfs.discover(self.sysfs), nova_config.Settings(),
            hostname='compute1').nova_options()
        self.assertEqual(expected[('pci', 'device_spec')],
                         conf.pci.device_spec)
        self.assertEqual(expected[('pci', 'alias')], conf.pci.alias)
        wl = whitelist.Whitelist(conf.pci.device_spec)
        self.assertEqual(len(expected[('pci', 'device_spec')]),
                         len(wl.specs))
        nova_cfg = self.useFixture(config_fixture.Config(nova.conf.CONF))
        nova_cfg.config(alias=conf.pci.alias, group='pci')
        nova_request.get_alias_from_config.cache_clear()
        self.addCleanup(nova_request.get_alias_from_config.cache_clear)
        aliases = nova_request.get_alias_from_config()
        self.assertEqual(['mmv-nvidia-20f1-vf'], list(aliases))
        self.assertTrue(conf.pci.report_in_placement)
        self.assertTrue(conf.filter_scheduler.pci_in_placement)
        provider_dir = os.path.join(self.tmp, 'provider_config')
        self.assertEqual(provider_dir, conf.compute.provider_config_location)
        with open(os.path.join(provider_dir, 'multimodal-virt.yaml')) as fh:
            provider = yaml.safe_load(fh)
        self.assertEqual({'name': 'compute1'},
                         provider['providers'][0]['identification'])

        # The collector's own config and its process.
        collector_conf = os.path.join(self.tmp, 'etc-mmv',
                                      'multimodal-virt.conf')
        parsed = configparser.ConfigParser()
        parsed.read(collector_conf)
        self.assertEqual(self.sysfs,
                         parsed['multimodal_virt_pci']['sysfs_root'])
        recorded = self._recorded()
        self.assertIn(['setup_develop', TOP], recorded)
        self.assertIn(['install_package', 'clang', 'llvm', 'libbpf-dev',
                       'bpftool'], recorded)
        self.assertIn(['run_process', 'mmv-collector',
                       '%s/multimodal-virt-collector --config-file %s'
                       % (self.bin, collector_conf), '', 'root'], recorded)

        # post-config again (re-stack): nothing added twice.
        self._phases('stack post-config')
        again, _ = self._nova()
        self._check_scheduler(again)
        self.assertEqual(conf.pci.device_spec, again.pci.device_spec)
        self.assertEqual(conf.pci.alias, again.pci.alias)

        self._phases('unstack', 'clean')
        self.assertEqual(['stop_process', 'mmv-collector'],
                         self._recorded()[-1])
        self.assertFalse(os.path.exists(collector_conf))
        self.assertFalse(os.path.exists(os.path.join(
            provider_dir, 'multimodal-virt.yaml')))

    def test_host_without_vfs_keeps_pci_alone(self):
        empty = os.path.join(self.tmp, 'sys')
        os.makedirs(os.path.join(empty, 'bus', 'pci', 'devices'))
        self._phases('stack post-config', MMV_SYSFS_ROOT=empty)
        conf, _ = self._nova()
        self.assertEqual([], conf.pci.device_spec)
        self.assertEqual(1, len(conf.pci.alias))  # the operator's, kept
        self.assertNotIn('PciPassthroughFilter',
                         conf.filter_scheduler.enabled_filters)
        self.assertIn('LatencyFilter', conf.filter_scheduler.enabled_filters)
        self.assertEqual('warn', self._recorded()[0][0])
        self.assertIn('no SR-IOV GPU VFs', self._recorded()[0][1])

    def test_memcached_store_without_collector(self):
        with open(self.nova_conf, 'w') as handle:
            handle.write('[DEFAULT]\n')  # no [filter_scheduler] yet
        self._phases('stack install', 'stack post-config', 'stack extra',
                     MMV_STORE_DRIVER='memcached', MMV_CONFIGURE_PCI='False',
                     ENABLED_SERVICES='n-sch')
        conf, mmv = self._nova()
        self.assertEqual('memcached', mmv.multimodal_virt_store.driver)
        self.assertEqual(['192.0.2.10:11211'],
                         mmv.multimodal_virt_store.memcached_servers)
        # Nova's defaults kept beside ours.
        self.assertEqual(['ComputeFilter', 'ComputeCapabilitiesFilter',
                          'ImagePropertiesFilter',
                          'ServerGroupAntiAffinityFilter',
                          'ServerGroupAffinityFilter', 'LatencyFilter'],
                         conf.filter_scheduler.enabled_filters)
        self.assertEqual([], conf.pci.device_spec)
        self.assertEqual([['setup_develop', TOP]], self._recorded())
