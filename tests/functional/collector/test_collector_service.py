"""The collector service for real on this host.

* the procfs probe on this host's /proc while ``dd oflag=direct`` does real
  direct I/O, publishing to a real FileStore, read back by the store and by
  the scheduler's LatencyWeigher;
* a real ``multimodal-virt-collector`` process stopped with SIGTERM (with
  the procfs probe, and with the eBPF probes where BPF is usable);
* per-VM attribution of a real QEMU process through a real libvirt
  connection (test driver) and ``/proc/<pid>/cmdline``.
"""

import os
import shutil
import signal
import subprocess
import time

import fixtures
from oslo_utils import uuidutils

from multimodal_virt.collector import attribution
from multimodal_virt.collector import service
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.stores import file as file_store
from tests import base
from tests.functional.collector import test_collector_process as process_base
from tests.functional import requirements
from tests.functional import samples

WRITES = 400
DEADLINE = 120.0


def _tmp_dir_with_direct_io(testcase):
    """A temp dir on a filesystem that accepts O_DIRECT (not tmpfs)."""
    for root in ('/var/tmp', os.getcwd()):
        path = testcase.useFixture(fixtures.TempDir(rootdir=root)).path
        probe = subprocess.run(
            ['dd', 'if=/dev/zero', 'of=' + os.path.join(path, 'probe'),
             'bs=4k', 'count=1', 'oflag=direct'], capture_output=True)
        if probe.returncode == 0:
            return path
    requirements.require(testcase, False,
                         'no filesystem accepting O_DIRECT for dd')


def _direct_writes(path, count):
    subprocess.run(['dd', 'if=/dev/zero',
                    'of=' + os.path.join(path, 'direct.bin'), 'bs=4k',
                    'count=%d' % count, 'oflag=direct'],
                   check=True, capture_output=True)


def _bpf_usable():
    return os.geteuid() == 0 and os.path.exists('/sys/kernel/btf/vmlinux')


class TestCollectorOnThisHost(base.TestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, os.path.exists('/proc/diskstats'),
                             '/proc/diskstats is not readable')
        self.work = _tmp_dir_with_direct_io(self)
        self.store_path = os.path.join(self.work, 'stats')
        self.host = 'func-%s' % uuidutils.generate_uuid()[:8]
        self.flags('multimodal_virt_store', driver='file',
                   file_path=self.store_path)
        self.flags('multimodal_virt_collector', host=self.host,
                   probes=['procfs'], fallback_probes=[],
                   publishers=['store'], attribution=True,
                   libvirt_uri='test:///default', interval=0.5)

    def _collector(self):
        collector = service.CollectorService(self.conf)
        self.addCleanup(collector.stop)
        return collector

    def test_procfs_windows_of_real_direct_io_reach_the_store(self):
        collector = self._collector()
        self.assertEqual(['procfs'], collector.start_probes())
        self.assertEqual(['store'], collector.load_publishers())

        _direct_writes(self.work, WRITES)
        first = collector.run_once()
        self.assertEqual('procfs', first.source)
        # Every direct write is one completed request (other tests may add
        # more I/O on the same disk, never less).
        self.assertGreaterEqual(first.io.count, WRITES)
        self.assertGreater(first.io.percentile(0.5), 0.0)
        self.assertGreater(first.irq_rate, 0.0)
        self.assertIn('procfs:diskstats', first.events)

        read_back = file_store.FileStore(self.conf).get_all()
        self.assertEqual(first, read_back[self.host])

        # A second window, published over the first.
        second = collector.run_once()
        self.assertGreaterEqual(second.timestamp, first.timestamp)
        self.assertEqual(second,
                         file_store.FileStore(self.conf).get(self.host))

    def test_periodic_loop_publishes_and_stops(self):
        collector = self._collector()
        collector.start()
        store = file_store.FileStore(self.conf)
        seen = set()
        end = time.monotonic() + DEADLINE
        while len(seen) < 2 and time.monotonic() < end:
            sample = store.get(self.host)
            if sample is not None:
                seen.add(sample.timestamp)
            time.sleep(0.1)
        collector.stop()
        collector.wait()
        self.assertEqual(2, len(seen), 'fewer than two windows published')
        self.assertFalse(collector._thread.is_alive())

    def test_store_down_does_not_stop_collection(self):
        # The store path is a file, not a directory.
        self.flags('multimodal_virt_collector', publishers=['store'])
        with open(self.store_path, 'w') as handle:
            handle.write('not a directory')
        collector = self._collector()
        collector.start_probes()
        self.assertEqual(['store'], collector.load_publishers())
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.service'))
        for _window in range(2):
            _direct_writes(self.work, 10)
            sample = collector.run_once()
            self.assertIsNotNone(sample)
            self.assertEqual([], collector.publish(sample))
        self.assertIn('Publisher store failed', logs.output)
        # Rate-limited: one line per publisher, not one per window.
        self.assertEqual(1, logs.output.count('Publisher store failed'))
        # The store comes back: the next window reaches it.
        os.unlink(self.store_path)
        sample = collector.run_once()
        self.assertEqual(sample,
                         file_store.FileStore(self.conf).get(self.host))

    def test_scheduler_weigher_reads_what_the_collector_published(self):
        from nova.scheduler import host_manager
        from nova.scheduler import weights as nova_weights
        from multimodal_virt.scheduler import latency_weigher
        from multimodal_virt.scheduler import provider as provider_mod

        collector = self._collector()
        collector.start_probes()
        collector.load_publishers()
        _direct_writes(self.work, WRITES)
        published = collector.run_once()
        # A second, much slower host published by another collector.
        slow = '%s-slow' % self.host
        file_store.FileStore(self.conf).put(
            samples.host_sample(slow, io_us=200000))

        self.flags('multimodal_virt_scheduler', io_weight=1.0,
                   gpu_cmd_weight=0.0, refresh_interval=0.0)
        weigher = latency_weigher.LatencyWeigher(conf=self.conf)
        # nova-scheduler loads its weighers long before the first request;
        # here the request follows at once, so wait for the first snapshot.
        provider_mod.SnapshotProvider.shared(self.conf).refresh()
        cell = uuidutils.generate_uuid()
        states = [host_manager.HostState(name, name, cell)
                  for name in (slow, self.host)]
        weighed = nova_weights.HostWeightHandler().get_weighed_objects(
            [weigher], states, None)
        self.assertEqual(self.host, weighed[0].obj.host)
        self.assertLess(published.io.percentile(0.99), 200000)


