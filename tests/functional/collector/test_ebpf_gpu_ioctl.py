"""gpu_ioctl with real programs: exact ioctl numbers on the real kernel.

There is no GPU here. ``/dev/kvm`` stands in for the device node and
KVM_GET_API_VERSION for a table entry, added through
``gpu_extra_ioctls`` exactly as an operator adds a driver's number: the
probe must count it when listed and ignore it when not.
"""

import errno
import fcntl
import os
import subprocess
import sys
import time

import fixtures

from multimodal_virt.collector.bpf import gpu_ioctl_table as table
from multimodal_virt.collector.probes import gpu_ioctl
from tests.functional.collector import ebpf_base
from tests.functional import requirements

KVM_GET_API_VERSION = table.io(0xAE, 0x00)
KVM_CHECK_EXTENSION = table.io(0xAE, 0x03)
DRM_VERSION = table.iowr(ord('d'), 0x00, 64)   # a setup call, not listed
KDGKBMODE = 0x4B44                               # console KD ioctl ('K')
VIRTGPU_EXECBUFFER = 0xc0206442
CALLS = 200


def ioctl_kvm(count, cmd=KVM_GET_API_VERSION):
    fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(count):
            fcntl.ioctl(fd, cmd)
    finally:
        os.close(fd)


def ioctl_refused(path, cmd, count):
    """Issue ``count`` ioctls ``cmd`` that ``path`` refuses (ENOTTY).

    :returns: how many were refused with ENOTTY.
    """
    refused = 0
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for _ in range(count):
            try:
                fcntl.ioctl(fd, cmd)
            except OSError as err:
                if err.errno == errno.ENOTTY:
                    refused += 1
    finally:
        os.close(fd)
    return refused


class KvmStandIn(object):

    def setUp(self):
        super().setUp()
        requirements.require(self, os.path.exists('/dev/kvm'),
                             '/dev/kvm is the stand-in GPU device node')


class TestGpuIoctlLibbpf(KvmStandIn, ebpf_base.EbpfTestCase):

    def test_listed_number_counted_as_its_class(self):
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/kvm'],
                   gpu_extra_ioctls=['submit:0xAE00:kvm_get_api_version'])
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        self.assertEqual(('syscalls:sys_enter_ioctl',
                          'syscalls:sys_exit_ioctl'), probe.events)
        probe.collect()
        ioctl_kvm(CALLS)
        ioctl_kvm(CALLS // 2, KVM_CHECK_EXTENSION)   # not listed
        reading = probe.collect()
        self.assertEqual('ebpf', reading.source)
        # Only this test process issues KVM ioctls on /dev/kvm here.
        self.assertEqual(CALLS, reading.gpu_submit.count)
        self.assertEqual(0, reading.gpu_wait.count)
        self.assertEqual(0, reading.gpu_nvidia_rm.count)

    def test_wait_class_is_its_own_histogram(self):
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/kvm'],
                   gpu_extra_ioctls=['wait:0xAE00'])
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        probe.collect()
        ioctl_kvm(CALLS)
        reading = probe.collect()
        self.assertEqual(CALLS, reading.gpu_wait.count)
        self.assertEqual(0, reading.gpu_submit.count)

    def test_unlisted_ioctl_on_the_node_not_counted(self):
        # The node matches, the number is not in the table: the old probe
        # timed every ioctl on a GPU node; this one times none of these.
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/kvm'])
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        probe.collect()
        ioctl_kvm(CALLS)
        reading = probe.collect()
        self.assertEqual(0, reading.gpu_submit.count)
        self.assertEqual(0, reading.gpu_wait.count)

    def test_listed_number_on_other_node_not_counted(self):
        # Only /dev/null is a "GPU": our /dev/kvm ioctls must not count.
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/null'],
                   gpu_extra_ioctls=['submit:0xAE00'])
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        probe.collect()
        ioctl_kvm(CALLS)
        self.assertLess(probe.collect().gpu_submit.count, CALLS)


