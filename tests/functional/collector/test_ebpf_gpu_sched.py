"""gpu_sched on the real kernel: queue wait and execution of GPU jobs.

This kernel has no DRM GPU scheduler (module gpu-sched absent), so no
program attaches: the probe, and a real collector process with only
CAP_BPF and CAP_PERFMON, start and publish ``gpu_queue`` as not
observable, with no figure. The object's raw_tp programs run the same code
with the scheduler fence (the key, never dereferenced), the clock and the
driver taken from their arguments, driven with BPF_PROG_TEST_RUN: they
prove the queue/execution split, the clock, the per-process keys, the map
bounds and the drop counters in the kernel's own BPF runtime.
"""

import json
import math
import os
import subprocess
import time

import fixtures

from multimodal_virt.collector.bpf import backend as bpf_backend
from multimodal_virt.collector.bpf import build
from multimodal_virt.collector.bpf import libbpf
from multimodal_virt.collector.probes import gpu_sched
from multimodal_virt.collector import sample_builder
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import signing
from multimodal_virt.stores import file as file_store
from tests import base
from tests.functional.collector import ebpf_base
from tests.functional.collector import test_collector_process as process_base

QUEUED = 'mmv_sched_queued_synth'
RUN = 'mmv_sched_run_synth'
DONE = 'mmv_sched_done_synth'
DRIVER = 0xffffffffc0de0000       # any value: user space only names it
T0 = 10 ** 12                    # synthetic clock, ns
UUID_A = 'aaaaaaaa-0000-4000-8000-000000000001'
#: One generation's events, as the loader reports them once attached.
ATTACHED = tuple('gpu_scheduler:' + e for e in gpu_sched.GENERATIONS[0])


def slot(delta_ns):
    us = delta_ns // 1000
    return min(31, 0 if us <= 1 else int(math.log2(us)))


def no_scheduler_here():
    return not any(libbpf.btf_has_typedef('btf_trace_' + event)
                   for generation in gpu_sched.GENERATIONS
                   for event in generation)


class SchedTestCase(ebpf_base.EbpfTestCase):

    def synth(self, inflight=1024, hist=64):
        """Load the raw_tp synthetic programs (unattached)."""
        loaded = bpf_backend.LibbpfBackend(
            self.conf.multimodal_virt_libbpf).load(
                gpu_sched.SYNTH_SPEC, {},
                {'inflight': inflight, 'hist': hist})
        self.addCleanup(loaded.close)
        return loaded

    def probe_over(self, loaded, resolver=None):
        """A GpuSchedProbe reading ``loaded`` as if its programs were
        attached to one generation's events."""
        loaded.events = ATTACHED
        probe = gpu_sched.GpuSchedProbe(
            self.conf, names=gpu_sched.gpu_fence.DriverNames(
                resolver or (lambda addrs: {})))
        probe._loaded = loaded
        return probe

    @staticmethod
    def job(loaded, key, queued, run, done, driver=DRIVER):
        loaded.test_run(QUEUED, [key, queued, 0])
        loaded.test_run(RUN, [key, run, 0])
        loaded.test_run(DONE, [key, done, driver])

    @staticmethod
    def dropped(loaded):
        """Drop counters (``inflight``, ``hist``) and anomalies by name."""
        return ebpf_base.counters_by_name(loaded, gpu_sched.SPEC,
                                          gpu_sched.ANOMALIES)


