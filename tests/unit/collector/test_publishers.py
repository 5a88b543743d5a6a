"""Unit tests of the store publisher."""

import os

import fixtures

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
