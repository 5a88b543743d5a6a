"""``multimodal-virt flavor create`` against Nova's API running in-process.

Nova 34's real API (its functional test base, DB, extra spec validators
including ours loaded from the entry point) is reached by python-novaclient
over keystoneauth; wsgi-intercept routes the HTTP calls to the in-process
WSGI app, as for Nova's own functional tests.
"""

import argparse
import io
import json

from keystoneauth1 import loading
from keystoneauth1 import session as ks_session
from nova.tests import fixtures as nova_fixtures
from nova import test

from multimodal_virt.cli import flavor
from multimodal_virt import exception
from tests.functional import nova_env


class FlavorCreateTest(test.TestCase):
    """Create, update and refuse flavors through the real Nova API."""

    def setUp(self):
        super().setUp()
        self.flags(api_paste_config=nova_env.api_paste_config(),
                   group='wsgi')
        self.api_fixture = self.useFixture(
            nova_fixtures.OSAPIFixture(api_version='v2.1'))
        self.admin_api = self.api_fixture.admin_api
        self.admin_api.microversion = '2.86'
        endpoint = self.api_fixture.base_url
        auth = loading.get_plugin_loader('admin_token').load_from_options(
            endpoint=endpoint, token='admin')
        # The fixture stubs keystonemiddleware: identity comes from these
        # headers, as with Nova's own TestOpenStackClient.
        self.session = ks_session.Session(auth=auth, additional_headers={
            'X-Auth-User': 'admin', 'X-User-Id': 'admin',
            'X-Auth-Project-Id': self.api_fixture.project_id,
            'X-Roles': 'reader,member,admin'})
        self.endpoint = endpoint
        parser = argparse.ArgumentParser()
        flavor.add_parser(parser.add_subparsers())
        self.parser = parser

    def _run(self, *argv):
        args = self.parser.parse_args(['flavor', 'create'] + list(argv))
        out = io.StringIO()
        code = args.func(args, out=out, session=self.session,
                         endpoint_override=self.endpoint)
        self.assertEqual(0, code)
        return json.loads(out.getvalue())

    def _nova_flavor(self, name):
        matches = [f for f in self.admin_api.get_flavors()
                   if f['name'] == name]
        if not matches:
            return None
        found = self.admin_api.get_flavor(matches[0]['id'])
        found['extra_specs'] = self.admin_api.get_extra_specs(
            found['id'])
        return found

    def test_create_then_update(self):
        result = self._run('gpu.video', '--ram', '512', '--vcpus', '2',
                           '--disk', '1', '--pci-alias',
                           'mmv-nvidia-20f1-vf:1', '--slo',
                           'gpu_cmd_p99_us=500', '--slo',
                           'multimodal_virt:io_p99_us=2000')
        self.assertEqual('created', result['action'])
        stored = self._nova_flavor('gpu.video')
        self.assertEqual((512, 2, 1), (stored['ram'], stored['vcpus'],
                                       stored['disk']))
        self.assertEqual({'pci_passthrough:alias': 'mmv-nvidia-20f1-vf:1',
                          'multimodal_virt:gpu_cmd_p99_us': '500',
                          'multimodal_virt:io_p99_us': '2000'},
                         stored['extra_specs'])

        # Update: tighten one SLO, drop another, ask for two VFs; the
        # flavor (id, ram) stays the same.
        result = self._run('gpu.video', '--ram', '512', '--slo',
                           'io_p99_us=1500', '--pci-alias',
                           'mmv-nvidia-20f1-vf:2', '--unset',
                           'multimodal_virt:gpu_cmd_p99_us')
        self.assertEqual('updated', result['action'])
        self.assertEqual(stored['id'], result['id'])
        self.assertEqual({'pci_passthrough:alias': 'mmv-nvidia-20f1-vf:2',
                          'multimodal_virt:io_p99_us': '1500'},
                         self._nova_flavor('gpu.video')['extra_specs'])
        self.assertEqual(1, len([f for f in self.admin_api.get_flavors()
                                 if f['name'] == 'gpu.video']))

    def test_bad_slo_refused_before_any_change(self):
        self._run('gpu.small', '--ram', '256', '--vcpus', '1',
                  '--slo', 'io_p95_us=900')
        for value, expected in (
                ('io_p99_us=fast', 'must be a whole number of microseconds'),
                ('io_p98_us=100', 'NAME one of gpu_cmd_p50_us'),
                ('gpu_p99_us=100', 'e.g. --slo io_p99_us=2000'),
                ('io_p99_us=0', 'between 1 and 3600000000')):
            err = self.assertRaises(exception.InvalidExtraSpec, self._run,
                                    'gpu.small', '--slo', value)
            self.assertIn(expected, str(err))
        err = self.assertRaises(exception.InvalidExtraSpec, self._run,
                                'gpu.new', '--ram', '256', '--vcpus', '1',
                                '--property', 'multimodal_virt:io_p9_us=1')
        self.assertIn('unknown extra spec multimodal_virt:io_p9_us', str(err))
        self.assertEqual({'multimodal_virt:io_p95_us': '900'},
                         self._nova_flavor('gpu.small')['extra_specs'])
        self.assertIsNone(self._nova_flavor('gpu.new'))

    def test_nova_refusal_is_reported_and_new_flavor_removed(self):
        # Nova's own validator refuses hw:cpu_policy=fast: the flavor this
        # command created is deleted again, the message says why.
        err = self.assertRaises(exception.CloudApiError, self._run,
                                'gpu.bad', '--ram', '256', '--vcpus', '1',
                                '--slo', 'io_p99_us=500', '--property',
                                'hw:cpu_policy=fast')
        self.assertIn('setting extra specs', str(err))
        self.assertIn('Nova answered 400', str(err))
        self.assertIn('hw:cpu_policy', str(err))
        self.assertIsNone(self._nova_flavor('gpu.bad'))

    def test_immutable_fields_and_missing_sizes(self):
        self._run('gpu.fixed', '--ram', '256', '--vcpus', '1')
        err = self.assertRaises(exception.CloudApiError, self._run,
                                'gpu.fixed', '--ram', '512')
        self.assertIn('exists with ram=256', str(err))
        self.assertIn('Nova cannot change ram', str(err))
        err = self.assertRaises(exception.CloudApiError, self._run,
                                'gpu.unknown', '--slo', 'io_p99_us=5')
        self.assertIn('does not exist; --ram and --vcpus are needed', str(err))

    def test_recommended_specs_are_set_through_nova(self):
        # Every flavor command `analyze` recommends, run as printed (with a
        # flavor name and sizes), is accepted by Nova's API validators.
        import shlex

        from multimodal_virt.analysis import bottleneck
        from tests.unit.analysis import helpers

        thresholds = bottleneck.Thresholds(
            gpu_submit_us=1000.0, io_us=5000.0, vm_exit_rate=10000.0,
            irq_rate=50000.0, slo_headroom=0.8, top_instances=2)
        sample = helpers.host_sample('h', io_us=50000, gpu_us=90000,
                                     vm_exit_rate=90000.0,
                                     irq_rate=900000.0)
        recs = bottleneck.analyze(sample, thresholds, helpers.NOW,
                                  60.0).recommendations
        commands = [text for rec in recs for kind, text in rec.artefacts
                    if kind == 'command' and '--property' in text]
        self.assertEqual(4, len(commands))
        for number, command in enumerate(commands):
            name = 'tuned-%d' % number
            argv = shlex.split(command.replace('FLAVOR', name))[3:]
            self._run(*argv + ['--ram', '512', '--vcpus', '2',
                               '--disk', '1'])
            wanted = dict(arg.split('=', 1) for arg in argv[2::2])
            self.assertEqual(wanted, self._nova_flavor(name)['extra_specs'])