class TestOnThisKernel(SchedTestCase):

    def setUp(self):
        super().setUp()
        self.assertTrue(no_scheduler_here(),
                        'this host has DRM GPU scheduler tracepoints: the '
                        'not-observable proof needs a kernel without them')

    def test_starts_and_says_not_observable(self):
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.probes.gpu_sched'))
        ebpf_base.logger_enabled(
            self, 'multimodal_virt.collector.probes.gpu_sched')
        probe = self.started(gpu_sched.GpuSchedProbe)
        self.assertEqual((), probe.events)
        self.assertIn('gpu_queue is published as not observable',
                      logs.output)
        reading = probe.collect()
        self.assertIsNone(reading.gpu_queue)
        self.assertEqual({}, reading.gpu_sched_exec)
        self.assertEqual((), reading.gpu_observed)
        self.assertEqual({'gpu_sched.inflight': 0, 'gpu_sched.hist': 0,
                          'gpu_sched.nested': 0}, reading.dropped)
        sample = sample_builder.build_sample('h', [reading], 1.0,
                                             timestamp=time.time())
        self.assertIsNone(sample.gpu_queue)
        self.assertIs(False, sample.observable['gpu_queue'])
        keyring = signing.Keyring([base.TEST_SIGNING_KEY])
        published = codec.decode_one(codec.encode(sample, keyring), 'h',
                                     keyring)
        self.assertIs(False, published.observable['gpu_queue'])
        self.assertIsNone(published.histogram('gpu_queue'))

    def test_module_field_offsets_come_from_btf(self):
        # The scheduler's types are in no BTF here: nothing is set, so the
        # probe attaches nothing rather than reading wrong fields.
        self.assertEqual({}, gpu_sched.module_offsets(
            libbpf.btf_member_offset))
        # The same lookup on a vmlinux struct agrees with bpftool.
        dump = subprocess.run(
            ['bpftool', 'btf', 'dump', 'file', '/sys/kernel/btf/vmlinux'],
            capture_output=True, text=True, check=True).stdout
        lines = iter(dump.splitlines())
        for line in lines:
            if "STRUCT 'dma_fence' " in line:
                break
        members = {}
        for line in lines:
            if not line.startswith('\t'):
                break
            name = line.split("'")[1]
            if name == '(anon)':   # an anonymous union: no name to find
                continue
            members[name] = int(line.split('bits_offset=')[1].split()[0])
        self.assertIn('ops', members)
        for name, bits in members.items():
            self.assertEqual(bits // 8,
                             libbpf.btf_member_offset('dma_fence', name),
                             name)
        self.assertIsNone(libbpf.btf_member_offset('dma_fence', 'nosuch'))


class TestCollectorProcess(process_base.CollectorProcessTestCase):
    """A real collector with CAP_BPF and CAP_PERFMON only."""

    def test_publishes_gpu_queue_as_not_observable(self):
        self.assertTrue(no_scheduler_here())
        build.build_all(ebpf_base.BUILD_DIR)
        self.write_config(probes='gpu_sched,irq', interval=1.0,
                          build_dir=ebpf_base.BUILD_DIR)
        result = subprocess.run(
            ['setpriv', '--bounding-set=-all,+bpf,+perfmon',
             '--inh-caps=-all', '--ambient-caps=-all', '--', self.binary,
             '--config-file', self.config, '--log-file', self.log, '--once'],
            capture_output=True, text=True, timeout=process_base.DEADLINE)
        self.assertEqual(0, result.returncode, result.stderr + self.log_text())
        self.assertIn('Probe gpu_sched started', self.log_text())
        self.assertIn('gpu_queue is published as not observable',
                      self.log_text())
        printed = sample_mod.HostSample.from_dict(json.loads(result.stdout))
        self.assertIs(False, printed.observable['gpu_queue'])
        self.assertIsNone(printed.gpu_queue)
        self.assertEqual(0, printed.dropped['gpu_sched.inflight'])
        # What the scheduler reads: the signed record says not observable.
        store = file_store.FileStore(self.conf)
        store.path = os.path.join(self.work, 'stats')
        self.flags('multimodal_virt_store',
                   signing_keys=[base.TEST_SIGNING_KEY])
        stored = store.get(self.host)
        self.assertIs(False, stored.observable['gpu_queue'])
        self.assertIsNone(stored.histogram('gpu_queue'))


