"""Real fences from a real DRM driver, in a nested guest (virtio-gpu).

Runs tools/guest/fence_proof.py: a Debian kernel with virtio-gpu boots
under QEMU with a small initramfs; in the guest the collector's own
gpu_fence.bpf.o is attached and virtio-gpu resources are created (each
emits a fence QEMU signals). The guest prints the histograms on its serial
port; they must hold every fence of the submitting process, named
virtio_gpu, under the guest's independent CLOCK_MONOTONIC bound, with no
measurement dropped. In the same guest the gpu-sched module is loaded and
the collector's gpu_sched programs attach to its tracepoints.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

from tests import base
from tests.functional import requirements

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
TOOL = os.path.join(REPO, 'tools', 'guest', 'fence_proof.py')
COUNT = 30


def _load_tool():
    spec = importlib.util.spec_from_file_location('fence_proof', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestGuestFenceProof(base.TestCase):

    def setUp(self):
        super().setUp()
        for tool in ('qemu-system-x86_64', 'apt-get', 'dpkg-deb', 'cc',
                     'clang', 'bpftool'):
            requirements.require(self, shutil.which(tool) is not None,
                                 '%s is needed to build and boot the '
                                 'proof guest' % tool)
        requirements.require(self, os.geteuid() == 0,
                             'building the guest BPF object as root')

    def test_real_virtio_gpu_fences_measured_in_guest(self):
        proc = subprocess.run(
            [sys.executable, TOOL, '--count', str(COUNT), '--timeout',
             '400'], capture_output=True, text=True, timeout=900,
            check=False)
        self.assertIn('{', proc.stdout, proc.stderr[-3000:])
        result = json.loads(proc.stdout[proc.stdout.index('{'):])
        self.assertEqual([], result['failures'], proc.stdout[-3000:])
        self.assertEqual(0, proc.returncode)
        own = [f for f in result['fences'] if f['self']]
        self.assertEqual({'virtio_gpu'}, {f['driver'] for f in own})
        self.assertGreaterEqual(sum(f['count'] for f in own), COUNT)
        self.assertEqual(COUNT, result['submit']['count'])
        self.assertTrue(result['kernel'].startswith('6.1'))
        # The collector's gpu_sched programs attach in the same guest to
        # the scheduler's pre-6.17 tracepoints, offsets from module BTF.
        self.assertEqual({'mmv_sched_queued': 'drm_sched_job',
                          'mmv_sched_run': 'drm_run_job',
                          'mmv_sched_done': 'drm_sched_process_job'},
                         result['sched']['attached'])


class TestParser(base.TestCase):
    """The proof's parser and checks on a recorded serial log."""

    SERIAL = '\n'.join([
        '[    0.000000] Linux version 6.1.0-57-amd64',
        'MMV-BOOT kernel=6.1.0-57-amd64',
        'MMV-ATTACHED mmv_fence_emit',
        'MMV-ATTACHED mmv_fence_signaled',
        'MMV-PID 92',
        'MMV-SUBMIT count=3 min_ns=276619 max_ns=24523892 mean_ns=4578701',
        'MMV-FENCE driver=virtio_gpu tgid=92 self=1 slots=0,0,0,0,0,0,2,0,'
        '0,0,0,0,0,0,1' + ',0' * 17,
        'MMV-FENCE driver=virtio_gpu tgid=41 self=0 slots=' +
        ','.join(['1'] + ['0'] * 31),
        'MMV-DROPPED index=0 count=0',
        'MMV-DROPPED index=1 count=0',
        'MMV-DROPPED index=2 count=5',
        'MMV-EXIT rc=0',
    ])

    def test_parse_and_check(self):
        tool = _load_tool()
        result = tool.parse(self.SERIAL)
        self.assertEqual(3, result['submit']['count'])
        self.assertEqual([3, 1], [f['count'] for f in result['fences']])
        self.assertEqual(5, result['dropped']['unmatched_signal'])
        self.assertEqual([], tool.check(result, 3))

    def test_checks_fail_loudly(self):
        tool = _load_tool()
        result = tool.parse(self.SERIAL.replace('max_ns=24523892',
                                                'max_ns=9000')
                            .replace('index=1 count=0', 'index=1 count=2'))
        failures = tool.check(result, 4)
        self.assertTrue(any('above the independent bound' in f
                            for f in failures))
        self.assertTrue(any('hist_full dropped 2' in f for f in failures))
        self.assertTrue(any('submitted 3 of 4' in f for f in failures))

    SCHED = '\n'.join([
        'MMV-SCHED-OFFSET drm_sched_job.s_fence=48',
        'MMV-SCHED-OFFSET drm_sched_fence.parent=160',
        'MMV-SCHED-ATTACHED mmv_sched_queued drm_sched_job',
        'MMV-SCHED-ABSENT mmv_sched_queued_v2 drm_sched_job_queue: '
        'No such file or directory',
        'MMV-SCHED-ATTACHED mmv_sched_run drm_run_job',
        'MMV-SCHED-ATTACHED mmv_sched_done drm_sched_process_job',
        'MMV-SCHED-EXIT rc=0',
    ])

    def test_sched_attach_parsed_and_checked(self):
        tool = _load_tool()
        result = tool.parse(self.SERIAL + '\n' + self.SCHED)
        sched = result['sched']
        self.assertEqual(48, sched['offsets']['drm_sched_job.s_fence'])
        self.assertEqual('drm_run_job', sched['attached']['mmv_sched_run'])
        self.assertEqual('drm_sched_job_queue',
                         sched['absent']['mmv_sched_queued_v2'])
        self.assertEqual([], tool.check(result, 3))
        # Without the done event no generation is complete.
        broken = tool.parse(self.SERIAL + '\n' + self.SCHED.replace(
            'MMV-SCHED-ATTACHED mmv_sched_done', 'MMV-SCHED-ABSENT x'))
        self.assertTrue(any('no generation fully attached' in f
                            for f in tool.check(broken, 3)))
        # A kernel package without gpu-sched: nothing to check.
        self.assertIsNone(tool.parse(self.SERIAL)['sched'])

    def test_accel_choice(self):
        tool = _load_tool()
        self.assertEqual('tcg', tool.choose_accel('tcg'))
        self.assertEqual('kvm', tool.choose_accel('kvm'))
        expected = ('tcg' if os.path.exists('/sys/module/kvm_pvm')
                    or not os.path.exists('/dev/kvm') else 'kvm')
        self.assertEqual(expected, tool.choose_accel('auto'))
