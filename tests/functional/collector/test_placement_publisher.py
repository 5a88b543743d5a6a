"""Placement publisher against real Placement, in-process (wsgi-intercept).

The publisher is configured as an operator would: keystoneauth options in
``[multimodal_virt_placement]`` (``admin_token`` auth with the intercepted
endpoint, Placement's noauth2 middleware accepting the ``admin`` token).
"""

import fixtures
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_utils import uuidutils
from placement.tests.functional.fixtures import placement as placement_fx
from requests import adapters

from multimodal_virt.collector.publishers import placement
from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from tests import base

HOST = 'compute-1.example.org'
FOREIGN = ['HW_CPU_X86_AVX2', 'COMPUTE_STATUS_DISABLED', 'CUSTOM_FOREIGN',
           'CUSTOM_MULTIMODAL_VIRT_NOT_A_TIER']


def _sample(io_us=None, gpu_us=None, host=HOST):
    def histogram(value):
        if value is None:
            return None
        return hist.LatencyHistogram.from_values([value] * 50)
    return sample_mod.HostSample(host=host, timestamp=1000.0, window_s=1.0,
                                 source='ebpf', io=histogram(io_us),
                                 gpu_cmd=histogram(gpu_us))


class TestPlacementPublisher(base.TestCase):

    def setUp(self):
        super().setUp()
        # wsgi-intercept cannot handle keystoneauth's TCP keepalive options.
        self.useFixture(fixtures.MonkeyPatch(
            'keystoneauth1.session.TCPKeepAliveAdapter.init_poolmanager',
            adapters.HTTPAdapter.init_poolmanager))
        self.placement = self.useFixture(
            placement_fx.PlacementFixture(token='admin'))
        group = 'multimodal_virt_placement'
        self.conf.register_opts(
            ks_loading.get_auth_plugin_conf_options('admin_token'),
            group=group)
        self.flags(group, auth_type='admin_token', token='admin',
                   endpoint=self.placement.endpoint)
        self.flags('multimodal_virt_collector', tier_percentile='p99',
                   io_latency_low_max_us=1000,
                   io_latency_medium_max_us=10000,
                   gpu_cmd_latency_low_max_us=100,
                   gpu_cmd_latency_medium_max_us=1000)
        self.client = ks_adapter.Adapter(
            ks_session.Session(auth=None), raise_exc=False,
            endpoint_override=self.placement.endpoint,
            default_microversion='1.6', service_type='placement',
            additional_headers={'x-auth-token': 'admin'})
        self.rp_uuid = self._create_provider(HOST)

    def _create_provider(self, name):
        uuid = uuidutils.generate_uuid()
        response = self.client.post('/resource_providers',
                                    json={'name': name, 'uuid': uuid})
        self.assertEqual(201, response.status_code, response.text)
        for trait in FOREIGN:
            if trait.startswith('CUSTOM_'):
                self.client.put('/traits/%s' % trait)
        self._set_traits(uuid, FOREIGN)
        return uuid

    def _traits(self, uuid=None):
        response = self.client.get('/resource_providers/%s/traits'
                                   % (uuid or self.rp_uuid))
        self.assertEqual(200, response.status_code, response.text)
        body = response.json()
        return set(body['traits']), body['resource_provider_generation']

    def _set_traits(self, uuid, traits):
        _current, generation = self._traits(uuid)
        response = self.client.put(
            '/resource_providers/%s/traits' % uuid,
            json={'traits': sorted(traits),
                  'resource_provider_generation': generation})
        self.assertEqual(200, response.status_code, response.text)

    def _ours(self, traits):
        return traits & placement.owned_traits()

    def test_tiers_written_only_on_change_and_foreign_traits_kept(self):
        publisher = placement.PlacementPublisher(self.conf)
        self.assertTrue(publisher.publish(_sample(io_us=200, gpu_us=50)))
        traits, generation = self._traits()
        self.assertEqual({'CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW',
                          'CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_LOW'},
                         self._ours(traits))
        self.assertTrue(set(FOREIGN) <= traits)

        # Same tiers (and a window without GPU work): no write at all.
        quiet = sample_mod.HostSample(
            host=HOST, timestamp=1001.0, window_s=1.0, source='ebpf',
            io=hist.LatencyHistogram.from_values([300] * 10),
            gpu_cmd=hist.LatencyHistogram(()))
        self.assertFalse(publisher.publish(quiet))
        self.assertEqual((traits, generation), self._traits())

        # A restarted collector reads the provider and still does not write.
        self.assertFalse(placement.PlacementPublisher(self.conf).publish(
            _sample(io_us=200, gpu_us=50)))
        self.assertEqual(generation, self._traits()[1])

        # I/O gets slow: only the I/O trait changes.
        self.assertTrue(publisher.publish(_sample(io_us=50000, gpu_us=50)))
        traits, new_generation = self._traits()
        self.assertEqual({'CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH',
                          'CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_LOW'},
                         self._ours(traits))
        self.assertTrue(set(FOREIGN) <= traits)
        self.assertEqual(generation + 1, new_generation)

        # The GPU probe goes away: its trait is removed, nothing else.
        self.assertTrue(publisher.publish(_sample(io_us=5000)))
        traits, _generation = self._traits()
        self.assertEqual({'CUSTOM_MULTIMODAL_VIRT_IO_LAT_MEDIUM'},
                         self._ours(traits))
        self.assertTrue(set(FOREIGN) <= traits)

        # The custom traits exist in Placement now.
        listed = self.client.get(
            '/traits', params={'name': 'startswith:CUSTOM_MULTIMODAL_VIRT_'})
        self.assertTrue({'CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW',
                         'CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH',
                         'CUSTOM_MULTIMODAL_VIRT_IO_LAT_MEDIUM'}
                        <= set(listed.json()['traits']))

    def test_concurrent_update_conflict_is_retried(self):
        publisher = placement.PlacementPublisher(self.conf)
        adapter = publisher.adapter
        real_request = adapter.request
        statuses = []

        def racing_request(url, method, **kwargs):
            # Someone else (nova-compute) changes the provider between our
            # read and our write: real Placement answers 409.
            if (method == 'PUT' and url.endswith('/traits')
                    and not statuses):
                self.client.put('/traits/CUSTOM_RACE')
                self._set_traits(self.rp_uuid, FOREIGN + ['CUSTOM_RACE'])
            response = real_request(url, method, **kwargs)
            if method == 'PUT' and url.endswith('/traits'):
                statuses.append(response.status_code)
            return response

        adapter.request = racing_request
        self.assertTrue(publisher.publish(_sample(io_us=200)))
        self.assertEqual([409, 200], statuses)
        traits, _generation = self._traits()
        self.assertIn('CUSTOM_RACE', traits)
        self.assertIn('CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW', traits)

    def test_provider_name_option_and_missing_provider(self):
        self.flags('multimodal_virt_placement',
                   resource_provider_name='no-such-node')
        publisher = placement.PlacementPublisher(self.conf)
        err = self.assertRaises(exception.PublishError, publisher.publish,
                                _sample(io_us=200))
        self.assertIn('no-such-node', str(err))
        other = self._create_provider('no-such-node')
        self.assertTrue(publisher.publish(_sample(io_us=200)))
        self.assertIn('CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW',
                      self._traits(other)[0])
        self.assertEqual(set(), self._ours(self._traits()[0]))

    def test_placement_unreachable_is_a_publish_error(self):
        self.flags('multimodal_virt_placement',
                   endpoint='http://127.0.0.1:9/placement', timeout=2)
        publisher = placement.PlacementPublisher(self.conf)
        err = self.assertRaises(exception.PublishError, publisher.publish,
                                _sample(io_us=200))
        self.assertIn('Placement', str(err))
