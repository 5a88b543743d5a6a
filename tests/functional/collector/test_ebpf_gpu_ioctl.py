"""gpu_ioctl with real programs: ioctls on /dev/kvm (as the "GPU")."""

import errno
import fcntl
import os

from multimodal_virt.collector.probes import gpu_ioctl
from tests.functional.collector import ebpf_base
from tests.functional import requirements

KVM_GET_API_VERSION = 0xAE00    # _IO(KVMIO=0xAE, 0x00)
DRM_TYPE_CMD = 0x6400           # _IO('d', 0x00): type byte of DRM ioctls
CALLS = 200


def ioctl_kvm(count):
    fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(count):
            fcntl.ioctl(fd, KVM_GET_API_VERSION)
    finally:
        os.close(fd)


def ioctl_other_type(path, cmd, count):
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


class TestGpuIoctlBcc(ebpf_base.EbpfTestCase):
    """bcc selects by ioctl type, reading no kernel struct.

    Works with the mismatched Debian headers of this host (the fd walk of
    the libbpf program would read wrong offsets there).
    """

    BACKEND = 'bcc'

    def setUp(self):
        super().setUp()
        requirements.require(self, os.path.exists('/dev/kvm'),
                             '/dev/kvm is the stand-in GPU device node')

    def test_ioctls_of_configured_type_counted(self):
        self.flags('multimodal_virt_probes', gpu_ioctl_types=['0xAE'])
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        self.assertEqual('bcc', probe.backend_name)
        self.assertEqual(('syscalls:sys_enter_ioctl',
                          'syscalls:sys_exit_ioctl'), probe.events)
        self.assertIn('selector: ioctl type (bcc backend, gpu_ioctl_types): '
                      '0xae', probe.describe())
        probe.collect()
        ioctl_kvm(CALLS)
        reading = probe.collect()
        self.assertEqual('ebpf', reading.source)
        self.assertGreaterEqual(reading.gpu_cmd.count, CALLS)

    def test_other_types_not_counted(self):
        # Default types d, F, K: KVM's 0xAE ioctls must not count, while
        # type-'d' ioctls count whatever the file (here /dev/null, which
        # answers ENOTTY). Nothing else on this host issues hundreds of
        # DRM/NVIDIA/KFD ioctls, so the window holds ours plus little else.
        probe = self.started(gpu_ioctl.GpuIoctlProbe)
        self.assertEqual([0x46, 0x4B, 0x64],
                         probe.settings()['targ_types'])
        probe.collect()
        ioctl_kvm(CALLS)
        drm_like = ioctl_other_type('/dev/null', DRM_TYPE_CMD, CALLS // 4)
        self.assertEqual(CALLS // 4, drm_like)
        count = probe.collect().gpu_cmd.count
        self.assertGreaterEqual(count, drm_like)
        self.assertLess(count, drm_like + CALLS)
