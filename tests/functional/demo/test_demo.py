"""The real demo, end to end, as a separate ``multimodal-virt`` process.

It collects on this host (eBPF as root with BTF, else procfs) while the
frames+sensors workload does real I/O, publishes to a file store, adds the
recorded hosts and ranks all of them through Nova's own filter and weigher
handlers. Assertions are on its JSON output.
"""

import json
import os
import subprocess
import sys

import fixtures
from oslo_utils import uuidutils
from testtools import content

from multimodal_virt.collector.bpf import features
from tests import base
from tests.functional.collector import ebpf_base
from tests.functional import requirements

TIMEOUT = 300
RECORDED_DOMINANT = {
    'gpu-congested-01': ('bottleneck', 'gpu_submit'),
    'storage-slow-02': ('bottleneck', 'io'),
    'exit-storm-04': ('bottleneck', 'vm_exit'),
    'healthy-03': ('healthy', None),
    'stale-05': ('stale', None),
}


class TestDemo(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir(rootdir='/var/tmp')).path
        self.host = 'demo-%s' % uuidutils.generate_uuid()[:8]
        self.config = os.path.join(self.tmp, 'mmv.conf')
        with open(self.config, 'w') as handle:
            # Share the test suite's BPF object cache.
            handle.write('[multimodal_virt_libbpf]\nbpf_build_dir = %s\n'
                         % ebpf_base.BUILD_DIR)

    def _demo(self, *extra):
        output = os.path.join(self.tmp, 'out')
        proc = subprocess.run(
            [sys.executable, '-m', 'multimodal_virt.cmd.cli',
             '--config-file', self.config, 'demo', '--format', 'json',
             '--intervals', '2', '--interval', '1', '--host', self.host,
             '--output-dir', output] + list(extra),
            capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(0, proc.returncode,
                         'demo failed:\n%s' % proc.stderr[-4000:])
        self.addDetail('demo-stderr', content.text_content(proc.stderr))
        return json.loads(proc.stdout), proc.stderr

    def _check_ranking_and_analysis(self, result):
        hosts = {row['host'] for row in result['status']}
        self.assertEqual({self.host} | set(RECORDED_DOMINANT), hosts)
        # Nova's filter drops the congested GPU host (and the slow disk)
        # for the flavor's SLOs; something else is chosen.
        self.assertIsNotNone(result['chosen'])
        self.assertNotEqual('gpu-congested-01', result['chosen'])
        ranking = {p['host']: p for p in result['ranking']}
        self.assertIsNone(ranking['gpu-congested-01']['rank'])
        self.assertIn('multimodal_virt:gpu_submit_p99_us',
                      ranking['gpu-congested-01']['explanation'])
        self.assertIsNone(ranking['storage-slow-02']['rank'])
        self.assertEqual(1, ranking[result['chosen']]['rank'])
        # The stale host passes but is weighed last among passing hosts.
        ranked = [p['host'] for p in result['ranking'] if p['rank']]
        self.assertEqual('stale-05', ranked[-1])
        for host, (verdict, dominant) in RECORDED_DOMINANT.items():
            finding = result['analysis'][host]
            self.assertEqual(verdict, finding['verdict'], host)
            self.assertIsNotNone(finding['dominant'], host)
            if dominant:
                self.assertEqual(dominant, finding['dominant'], host)
                self.assertEqual(dominant,
                                 finding['recommendations'][0]['path'])
        self.assertIn(self.host, result['analysis'])

    def test_demo_with_ebpf(self):
        requirements.require(self, os.geteuid() == 0,
                             'the eBPF collector needs root')
        requirements.require(self, features.has_kernel_btf(),
                             'no kernel BTF at /sys/kernel/btf/vmlinux')
        requirements.require(self, features.tracefs_root() is not None,
                             'tracefs not mounted (tools/setup-host.sh)')
        result, stderr = self._demo()
        self.assertEqual('ebpf', result['collector']['mode'], stderr)
        self.assertIn('collecting 2/2 intervals via ebpf', stderr)
        local = result['local_sample']
        self.assertEqual(self.host, local['host'])
        self.assertEqual('ebpf', local['source'])
        # Events were counted for real: block requests of the workload's
        # direct writes, and (with /dev/kvm standing in for a GPU) ioctls.
        self.assertGreater(local['io']['count'], 0)
        self.assertTrue(any('block_rq' in e for e in local['events']))
        workload = result['workload']
        self.assertGreater(workload['frames'], 0)
        self.assertGreater(workload['packets'], 0)
        if workload['command_node']:
            self.assertGreater(workload['commands'], 0)
            self.assertGreater(local['gpu_submit']['count'], 0)
        row = [r for r in result['status'] if r['host'] == self.host][0]
        self.assertFalse(row['stale'])
        self._check_ranking_and_analysis(result)
        with open(result['plot'], 'rb') as handle:
            self.assertEqual(b'\x89PNG', handle.read(4))

    def test_demo_with_procfs(self):
        requirements.require(self, os.path.exists('/proc/diskstats'),
                             '/proc/diskstats is not readable')
        result, stderr = self._demo('--no-ebpf', '--no-plot')
        self.assertEqual('procfs', result['collector']['mode'])
        self.assertEqual(['procfs'], result['collector']['probes'])
        self.assertIn('procfs fallback', stderr)
        local = result['local_sample']
        self.assertEqual('procfs', local['source'])
        self.assertGreater(local['io']['count'], 0)
        self.assertIsNone(result['plot'])
        self._check_ranking_and_analysis(result)

    def test_unusable_output_dir_is_a_clear_error(self):
        blocker = os.path.join(self.tmp, 'a-file')
        with open(blocker, 'w') as handle:
            handle.write('x')
        proc = subprocess.run(
            [sys.executable, '-m', 'multimodal_virt.cmd.cli', 'demo',
             '--output-dir', blocker], capture_output=True, text=True,
            timeout=TIMEOUT)
        self.assertEqual(2, proc.returncode)
        self.assertIn('cannot prepare the demo output directory %s'
                      % blocker, proc.stderr)
        self.assertIn('--output-dir', proc.stderr)
