"""GPU SLOs inside Nova's real scheduler: hosts that cannot measure them.

A passthrough-VF host measures VF busy but no GPU latency; with
``gpu_slo_requires_measurement`` (default) a flavor with a ``gpu_exec``
SLO never lands there, while flavors without GPU SLOs still do.
"""

import collections
import time

import fixtures
from nova.tests.functional import integrated_helpers
from oslo_config import cfg

from multimodal_virt import conf as mmv_conf
from multimodal_virt.metrics import histogram
from multimodal_virt.metrics import sample
from multimodal_virt.metrics import vocabulary
from multimodal_virt.stores import file as file_store
from tests import base as test_base
from tests.functional import nova_env

HOSTS = ('host1', 'host2', 'host3')
FILTER = 'multimodal_virt.scheduler.latency_filter.LatencyFilter'
WEIGHER = 'multimodal_virt.scheduler.latency_weigher.LatencyWeigher'


def _hist(value, events=100):
    return histogram.LatencyHistogram.from_values([value] * events)


class GpuSloSchedulingTest(integrated_helpers.ProviderUsageBaseTestCase):

    compute_driver = 'fake.MediumFakeDriver'
    microversion = '2.86'

    def setUp(self):
        self.stats_dir = self.useFixture(fixtures.TempDir()).path
        mmv_conf.register_opts(cfg.CONF)
        self.flags(api_paste_config=nova_env.api_paste_config(),
                   group='wsgi')
        self.flags(available_filters=['nova.scheduler.filters.all_filters',
                                      FILTER],
                   enabled_filters=['ComputeFilter', 'LatencyFilter'],
                   weight_classes=[WEIGHER],
                   group='filter_scheduler')
        self.flags(driver='file', file_path=self.stats_dir,
                   signing_keys=[test_base.TEST_SIGNING_KEY],
                   group='multimodal_virt_store')
        self.flags(refresh_interval=0.0, group='multimodal_virt_scheduler')
        super().setUp()
        store = file_store.FileStore(cfg.CONF)
        now = time.time()
        # host1: the best I/O, a passthrough-VF host (busy, no latency).
        store.put(sample.HostSample(
            host='host1', timestamp=now, window_s=10.0, source='ebpf',
            io=_hist(60), gpu_busy={'0000:03:00.1': 0.35},
            observable=dict.fromkeys(vocabulary.GPU_METRICS, False)))
        # host2: mediated GPU work measured by the fence probe.
        store.put(sample.HostSample(
            host='host2', timestamp=now, window_s=10.0, source='ebpf',
            io=_hist(250), gpu_exec=_hist(900)))
        # host3: a GPU host idle this window: observable, no events.
        store.put(sample.HostSample(
            host='host3', timestamp=now, window_s=10.0, source='ebpf',
            io=_hist(1000), observable={'gpu_cmd': False, 'gpu_submit': False,
                                        'gpu_wait': False}))
        for host in HOSTS:
            self._start_compute(host)
        self.plain = self._create_flavor(name='plain', memory_mb=256,
                                         vcpu=1, disk=1, ephemeral=0)
        self.gpu_slo = self._create_flavor(
            name='gpu-slo', memory_mb=256, vcpu=1, disk=1, ephemeral=0,
            extra_spec={'multimodal_virt:gpu_exec_p99_us': '5000'})

    def _boot(self, flavor_id):
        server = self._create_server(flavor_id=flavor_id, networks='none',
                                     expected_state='ACTIVE')
        return server['OS-EXT-SRV-ATTR:host']

    def test_gpu_slo_skips_the_unmeasurable_host(self):
        self.assertEqual('host1', self._boot(self.plain))
        placed = collections.Counter(self._boot(self.gpu_slo)
                                     for _ in range(4))
        self.assertEqual(0, placed['host1'], placed)
        self.assertEqual(4, placed['host2'] + placed['host3'], placed)

    def test_option_off_lets_it_land_there(self):
        self.flags(gpu_slo_requires_measurement=False,
                   group='multimodal_virt_scheduler')
        self.assertEqual('host1', self._boot(self.gpu_slo))
