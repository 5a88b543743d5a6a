"""Unit tests of the store and Placement publishers."""

import os

import fixtures
from keystoneauth1 import exceptions as ks_exc

from multimodal_virt.collector.publishers import placement
from multimodal_virt.collector.publishers import store
from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.stores import file as file_store
from tests import base

RP = '11111111-2222-4333-8444-555555555555'


def _sample(io=None, gpu_cmd=None, host='compute-1'):
    return sample_mod.HostSample(host=host, timestamp=1000.0, window_s=1.0,
                                 source='ebpf', io=io, gpu_cmd=gpu_cmd)


def _hist(value, count=100):
    return hist.LatencyHistogram.from_values([value] * count)


class TestStorePublisher(base.TestCase):

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'stats')
        self.flags('multimodal_virt_store', driver='file',
                   file_path=self.path)

    def test_publish_loads_configured_store(self):
        publisher = store.StorePublisher(self.conf)
        sample = _sample(io=_hist(100))
        publisher.publish(sample)
        self.assertIsInstance(publisher.store, file_store.FileStore)
        self.assertEqual({'compute-1': sample},
                         file_store.FileStore(self.conf).get_all())
        publisher.close()

    def test_store_down_is_a_publish_error(self):
        with open(self.path, 'w') as handle:  # a file where a dir should be
            handle.write('x')
        publisher = store.StorePublisher(self.conf)
        err = self.assertRaises(exception.PublishError, publisher.publish,
                                _sample())
        self.assertIn('compute-1', str(err))

    def test_unknown_driver_is_a_publish_error(self):
        self.flags('multimodal_virt_store', driver='nosuchdriver')
        publisher = store.StorePublisher(self.conf)
        err = self.assertRaises(exception.PublishError, publisher.publish,
                                _sample())
        self.assertIn('nosuchdriver', str(err))


class TestTiers(base.TestCase):

    def test_tier_for(self):
        self.assertEqual('LOW', placement.tier_for(10, 10, 100))
        self.assertEqual('MEDIUM', placement.tier_for(11, 10, 100))
        self.assertEqual('HIGH', placement.tier_for(101, 10, 100))

    def test_trait_names(self):
        self.assertEqual('CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW',
                         placement.trait_name('io', 'LOW'))
        self.assertEqual('CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_HIGH',
                         placement.trait_name('gpu_cmd', 'HIGH'))
        self.assertEqual(6, len(placement.owned_traits()))
        for trait in placement.owned_traits():
            self.assertTrue(trait.startswith('CUSTOM_MULTIMODAL_VIRT_'))

    def test_desired_tiers(self):
        self.flags('multimodal_virt_collector', io_latency_low_max_us=1000,
                   io_latency_medium_max_us=10000, tier_percentile='p50')
        options = self.conf.multimodal_virt_collector
        wanted = placement.desired_tiers(
            _sample(io=_hist(5000), gpu_cmd=hist.LatencyHistogram(())),
            options)
        self.assertEqual('CUSTOM_MULTIMODAL_VIRT_IO_LAT_MEDIUM',
                         wanted['io'])
        self.assertIs(placement.KEEP, wanted['gpu_cmd'])
        wanted = placement.desired_tiers(_sample(), options)
        self.assertEqual({'io': None, 'gpu_cmd': None}, wanted)

    def test_merge_keeps_foreign_traits(self):
        current = {'HW_CPU_X86_AVX2', 'CUSTOM_OTHER',
                   'CUSTOM_MULTIMODAL_VIRT_SOMETHING_ELSE',
                   'CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW',
                   'CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_LOW'}
        new = placement.merge_traits(
            current, {'io': 'CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH',
                      'gpu_cmd': placement.KEEP})
        self.assertEqual({'HW_CPU_X86_AVX2', 'CUSTOM_OTHER',
                          'CUSTOM_MULTIMODAL_VIRT_SOMETHING_ELSE',
                          'CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH',
                          'CUSTOM_MULTIMODAL_VIRT_GPU_CMD_LAT_LOW'}, new)
        new = placement.merge_traits(current, {'io': None, 'gpu_cmd': None})
        self.assertEqual({'HW_CPU_X86_AVX2', 'CUSTOM_OTHER',
                          'CUSTOM_MULTIMODAL_VIRT_SOMETHING_ELSE'}, new)

    def test_thresholds_validated(self):
        self.flags('multimodal_virt_collector', io_latency_low_max_us=500,
                   io_latency_medium_max_us=100)
        err = self.assertRaises(exception.CollectorConfigError,
                                placement.PlacementPublisher, self.conf)
        self.assertIn('io_latency_low_max_us', str(err))


