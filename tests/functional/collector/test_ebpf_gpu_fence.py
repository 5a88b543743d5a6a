"""gpu_fence on the real kernel, with synthetic fences (BPF_PROG_TEST_RUN).

No DRM driver runs here, so nothing emits fences. The production tp_btf
programs are attached to the real dma_fence tracepoints; the same object's
raw_tp programs run the same code with the fence pointer (the key, never
dereferenced), the clock and the driver taken from their arguments. They
prove the arithmetic, the per-process keys, the map bounds and the drop
counters in the kernel's own BPF runtime.
"""

import math
import os
import time

import fixtures

from multimodal_virt.collector.bpf import backend as bpf_backend
from multimodal_virt.collector import sample_builder
from multimodal_virt.collector.probes import gpu_fence
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import signing
from tests import base
from tests.functional.collector import ebpf_base

EMIT = 'mmv_fence_emit_synth'
SIGNAL = 'mmv_fence_signaled_synth'
DRIVER = 0xffffffffc0de0000       # any value: user space only names it
T0 = 10 ** 12                    # synthetic clock, ns
UUID_A = 'aaaaaaaa-0000-4000-8000-000000000001'


def slot(delta_ns):
    us = delta_ns // 1000
    return min(31, 0 if us <= 1 else int(math.log2(us)))


class FenceTestCase(ebpf_base.EbpfTestCase):

    def synth(self, **sizes):
        """Load the raw_tp programs (unattached) with map sizes."""
        group = self.conf.multimodal_virt_libbpf
        settings, max_entries = gpu_fence.synth_settings(
            sizes.get('inflight', 1024))
        max_entries['hist'] = sizes.get('hist', 64)
        loaded = bpf_backend.LibbpfBackend(group).load(
            gpu_fence.SYNTH_SPEC, settings, max_entries)
        self.addCleanup(loaded.close)
        return loaded

    @staticmethod
    def in_flight(loaded):
        """Fences holding a slot of the in-flight table."""
        return sorted(value[0] for value in loaded.read('inflight').values()
                      if value[0])

    def probe_over(self, loaded, resolver=None):
        """A GpuFenceProbe reading ``loaded``'s maps."""
        names = gpu_fence.DriverNames(resolver or (lambda addrs: {}))
        probe = gpu_fence.GpuFenceProbe(self.conf, names=names)
        probe._loaded = loaded
        return probe

    @staticmethod
    def dropped(loaded):
        """Drop counters (``inflight``, ``hist``) and anomalies by name."""
        return ebpf_base.counters_by_name(loaded, gpu_fence.SPEC,
                                          gpu_fence.ANOMALIES)


class TestProductionPrograms(FenceTestCase):

    def test_attaches_to_the_dma_fence_tracepoints(self):
        probe = self.started(gpu_fence.GpuFenceProbe)
        # Nothing runs on dma_fence_destroy (expired slots are swept).
        self.assertEqual(('dma_fence:dma_fence_emit',
                          'dma_fence:dma_fence_signaled'), probe.events)
        self.assertEqual(2, len(probe.loaded.prog_ids()))
        reading = probe.collect()
        self.assertEqual('ebpf', reading.source)
        # Nothing emits fences on this host (no DRM driver).
        self.assertEqual(0, reading.gpu_exec.count)
        self.assertEqual({}, reading.gpu_exec_by_pid)

    def test_not_observable_without_a_gpu_node(self):
        self.flags('multimodal_virt_probes',
                   gpu_device_globs=['/nonexistent/dri/*'])
        probe = self.started(gpu_fence.GpuFenceProbe)
        self.assertEqual((), probe.collect().gpu_observed)
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/null'])
        self.assertEqual(('gpu_exec',), probe.collect().gpu_observed)