class TestSyntheticJobs(SchedTestCase):

    def test_queue_and_execution_are_split(self):
        loaded = self.synth()
        expected_queue = [0] * 32
        expected_exec = [0] * 32
        waits = (0, 1500, 4000, 3 * 10 ** 6, 2 ** 40)
        runs = (999, 2000, 10 ** 6, 7000, 5 * 10 ** 6)
        for index, (wait, execution) in enumerate(zip(waits, runs)):
            self.job(loaded, 0x1000 + index * 64, T0, T0 + wait,
                     T0 + wait + execution)
            expected_queue[slot(wait)] += 1
            expected_exec[slot(execution)] += 1
        entries = loaded.read('hist')
        pid = os.getpid()
        self.assertEqual({(0, pid, gpu_sched.QUEUE): tuple(expected_queue),
                          (DRIVER, pid, gpu_sched.EXEC):
                          tuple(expected_exec)}, entries)
        self.assertEqual({}, loaded.read('inflight'))
        # Through the probe: gpu_queue and execution per (driver, tgid).
        reading = self.probe_over(
            loaded, lambda addrs: {DRIVER: 'amdgpu'}).collect()
        self.assertEqual(('gpu_queue',), reading.gpu_observed)
        self.assertEqual(5, reading.gpu_queue.count)
        self.assertEqual({('amdgpu', pid): 5},
                         {k: v.count for k, v in
                          reading.gpu_sched_exec.items()})

    def test_real_clock_matches_an_independent_measure(self):
        loaded = self.synth()
        start = time.monotonic_ns()     # CLOCK_MONOTONIC, as bpf_ktime
        loaded.test_run(QUEUED, [0x2000, 0, 0])
        queued = time.monotonic_ns()
        time.sleep(0.004)
        run_start = time.monotonic_ns()
        loaded.test_run(RUN, [0x2000, 0, 0])
        run_end = time.monotonic_ns()
        time.sleep(0.002)
        done_start = time.monotonic_ns()
        loaded.test_run(DONE, [0x2000, 0, DRIVER])
        end = time.monotonic_ns()
        entries = loaded.read('hist')
        pid = os.getpid()
        for kind, low, high in (
                (gpu_sched.QUEUE, run_start - queued, run_end - start),
                (gpu_sched.EXEC, done_start - run_end, end - run_start)):
            driver = DRIVER if kind == gpu_sched.EXEC else 0
            slots = entries[(driver, pid, kind)]
            self.assertEqual(1, sum(slots))
            self.assertGreaterEqual(slots.index(1), slot(low))
            self.assertLessEqual(slots.index(1), slot(high))

    def test_jobs_belong_to_the_submitting_process(self):
        loaded = self.synth()
        children = []
        for index in range(3):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    for n in range(index + 1):
                        loaded.test_run(QUEUED, [0x100000 * (index + 1)
                                                 + n * 64, T0, 0])
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        for pid in children:
            self.assertEqual(0, os.waitstatus_to_exitcode(
                os.waitpid(pid, 0)[1]))
        # Run and done happen elsewhere (the scheduler's worker, an IRQ):
        # here, in this process.
        for index in range(3):
            for n in range(index + 1):
                key = 0x100000 * (index + 1) + n * 64
                loaded.test_run(RUN, [key, T0 + 3000, 0])
                loaded.test_run(DONE, [key, T0 + 50000, DRIVER])
        reading = self.probe_over(
            loaded, lambda addrs: {DRIVER: 'amdgpu'}).read()
        self.assertEqual({('amdgpu', pid): n + 1
                          for n, pid in enumerate(children)},
                         {k: v.count for k, v in
                          reading.gpu_sched_exec.items()})
        self.assertEqual(6, reading.gpu_queue.count)
        sample = sample_builder.build_sample(
            'h', [reading], 1.0, attribution={children[2]: UUID_A},
            timestamp=time.time())
        self.assertEqual(6, sample.gpu_queue.count)
        self.assertEqual(6, sample.gpu_exec.count)
        self.assertEqual({UUID_A: 3}, {k: v.count for k, v in
                                       sample.gpu_exec_by_instance.items()})
        self.assertEqual({'amdgpu': 6}, {k: v.count for k, v in
                                         sample.gpu_exec_by_device.items()})

    def test_inflight_bound_and_drop_counter(self):
        loaded = self.synth(inflight=128)
        keys = [0x10000 + n * 64 for n in range(200)]
        for key in keys:
            loaded.test_run(QUEUED, [key, T0, 0])
        self.assertEqual(128, len(loaded.read('inflight')))
        for key in keys:
            loaded.test_run(RUN, [key, T0 + 1000, 0])
            loaded.test_run(DONE, [key, T0 + 9000, DRIVER])
        self.assertEqual({}, loaded.read('inflight'))
        dropped = self.dropped(loaded)
        self.assertEqual({'inflight': 72, 'hist': 0, 'run_unmatched': 72,
                          'done_unmatched': 72}, dropped)
        entries = loaded.read('hist')
        self.assertEqual(128, sum(entries[(0, os.getpid(),
                                           gpu_sched.QUEUE)]))
        self.assertEqual(128, sum(entries[(DRIVER, os.getpid(),
                                           gpu_sched.EXEC)]))

    def test_histogram_keys_bound_and_drop_counter(self):
        loaded = self.synth(hist=16)
        for n in range(20):
            self.job(loaded, 0x20000 + n * 64, T0, T0 + 1000, T0 + 9000,
                     driver=DRIVER + n)
        # One queue key (this process) and 15 execution keys fit.
        self.assertEqual(16, len(loaded.read('hist')))
        self.assertEqual(5, self.dropped(loaded)['hist'])
        reading = self.probe_over(loaded).collect()
        self.assertEqual({'gpu_sched.inflight': 0, 'gpu_sched.hist': 5,
                          'gpu_sched.nested': 0}, reading.dropped)
        self.assertEqual(20, reading.gpu_queue.count)
        self.assertEqual(15, sum(h.count for h in
                                 reading.gpu_sched_exec.values()))

    def test_overflow_reaches_the_published_sample_logged_once(self):
        loaded = self.synth(inflight=128)
        probe = self.probe_over(loaded)
        ebpf_base.logger_enabled(self, 'multimodal_virt.collector.bpf.probe')
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.probe'))
        keyring = signing.Keyring([base.TEST_SIGNING_KEY])
        for jobs in (200, 150, 10):
            keys = [0x40000 + n * 64 for n in range(jobs)]
            for key in keys:
                loaded.test_run(QUEUED, [key, T0, 0])
            for key in keys:
                loaded.test_run(RUN, [key, T0 + 2000, 0])
                loaded.test_run(DONE, [key, T0 + 5000, DRIVER])
            reading = probe.collect()
            measured = reading.gpu_queue.count
            self.assertEqual(min(jobs, 128), measured)
            self.assertEqual({'gpu_sched.inflight': jobs - measured,
                              'gpu_sched.hist': 0, 'gpu_sched.nested': 0},
                             reading.dropped)
            sample = sample_builder.build_sample('h', [reading], 1.0,
                                                 timestamp=time.time())
            published = codec.decode_one(codec.encode(sample, keyring), 'h',
                                         keyring)
            self.assertEqual(jobs - measured,
                             published.dropped['gpu_sched.inflight'])
            self.assertEqual(measured, published.gpu_queue.count)
            self.assertEqual(measured, published.gpu_exec.count)
        warnings = [line for line in logs.output.splitlines()
                    if 'map inflight was full' in line]
        self.assertEqual(1, len(warnings), logs.output)
        self.assertIn('sched_inflight_max_entries', warnings[0])

    def test_jobs_whose_done_never_came_expire(self):
        loaded = self.synth()
        probe = self.probe_over(loaded)
        loaded.test_run(QUEUED, [0x7000, T0, 0])
        loaded.test_run(QUEUED, [0x7040, T0 + 10 ** 9, 0])
        probe._expire(now_ns=T0 + int(gpu_sched.JOB_MAX_AGE_S * 1e9) + 1)
        self.assertEqual([(0x7040,)], list(loaded.read('inflight')))
        self.assertEqual(1, probe.anomalies['expired'])
        # A job queued again at a freed address replaces the old entry.
        loaded.test_run(QUEUED, [0x7040, T0 + 2 * 10 ** 9, 0])
        loaded.test_run(RUN, [0x7040, T0 + 2 * 10 ** 9 + 4000, 0])
        self.assertEqual(1, sum(loaded.read('hist')[
            (0, os.getpid(), gpu_sched.QUEUE)]))