class Response(object):
    def __init__(self, status, body=None):
        self.status_code = status
        self._body = body or {}
        self.text = str(body)

    def json(self):
        return self._body


class FakePlacement(object):
    """Scripted Placement: records calls, answers from a queue per URL."""

    def __init__(self, traits=(), conflicts=0, down=False):
        self.traits = set(traits)
        self.generation = 5
        self.conflicts = conflicts
        self.down = down
        self.calls = []

    def request(self, url, method, **kwargs):
        self.calls.append((method, url))
        if self.down:
            raise ks_exc.ConnectFailure('connection refused')
        if url == '/resource_providers':
            return Response(200, {'resource_providers': [{'uuid': RP}]})
        if url.startswith('/traits/'):
            return Response(201)
        if method == 'GET':
            return Response(200, {'traits': sorted(self.traits),
                                  'resource_provider_generation':
                                      self.generation})
        body = kwargs['json']
        if self.conflicts:
            self.conflicts -= 1
            self.generation += 1
            return Response(409, {'errors': [{'code':
                                              'placement.concurrent_update'}]})
        assert body['resource_provider_generation'] == self.generation
        self.traits = set(body['traits'])
        self.generation += 1
        return Response(200, {})


class TestPlacementPublisher(base.TestCase):

    def _publisher(self, fake):
        publisher = placement.PlacementPublisher(self.conf)
        publisher._adapter = fake
        return publisher

    def _puts(self, fake):
        return [c for c in fake.calls
                if c == ('PUT', '/resource_providers/%s/traits' % RP)]

    def test_writes_only_when_tier_changes(self):
        fake = FakePlacement(traits={'HW_CPU_X86_AVX2'})
        publisher = self._publisher(fake)
        self.assertTrue(publisher.publish(_sample(io=_hist(100))))
        self.assertEqual({'HW_CPU_X86_AVX2',
                          'CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'}, fake.traits)
        calls = len(fake.calls)
        # Same tier, and a quiet window: no request at all.
        self.assertFalse(publisher.publish(_sample(io=_hist(200))))
        self.assertFalse(publisher.publish(
            _sample(io=hist.LatencyHistogram(()))))
        self.assertEqual(calls, len(fake.calls))
        self.assertTrue(publisher.publish(_sample(io=_hist(50000))))
        self.assertEqual({'HW_CPU_X86_AVX2',
                          'CUSTOM_MULTIMODAL_VIRT_IO_LAT_HIGH'}, fake.traits)
        self.assertEqual(2, len(self._puts(fake)))

    def test_retries_once_on_generation_conflict(self):
        fake = FakePlacement(conflicts=1)
        self.assertTrue(self._publisher(fake).publish(_sample(io=_hist(1))))
        self.assertEqual(2, len(self._puts(fake)))
        self.assertIn('CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW', fake.traits)

    def test_second_conflict_is_a_publish_error(self):
        fake = FakePlacement(conflicts=2)
        publisher = self._publisher(fake)
        err = self.assertRaises(exception.PublishError, publisher.publish,
                                _sample(io=_hist(1)))
        self.assertIn('409', str(err))
        # Nothing was remembered: the next window tries again.
        fake.conflicts = 0
        self.assertTrue(publisher.publish(_sample(io=_hist(1))))

    def test_placement_down_is_a_publish_error(self):
        err = self.assertRaises(exception.PublishError,
                                self._publisher(FakePlacement(down=True))
                                .publish, _sample(io=_hist(1)))
        self.assertIn('connection refused', str(err))

    def test_existing_matching_traits_are_not_rewritten(self):
        fake = FakePlacement(traits={'CUSTOM_MULTIMODAL_VIRT_IO_LAT_LOW'})
        publisher = self._publisher(fake)
        self.assertFalse(publisher.publish(_sample(io=_hist(1))))
        self.assertEqual([], self._puts(fake))

    def test_provider_not_found(self):
        class Empty(FakePlacement):
            def request(self, url, method, **kwargs):
                return Response(200, {'resource_providers': []})
        err = self.assertRaises(exception.PublishError,
                                self._publisher(Empty()).publish,
                                _sample(io=_hist(1)))
        self.assertIn('compute-1', str(err))
