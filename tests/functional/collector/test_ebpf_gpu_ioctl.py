"""gpu_ioctl with real programs: ioctls on /dev/kvm (as the "GPU")."""

import fcntl
import os

from multimodal_virt.collector.bpf import bcc_backend
from multimodal_virt.collector.probes import gpu_ioctl
from tests.functional.collector import ebpf_base
from tests.functional import requirements

KVM_GET_API_VERSION = 0xAE00
CALLS = 200


def ioctl_kvm(count):
    fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(count):
            fcntl.ioctl(fd, KVM_GET_API_VERSION)
    finally:
        os.close(fd)


class TestGpuIoctlLibbpf(ebpf_base.EbpfTestCase):

    def setUp(self):
        super().setUp()
        requirements.require(self, os.path.exists('/dev/kvm'),
                             '/dev/kvm is the stand-in GPU device node')

    def test_ioctls_on_configured_node_counted(self):
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/kvm'])
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        self.assertEqual(('syscalls:sys_enter_ioctl',
                          'syscalls:sys_exit_ioctl'), probe.events)
        probe.collect()
        ioctl_kvm(CALLS)
        reading = probe.collect()
        self.assertEqual('ebpf', reading.source)
        self.assertGreaterEqual(reading.gpu_cmd.count, CALLS)

    def test_other_nodes_not_counted(self):
        # Only /dev/null is a "GPU": our /dev/kvm ioctls must not count.
        # (Other processes could ioctl /dev/null; none in this suite does,
        # and never hundreds of times.)
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/null'])
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        probe.collect()
        ioctl_kvm(CALLS)
        self.assertLess(probe.collect().gpu_cmd.count, CALLS)


class TestGpuIoctlBcc(TestGpuIoctlLibbpf):
    BACKEND = 'bcc'

    def setUp(self):
        super().setUp()
        headers = bcc_backend.headers_release()
        if headers != os.uname().release:
            # Not a missing feature: bcc reads task->files->fdt with the
            # installed headers' struct layout, which is wrong for another
            # kernel. block_io/irq/kvm_exit use tracepoint fields and work.
            self.skipTest('bcc gpu_ioctl needs kernel headers matching the '
                          'running kernel: headers %s, kernel %s'
                          % (headers, os.uname().release))
