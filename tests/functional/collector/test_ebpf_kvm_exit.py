"""kvm_exit with real programs: a real diskless KVM guest makes exits."""

import os
import shutil
import subprocess
import time

import fixtures

from multimodal_virt.collector.probes import kvm_exit
from tests.functional.collector import ebpf_base
from tests.functional import requirements

QEMU = 'qemu-system-x86_64'
COUNTED = {'kvm:kvm_exit', 'kvm:kvm_userspace_exit'}


class TestKvmExitLibbpf(ebpf_base.EbpfTestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, os.path.exists('/dev/kvm'),
                             'VM exits need /dev/kvm')
        requirements.require(self, shutil.which(QEMU) is not None,
                             '%s (qemu-system-x86) is not installed' % QEMU)

    def start_guest(self):
        guest = subprocess.Popen(
            [QEMU, '-accel', 'kvm', '-m', '64', '-display', 'none',
             '-nodefaults', '-serial', 'none'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def kill():
            guest.kill()
            guest.wait()
        self.addCleanup(kill)
        return guest

    def test_guest_exits_attributed_to_qemu_pid(self):
        probe = self.started(kvm_exit.KvmExitProbe)
        self.assertTrue(set(probe.events) & COUNTED, probe.events)
        probe.collect()
        guest = self.start_guest()
        # Wait (bounded) until the guest has run: no timing assertion.
        by_pid, reasons, events = {}, {}, ()
        deadline = time.monotonic() + 30
        while guest.pid not in by_pid and time.monotonic() < deadline:
            time.sleep(0.5)
            reading = probe.collect()
            for pid, count in reading.vm_exits_by_pid.items():
                by_pid[pid] = by_pid.get(pid, 0) + count
            reasons.update(reading.vm_exits_by_reason)
            events = reading.events or events
        self.assertIsNone(guest.poll(), 'qemu exited early')
        self.assertIn(guest.pid, by_pid)
        self.assertGreater(by_pid[guest.pid], 0)
        self.assertTrue(reasons)
        self.assertEqual(1, len(events))
        self.assertIn(events[0], COUNTED)

    def test_full_table_drops_are_counted_and_logged_once(self):
        """Two guests, a one-entry table: the second guest's exits are lost,
        and the loss is counted (``kvm_exit.exits``) and logged once."""

        class TinyTable(kvm_exit.KvmExitProbe):
            def max_entries(self):
                return {'exits': 1}

        ebpf_base.logger_enabled(self, 'multimodal_virt.collector.bpf.probe')
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.probe'))
        probe = self.started(TinyTable)
        probe.collect()
        guests = [self.start_guest(), self.start_guest()]
        dropped = counted = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (dropped == 0 or counted == 0):
            time.sleep(0.5)
            reading = probe.collect()
            dropped += reading.dropped['kvm_exit.exits']
            counted += sum(reading.vm_exits_by_pid.values())
            self.assertLessEqual(len(reading.vm_exits_by_pid), 1)
        for guest in guests:
            self.assertIsNone(guest.poll(), 'qemu exited early')
        self.assertGreater(counted, 0)
        self.assertGreater(dropped, 0)
        probe.collect()
        self.assertEqual(1, logs.output.count('map exits was full'),
                         logs.output)


class TestKvmExitBcc(TestKvmExitLibbpf):
    BACKEND = 'bcc'
