"""A real ``multimodal-virt-collector`` process: SIGHUP and capabilities.

* SIGHUP re-reads the configuration: the process keeps running, and the new
  log level (``debug = true``) shows in its log file.
* With every capability dropped but CAP_BPF and CAP_PERFMON (``setpriv
  --bounding-set``, what the systemd unit's CapabilityBoundingSet does), the
  eBPF probes load and attach and the sample says ``ebpf``; without CAP_BPF
  they cannot, so the check can fail.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import fixtures
from oslo_utils import uuidutils

from multimodal_virt.collector.bpf import build
from multimodal_virt.collector.bpf import features
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import signing
from multimodal_virt.stores import file as file_store
from tests import base
from tests.functional.collector import ebpf_base
from tests.functional import requirements

DEADLINE = 60.0
CAP_PERFMON = 38
CAP_BPF = 39


class CollectorProcessTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.work = self.useFixture(fixtures.TempDir()).path
        self.binary = os.path.join(os.path.dirname(sys.executable),
                                   'multimodal-virt-collector')
        requirements.require(self, os.access(self.binary, os.X_OK),
                             '%s is not installed' % self.binary)
        self.host = 'proc-%s' % uuidutils.generate_uuid()[:8]
        self.config = os.path.join(self.work, 'collector.conf')
        self.log = os.path.join(self.work, 'collector.log')

    def write_config(self, probes='procfs', interval=0.5, debug=False,
                     build_dir=None):
        with open(self.config, 'w') as handle:
            handle.write(
                '[DEFAULT]\ndebug = %s\n'
                '[multimodal_virt_collector]\ninterval = %s\nhost = %s\n'
                'probes = %s\nfallback_probes =\nattribution = false\n'
                '[multimodal_virt_store]\nfile_path = %s\n'
                'signing_keys = %s\n'
                '[multimodal_virt_libbpf]\nbpf_build_dir = %s\n'
                % (str(debug).lower(), interval, self.host, probes,
                   os.path.join(self.work, 'stats'), base.TEST_SIGNING_KEY,
                   build_dir or os.path.join(self.work, 'bpf')))

    def log_text(self):
        try:
            with open(self.log) as handle:
                return handle.read()
        except OSError:
            return ''

    def wait_for_log(self, process, text, after=0):
        end = time.monotonic() + DEADLINE
        while text not in self.log_text()[after:]:
            if process.poll() is not None or time.monotonic() > end:
                self.fail('no %r in the log (rc=%s):\n%s'
                          % (text, process.poll(), self.log_text()))
            time.sleep(0.1)


class TestSighup(CollectorProcessTestCase):

    def test_sighup_reloads_log_level_and_keeps_running(self):
        self.write_config(debug=False)
        process = subprocess.Popen(
            [self.binary, '--config-file', self.config, '--log-file',
             self.log], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: process.poll() is None and (
            process.kill(), process.wait()))
        store = os.path.join(self.work, 'stats',
                             self.host + file_store.SUFFIX)
        end = time.monotonic() + DEADLINE
        while not os.path.exists(store) and time.monotonic() < end:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(store), self.log_text())
        self.assertNotIn(' DEBUG ', self.log_text())

        self.write_config(debug=True, interval=0.3)
        mark = len(self.log_text())
        process.send_signal(signal.SIGHUP)
        self.wait_for_log(process, 'Configuration reloaded', after=mark)
        self.assertIn('DEFAULT.debug', self.log_text()[mark:])
        # Still running, collecting, and now logging at DEBUG.
        self.wait_for_log(process, ' DEBUG multimodal_virt.collector.service',
                          after=mark)
        before = os.stat(store).st_mtime_ns
        end = time.monotonic() + DEADLINE
        while os.stat(store).st_mtime_ns == before:
            self.assertIsNone(process.poll(), self.log_text())
            self.assertLess(time.monotonic(), end)
            time.sleep(0.1)
        # A second SIGHUP works too; SIGTERM still stops cleanly.
        process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        self.assertIsNone(process.poll(), self.log_text())
        process.send_signal(signal.SIGTERM)
        self.assertEqual(0, process.wait(DEADLINE), self.log_text())
        with open(store, 'rb') as handle:
            keyring = signing.Keyring([base.TEST_SIGNING_KEY])
            sample = codec.decode_one(handle.read(), self.host, keyring)
        self.assertEqual(self.host, sample.host)


class TestCapabilities(CollectorProcessTestCase):
    """The collector needs CAP_BPF and CAP_PERFMON, not CAP_SYS_ADMIN."""

    PROBES = 'block_io,irq,kvm_exit'

    def setUp(self):
        super().setUp()
        requirements.require(self, os.geteuid() == 0,
                             'dropping capabilities needs root')
        requirements.require(self, shutil.which('setpriv') is not None,
                             'setpriv (util-linux) is not installed')
        requirements.require(self, features.has_kernel_btf(),
                             'CO-RE needs kernel BTF')
        # Objects built with full privileges, as at install time.
        build.build_all(ebpf_base.BUILD_DIR)

    def _setpriv(self, caps, *argv):
        return subprocess.run(
            ['setpriv', '--bounding-set=-all,%s' % caps, '--inh-caps=-all',
             '--ambient-caps=-all', '--', *argv],
            capture_output=True, text=True, timeout=DEADLINE)

    def test_effective_set_is_only_bpf_and_perfmon(self):
        result = self._setpriv('+bpf,+perfmon', 'grep', 'CapEff',
                               '/proc/self/status')
        effective = int(result.stdout.split()[1], 16)
        self.assertEqual((1 << CAP_BPF) | (1 << CAP_PERFMON), effective)

    def test_ebpf_probes_attach_with_bpf_and_perfmon_only(self):
        self.write_config(probes=self.PROBES, interval=1.0,
                          build_dir=ebpf_base.BUILD_DIR)
        result = self._setpriv('+bpf,+perfmon', self.binary, '--config-file',
                               self.config, '--log-file', self.log, '--once')
        self.assertEqual(0, result.returncode, result.stderr + self.log_text())
        sample = sample_mod.HostSample.from_dict(json.loads(result.stdout))
        self.assertEqual('ebpf', sample.source)
        self.assertEqual('ebpf', sample.metric_source('io'))
        self.assertEqual('ebpf', sample.metric_source('irq_rate'))
        for event in ('block:block_rq_issue', 'block:block_rq_complete',
                      'irq:irq_handler_entry'):
            self.assertIn(event, sample.events)
        for probe in self.PROBES.split(','):
            self.assertIn('Probe %s started' % probe, self.log_text())
        self.assertNotIn('failed to start', self.log_text())

    def test_without_cap_bpf_the_probes_cannot_load(self):
        self.write_config(probes=self.PROBES, interval=1.0,
                          build_dir=ebpf_base.BUILD_DIR)
        result = self._setpriv('+perfmon', self.binary, '--config-file',
                               self.config, '--log-file', self.log, '--once')
        self.assertNotEqual(0, result.returncode)
        self.assertIn('failed to start', self.log_text())
