"""GPU SLOs inside Nova's real scheduler: hosts that cannot measure them.

A passthrough-VF host measures VF busy but no GPU latency; with
``gpu_slo_requires_measurement`` (default) a flavor with a ``gpu_exec``
SLO never lands there, while flavors without GPU SLOs still do.
"""

import collections
import time

from multimodal_virt.metrics import histogram
from multimodal_virt.metrics import sample
from multimodal_virt.metrics import vocabulary
from tests.functional.scheduler import base


def _hist(value, events=100):
    return histogram.LatencyHistogram.from_values([value] * events)


class GpuSloSchedulingTest(base.SchedulingTestBase):

    hosts = ('host1', 'host2', 'host3')

    def setUp(self):
        super().setUp()
        now = time.time()
        # host1: the best I/O, a passthrough-VF host (busy, no latency).
        self.store.put(sample.HostSample(
            host='host1', timestamp=now, window_s=10.0, source='ebpf',
            io=_hist(60), gpu_busy={'0000:03:00.1': 0.35},
            observable=dict.fromkeys(vocabulary.GPU_METRICS, False)))
        # host2: mediated GPU work measured by the fence probe.
        self.store.put(sample.HostSample(
            host='host2', timestamp=now, window_s=10.0, source='ebpf',
            io=_hist(250), gpu_exec=_hist(900)))
        # host3: a GPU host idle this window: observable, no events.
        self.store.put(sample.HostSample(
            host='host3', timestamp=now, window_s=10.0, source='ebpf',
            io=_hist(1000), observable={'gpu_cmd': False, 'gpu_submit': False,
                                        'gpu_wait': False}))
        self.plain = self._create_flavor(name='plain', memory_mb=256,
                                         vcpu=1, disk=1, ephemeral=0)
        self.gpu_slo = self._create_flavor(
            name='gpu-slo', memory_mb=256, vcpu=1, disk=1, ephemeral=0,
            extra_spec={'multimodal_virt:gpu_exec_p99_us': '5000'})

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
