"""gpu_fence naming of drivers (pure logic, a recorded kallsyms)."""

import os
import tempfile

from multimodal_virt.collector.probes import gpu_fence
from tests import base

KALLSYMS = """\
ffffffff81000000 T _stext
ffffffff81a01230 t dma_fence_stub_get_name
ffffffff82b00000 t i915_fence_get_driver_name
ffffffffc0a01230 t virtio_gpu_get_driver_name\t[virtio_gpu]
ffffffffc0b04560 t amdgpu_fence_get_driver_name\t[amdgpu]
garbage line
"""
HIDDEN = """\
0000000000000000 T _stext
0000000000000000 t virtio_gpu_get_driver_name\t[virtio_gpu]
"""


class TestDriverNames(base.TestCase):

    def kallsyms(self, text):
        fd, path = tempfile.mkstemp()
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_labels(self):
        self.assertEqual('virtio_gpu', gpu_fence.driver_label(
            'virtio_gpu_get_driver_name', 'virtio_gpu'))
        self.assertEqual('i915', gpu_fence.driver_label(
            'i915_fence_get_driver_name', ''))
        self.assertEqual('dma_fence_stub_get_name', gpu_fence.driver_label(
            'dma_fence_stub_get_name', ''))

    def test_resolve_from_kallsyms(self):
        path = self.kallsyms(KALLSYMS)
        found = gpu_fence.resolve_symbols(
            {0xffffffffc0a01230, 0xffffffff82b00000, 0x1234}, path)
        self.assertEqual({0xffffffffc0a01230: 'virtio_gpu',
                          0xffffffff82b00000: 'i915'}, found)

    def test_hidden_addresses_name_nothing(self):
        path = self.kallsyms(HIDDEN)
        self.assertEqual({}, gpu_fence.resolve_symbols({0xffffffffc0a01230},
                                                       path))

    def test_missing_kallsyms_is_logged(self):
        self.assertEqual({}, gpu_fence.resolve_symbols({1}, '/nonexistent'))

    def test_addresses_never_become_labels(self):
        calls = []

        def resolver(addresses):
            calls.append(set(addresses))
            return {0xffffffffc0a01230: 'virtio_gpu'}

        names = gpu_fence.DriverNames(resolver)
        labels = names.labels({0, 0xffffffffc0a01230, 0xffffffffc0ffee00})
        self.assertEqual({0: 'unknown', 0xffffffffc0a01230: 'virtio_gpu',
                          0xffffffffc0ffee00: 'driver2'}, labels)
        for label in labels.values():
            self.assertNotIn('ffff', label)
        # Known addresses are not resolved again; labels stay stable.
        self.assertEqual(labels, names.labels(set(labels)))
        self.assertEqual(1, len(calls))


class TestInflightTable(base.TestCase):

    def test_slots_round_up_to_a_power_of_two(self):
        self.assertEqual([128, 128, 256, 16384, 32768],
                         [gpu_fence.inflight_slots(n)
                          for n in (100, 128, 129, 16384, 16385)])

    def test_probe_sizes_the_array_and_its_mask_together(self):
        self.flags('multimodal_virt_probes', fence_inflight_max_entries=1000,
                   max_gpu_fence_keys=64)
        probe = gpu_fence.GpuFenceProbe(self.conf)
        self.assertEqual({'targ_inflight_mask': 1023}, probe.settings())
        self.assertEqual({'inflight': 1024, 'hist': 64}, probe.max_entries())
        self.assertEqual(({'targ_inflight_mask': 127}, {'inflight': 128}),
                         gpu_fence.synth_settings(128))