class TestSyntheticFences(FenceTestCase):

    DELTAS_NS = (0, 999, 1500, 2000, 3000 * 1000, 1023 * 1000,
                 1024 * 1000, 2 ** 40 * 1000)

    def test_arithmetic_slot_per_delta(self):
        loaded = self.synth()
        expected = [0] * 32
        for index, delta in enumerate(self.DELTAS_NS):
            fence = 0x1000 + index * 64
            loaded.test_run(EMIT, [fence, T0, DRIVER])
            loaded.test_run(SIGNAL, [fence, T0 + delta, 0])
            expected[slot(delta)] += 1
        # A signal "before" its emit is not a latency: not counted.
        loaded.test_run(EMIT, [0x9000, T0, DRIVER])
        loaded.test_run(SIGNAL, [0x9000, T0 - 1, 0])
        entries = loaded.read('hist')
        self.assertEqual([(DRIVER, os.getpid(), 0)], list(entries))
        self.assertEqual(tuple(expected), entries[(DRIVER, os.getpid(), 0)])
        self.assertEqual([], self.in_flight(loaded))
        self.assertEqual(0, self.dropped(loaded)['unmatched_signal'])

    def test_real_clock_matches_an_independent_measure(self):
        loaded = self.synth()
        start = time.monotonic_ns()     # CLOCK_MONOTONIC, as bpf_ktime
        loaded.test_run(EMIT, [0x2000, 0, DRIVER])
        emitted = time.monotonic_ns()
        time.sleep(0.005)
        signal_start = time.monotonic_ns()
        loaded.test_run(SIGNAL, [0x2000, 0, 0])
        end = time.monotonic_ns()
        slots = loaded.read('hist')[(DRIVER, os.getpid(), 0)]
        self.assertEqual(1, sum(slots))
        got = slots.index(1)
        self.assertGreaterEqual(got, slot(signal_start - emitted))
        self.assertLessEqual(got, slot(end - start))

    def test_per_process_keys_and_instances(self):
        loaded = self.synth()
        children = []
        for index in range(3):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    for n in range(index + 1):
                        fence = 0x100000 * (index + 1) + n * 64
                        loaded.test_run(EMIT, [fence, T0, DRIVER])
                        loaded.test_run(SIGNAL, [fence, T0 + 50000, 0])
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        for pid in children:
            self.assertEqual(0, os.waitstatus_to_exitcode(
                os.waitpid(pid, 0)[1]))
        probe = self.probe_over(loaded,
                                lambda addrs: {DRIVER: 'virtio_gpu'})
        reading = probe.read()
        self.assertEqual({pid: n + 1 for n, pid in enumerate(children)},
                         {pid: h.count for pid, h in
                          reading.gpu_exec_by_pid.items()})
        self.assertEqual({'virtio_gpu': 6},
                         {k: v.count for k, v in
                          reading.gpu_exec_by_device.items()})
        self.assertEqual(6, reading.gpu_exec.count)
        # pid -> instance through the collector's attribution map.
        sample = sample_builder.build_sample(
            'h', [reading], 1.0, attribution={children[2]: UUID_A},
            timestamp=time.time())
        self.assertEqual({UUID_A: 3}, {k: v.count for k, v in
                                       sample.gpu_exec_by_instance.items()})
        # The window was emptied by the read.
        self.assertEqual(0, probe.read().gpu_exec.count)

    def test_inflight_bound_and_drop_counter(self):
        loaded = self.synth(inflight=100)   # rounded up to 128 slots
        self.assertEqual(128, len(loaded.read('inflight')))
        fences = [0x10000 + n * 64 for n in range(200)]
        for fence in fences:
            loaded.test_run(EMIT, [fence, T0, DRIVER])
        held = self.in_flight(loaded)
        self.assertLessEqual(len(held), 128)
        self.assertLess(len(set(fences) - set(held)), 200)
        for fence in fences:
            loaded.test_run(SIGNAL, [fence, T0 + 10000, 0])
        self.assertEqual([], self.in_flight(loaded))
        dropped = self.dropped(loaded)
        # Every emit is either held and measured or counted as dropped.
        self.assertGreater(dropped['inflight'], 0)
        self.assertEqual(200 - len(held), dropped['inflight'])
        self.assertEqual(0, dropped['hist'])
        # The signals of the dropped emits: counted apart, not as losses.
        self.assertEqual(dropped['inflight'], dropped['unmatched_signal'])
        self.assertEqual(len(held), sum(loaded.read('hist')[
            (DRIVER, os.getpid(), 0)]))

    def test_a_slot_left_by_a_freed_fence_is_reused(self):
        loaded = self.synth()
        # A fence released without signaling (no program sees that): a new
        # fence at the same address takes its slot over.
        loaded.test_run(EMIT, [0x5000, T0, DRIVER])
        loaded.test_run(EMIT, [0x5000, T0 + 7000, DRIVER])
        self.assertEqual([0x5000], self.in_flight(loaded))
        loaded.test_run(SIGNAL, [0x5000, T0 + 9000, 0])
        slots = loaded.read('hist')[(DRIVER, os.getpid(), 0)]
        self.assertEqual(1, slots[slot(2000)])
        self.assertEqual(1, sum(slots))

    def test_overflow_reaches_the_published_sample_logged_once(self):
        """Fence map overflow -> reading -> signed v2 sample -> decoded."""
        loaded = self.synth(inflight=128)
        probe = self.probe_over(loaded)
        ebpf_base.logger_enabled(self, 'multimodal_virt.collector.bpf.probe')
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.probe'))
        keyring = signing.Keyring([base.TEST_SIGNING_KEY])

        def window(emits):
            fences = [0x40000 + n * 64 for n in range(emits)]
            for fence in fences:
                loaded.test_run(EMIT, [fence, T0, DRIVER])
            for fence in fences:
                loaded.test_run(SIGNAL, [fence, T0 + 10000, 0])
            reading = probe.collect()
            sample = sample_builder.build_sample(
                'fence-host', [reading], 1.0, timestamp=time.time())
            return reading, codec.decode_one(
                codec.encode(sample, keyring), 'fence-host', keyring)

        lost = 0
        for emits in (200, 160, 10):
            reading, published = window(emits)
            measured = reading.gpu_exec.count
            # Test runs never nest: no event skipped by the kernel.
            self.assertEqual({'gpu_fence.inflight': emits - measured,
                              'gpu_fence.hist': 0, 'gpu_fence.nested': 0},
                             reading.dropped)
            self.assertEqual(emits - measured,
                             published.dropped['gpu_fence.inflight'])
            self.assertEqual(0, published.dropped['gpu_fence.hist'])
            self.assertEqual(measured, published.gpu_exec.count)
            if emits > 128:
                self.assertGreater(emits - measured, 0)
            else:
                # Counters are per window: nothing lost, 0 published.
                self.assertEqual(10, measured)
            lost += emits - measured
        # Logged once, naming the option that sizes the map.
        warnings = [line for line in logs.output.splitlines()
                    if 'map inflight was full' in line]
        self.assertEqual(1, len(warnings), logs.output)
        self.assertIn('fence_inflight_max_entries', warnings[0])
        self.assertEqual(lost, probe.anomalies['unmatched_signal'])

    def test_histogram_keys_bound_and_drop_counter(self):
        loaded = self.synth(hist=16)
        for n in range(20):
            fence = 0x20000 + n * 64
            loaded.test_run(EMIT, [fence, T0, DRIVER + n])
            loaded.test_run(SIGNAL, [fence, T0 + 10000, 0])
        self.assertEqual(16, len(loaded.read('hist')))
        self.assertEqual(4, self.dropped(loaded)['hist'])
        reading = self.probe_over(loaded).collect()
        self.assertEqual(4, reading.dropped['gpu_fence.hist'])
        self.assertEqual(16, reading.gpu_exec.count)

    def test_slots_of_fences_never_signaled_expire(self):
        loaded = self.synth()
        probe = self.probe_over(loaded)
        probe._sweep(now_ns=T0)              # the first sweep: nothing old
        self.assertEqual(0, probe.anomalies['expired'])
        # Two fences released without signaling, one still in flight.
        loaded.test_run(EMIT, [0x3000, T0, DRIVER])
        loaded.test_run(EMIT, [0x3040, T0 + 1000, DRIVER])
        young = T0 + int(gpu_fence.FENCE_MAX_AGE_S * 1e9)
        loaded.test_run(EMIT, [0x3080, young, DRIVER])
        self.assertEqual([0x3000, 0x3040, 0x3080], self.in_flight(loaded))
        # Within the sweep interval nothing is read.
        probe._sweep(now_ns=T0 + 10 ** 9)
        self.assertEqual(3, len(self.in_flight(loaded)))
        probe._sweep(now_ns=young + 2000)
        self.assertEqual([0x3080], self.in_flight(loaded))
        self.assertEqual(2, probe.anomalies['expired'])
        # The one in flight is still measured.
        loaded.test_run(SIGNAL, [0x3080, young + 5000, 0])
        self.assertEqual(1, sum(loaded.read('hist')[
            (DRIVER, os.getpid(), 0)]))
        self.assertEqual(0, self.dropped(loaded)['unmatched_signal'])

    def test_read_array_is_the_whole_table(self):
        loaded = self.synth(inflight=256)
        raw = loaded.read_array('inflight')
        self.assertEqual(256 * 32, len(raw))
        loaded.test_run(EMIT, [0x6000, T0, DRIVER])
        slots = [gpu_fence._SLOT.unpack_from(raw, i * 32)
                 for i in range(256)]
        self.assertEqual([], [s for s in slots if s[0]])
        raw = loaded.read_array('inflight')
        held = [gpu_fence._SLOT.unpack_from(raw, i * 32)
                for i in range(256)]
        self.assertEqual([(0x6000, T0, DRIVER, os.getpid(), 0)],
                         [s for s in held if s[0]])