class TestCollectorProcess(process_base.CollectorProcessTestCase):
    """A real ``multimodal-virt-collector`` process and SIGTERM."""

    def _config(self, probes):
        config = self.config
        with open(config, 'w') as handle:
            handle.write('[multimodal_virt_collector]\n'
                         'interval = 0.5\nhost = %s\nprobes = %s\n'
                         'attribution = false\n'
                         '[multimodal_virt_store]\nfile_path = %s\n'
                         'signing_keys = %s\n'
                         '[multimodal_virt_libbpf]\nbpf_build_dir = %s\n'
                         % (self.host, probes,
                            os.path.join(self.work, 'stats'),
                            base.TEST_SIGNING_KEY,
                            os.path.join(self.work, 'bpf')))
        return config

    def _spawn(self, probes):
        config = self._config(probes)
        self.log = os.path.join(self.work, 'collector.log')
        process = subprocess.Popen(
            [self.binary, '--config-file', config, '--log-file', self.log],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self._reap, process)
        return process

    @staticmethod
    def _reap(process):
        if process.poll() is None:
            process.kill()
            process.wait()

    def _wait_published(self, process):
        store = os.path.join(self.work, 'stats',
                             self.host + file_store.SUFFIX)
        end = time.monotonic() + DEADLINE
        while not os.path.exists(store):
            if process.poll() is not None or time.monotonic() > end:
                self.fail('collector published nothing (rc=%s):\n%s'
                          % (process.poll(), self._log_text()))
            time.sleep(0.1)
        reader = file_store.FileStore(self.conf)
        reader.path = os.path.join(self.work, 'stats')
        return reader.get(self.host)

    def _log_text(self):
        try:
            with open(self.log) as handle:
                return handle.read()
        except OSError:
            return ''

    @staticmethod
    def _bpf_ids(pid):
        """BPF program and link ids behind the fds of process ``pid``."""
        ids = set()
        fdinfo = '/proc/%d/fdinfo' % pid
        for fd in os.listdir(fdinfo):
            try:
                with open(os.path.join(fdinfo, fd)) as handle:
                    for line in handle:
                        if line.startswith(('prog_id:', 'link_id:')):
                            kind, value = line.split(':', 1)
                            ids.add((kind, int(value)))
            except OSError:
                continue
        return ids

    @staticmethod
    def _loaded(ids):
        """The (kind, id) pairs still present in the kernel."""
        left = set()
        for kind, ident in ids:
            what = 'prog' if kind == 'prog_id' else 'link'
            shown = subprocess.run(['bpftool', what, 'show', 'id',
                                    str(ident)], capture_output=True)
            if shown.returncode == 0:
                left.add((kind, ident))
        return left

    def _terminate(self, process):
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.fail('collector ignored SIGTERM:\n%s' % self._log_text())

    def test_once_publishes_and_prints_the_sample(self):
        config = self._config('procfs')
        done = subprocess.run(
            [self.binary, '--config-file', config, '--once'],
            capture_output=True, timeout=DEADLINE)
        self.assertEqual(0, done.returncode, done.stderr)
        printed = sample_mod.HostSample.from_json(done.stdout.strip())
        self.assertEqual(self.host, printed.host)
        self.assertEqual('procfs', printed.source)
        stored = file_store.FileStore(self.conf)
        stored.path = os.path.join(self.work, 'stats')
        self.assertEqual(printed, stored.get(self.host))

    def test_dump_bpf_describes_probes_without_loading(self):
        config = self._config('procfs,nosuchprobe')
        done = subprocess.run(
            [self.binary, '--config-file', config, '--dump-bpf'],
            capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertIn('== procfs ==', done.stdout)
        self.assertIn('nosuchprobe', done.stderr)
        self.assertFalse(os.path.exists(os.path.join(
            self.work, 'stats', self.host + file_store.SUFFIX)))

    def test_sigterm_with_procfs_probe(self):
        process = self._spawn('procfs')
        sample = self._wait_published(process)
        self.assertEqual('procfs', sample.source)
        self.assertEqual(0, self._terminate(process), self._log_text())
        self.assertIn('Collector stopped; 1 probe(s) detached',
                      self._log_text())

    def test_sigterm_detaches_ebpf_probes(self):
        requirements.require(self, _bpf_usable(),
                             'eBPF needs root and /sys/kernel/btf/vmlinux')
        requirements.require(self, shutil.which('bpftool') is not None,
                             'bpftool is not installed')
        process = self._spawn('block_io,irq')
        sample = self._wait_published(process)
        self.assertEqual('ebpf', sample.source, self._log_text())
        ids = self._bpf_ids(process.pid)
        self.assertTrue(any(kind == 'prog_id' for kind, _i in ids),
                        'no BPF program fd in the collector')
        self.assertEqual(0, self._terminate(process), self._log_text())
        log = self._log_text()
        self.assertIn('Collector stopped; 2 probe(s) detached', log)
        end = time.monotonic() + 10.0
        left = self._loaded(ids)
        while left and time.monotonic() < end:  # freed asynchronously
            time.sleep(0.1)
            left = self._loaded(left)
        self.assertEqual(set(), left)


class TestAttributionOfARealQemu(base.TestCase):

    def setUp(self):
        super().setUp()
        self.qemu = shutil.which('qemu-system-x86_64')
        requirements.require(self, self.qemu is not None,
                             'qemu-system-x86_64 is not installed')
        try:
            import libvirt  # noqa: F401
        except ImportError:
            requirements.require(self, False, 'libvirt-python missing')
        self.uuid = uuidutils.generate_uuid()
        # A diskless, paused QEMU with no accelerator needs no privileges.
        self.process = subprocess.Popen(
            [self.qemu, '-machine', 'none', '-nodefaults', '-display',
             'none', '-S', '-name', 'guest=instance-func', '-uuid',
             self.uuid], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self._kill)
        self.run_dir = self.useFixture(fixtures.TempDir()).path
        end = time.monotonic() + DEADLINE
        cmdline = '/proc/%d/cmdline' % self.process.pid
        while self.uuid.encode() not in self._read(cmdline):
            if self.process.poll() is not None:
                self.fail('qemu exited: %s' % self.process.stderr.read())
            if time.monotonic() > end:
                self.fail('qemu did not start')
            time.sleep(0.05)

    @staticmethod
    def _read(path):
        try:
            with open(path, 'rb') as handle:
                return handle.read()
        except OSError:
            return b''

    def _kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stderr.close()

    def test_qemu_pid_and_threads_map_to_the_instance(self):
        attributor = attribution.Attributor(uri='test:///default', ttl=60.0,
                                            run_dir=self.run_dir)
        self.addCleanup(attributor.close)
        pid = self.process.pid
        threads = [int(t) for t in os.listdir('/proc/%d/task' % pid)]
        resolved = attributor.resolve([pid] + threads + [os.getpid()])
        self.assertEqual({t: self.uuid for t in [pid] + threads}, resolved)

    def test_libvirt_pidfile_wins_over_cmdline(self):
        import libvirt
        conn = libvirt.openReadOnly('test:///default')
        domain = conn.listAllDomains()[0]
        expected = domain.UUIDString()
        name = domain.name()
        conn.close()
        with open(os.path.join(self.run_dir, name + '.pid'), 'w') as handle:
            handle.write('%d\n' % self.process.pid)
        attributor = attribution.Attributor(uri='test:///default', ttl=60.0,
                                            run_dir=self.run_dir)
        self.addCleanup(attributor.close)
        self.assertEqual({self.process.pid: expected},
                         attributor.resolve([self.process.pid]))