class TestGpuIoctlBcc(KvmStandIn, ebpf_base.EbpfTestCase):
    """bcc uses the same table and selects by number alone.

    Works with the mismatched Debian headers of this host (the fd walk of
    the libbpf program would read wrong offsets there).
    """

    BACKEND = 'bcc'

    def test_listed_number_counted(self):
        self.flags('multimodal_virt_probes',
                   gpu_extra_ioctls=['submit:0xAE00'])
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        self.assertEqual('bcc', probe.backend_name)
        self.assertIn('0x0000ae00 submit    extra 0x0000ae00',
                      probe.describe())
        probe.collect()
        ioctl_kvm(CALLS)
        reading = probe.collect()
        self.assertEqual('ebpf', reading.source)
        self.assertGreaterEqual(reading.gpu_submit.count, CALLS)

    def test_only_table_numbers_counted(self):
        # Default table: KVM ioctls, a DRM setup call (type 'd') and the
        # console's KD ioctl (type 'K', counted by the old type selector)
        # are not counted; a listed virtio-gpu execbuffer number is, whatever
        # the file (here /dev/null, which answers ENOTTY). Nothing else on
        # this host issues DRM ioctls.
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        probe.collect()
        ioctl_kvm(CALLS)
        self.assertEqual(CALLS, ioctl_refused('/dev/null', DRM_VERSION,
                                              CALLS))
        self.assertEqual(CALLS, ioctl_refused('/dev/null', KDGKBMODE, CALLS))
        submitted = ioctl_refused('/dev/null', VIRTGPU_EXECBUFFER, CALLS // 4)
        self.assertEqual(CALLS // 4, submitted)
        reading = probe.collect()
        self.assertEqual(submitted, reading.gpu_submit.count)
        self.assertEqual(0, reading.gpu_wait.count)


TIOCMIWAIT = 0x545C      # waits for a modem line change: blocks here
SERIAL = '/dev/ttyS0'


class TestGpuIoctlStartTable(KvmStandIn, ebpf_base.EbpfTestCase):
    """More threads inside listed ioctls than the start table holds."""

    THREADS = 140
    TABLE = 128

    def _blocked_threads(self):
        """A child process with THREADS threads blocked in TIOCMIWAIT."""
        code = (
            'import fcntl, os, sys, threading\n'
            'fd = os.open(%r, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)\n'
            'for _ in range(%d):\n'
            '    threading.Thread(target=fcntl.ioctl, daemon=True,\n'
            '                     args=(fd, %d, 0x1f0)).start()\n'
            'print("ready", flush=True)\n'
            'sys.stdin.read()\n' % (SERIAL, self.THREADS, TIOCMIWAIT))
        child = subprocess.Popen([sys.executable, '-c', code],
                                 stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        self.assertEqual('ready\n', child.stdout.readline())
        return child

    def test_full_table_counted_published_logged_once(self):
        requirements.require(self, os.path.exists(SERIAL),
                             '%s: a char device with a blocking ioctl'
                             % SERIAL)
        self.flags('multimodal_virt_probes', gpu_device_globs=[SERIAL],
                   gpu_extra_ioctls=['wait:0x%x:tiocmiwait' % TIOCMIWAIT],
                   inflight_max_entries=self.TABLE)
        ebpf_base.logger_enabled(self, 'multimodal_virt.collector.bpf.probe')
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.probe'))
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        child = self._blocked_threads()
        # "ready" comes once the threads are started, not once each is
        # inside its ioctl: wait until the table is full and every thread
        # beyond it has been refused.
        slot = (gpu_ioctl.SPEC.drops.index('start'),)

        def refused():
            return probe.loaded.read('drops').get(slot, (0,))[0]

        deadline = time.monotonic() + 10
        while ((len(probe.loaded.read('start')) < self.TABLE
                or refused() < self.THREADS - self.TABLE)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        self.assertEqual(self.TABLE, len(probe.loaded.read('start')))
        reading = probe.collect()
        self.assertEqual({'gpu_ioctl.start': self.THREADS - self.TABLE},
                         {k: v for k, v in reading.dropped.items()
                          if k != 'gpu_ioctl.nested'})
        self.assertIn('gpu_ioctl.nested', reading.dropped)
        # Killed threads return through the syscall exit: the table empties
        # and the calls that were timed are counted as waits.
        child.kill()
        child.wait()
        reading = probe.collect()
        self.assertEqual({}, probe.loaded.read('start'))
        self.assertEqual(self.TABLE, reading.gpu_wait.count)
        self.assertEqual(0, reading.dropped['gpu_ioctl.start'])
        self.assertEqual(1, logs.output.count('map start was full'),
                         logs.output)
        self.assertIn('inflight_max_entries', logs.output)
