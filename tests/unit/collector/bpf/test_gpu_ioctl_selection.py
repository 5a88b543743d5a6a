"""gpu_ioctl: options, settings for both backends and -D flags (no BPF)."""

import fixtures

from multimodal_virt.collector.bpf import bcc_backend
from multimodal_virt.collector.bpf import gpu_ioctl_table as table
from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import gpu_ioctl
from multimodal_virt.conf import probes as probes_conf
from multimodal_virt import exception
from tests import base

OFFERED = {'syscalls:sys_enter_ioctl', 'syscalls:sys_exit_ioctl'}


class FakeHost(object):
    """Backend probe answers: ``None`` (usable) or a reason."""

    def __init__(self, libbpf=None, bcc=None):
        self._libbpf = libbpf
        self._bcc = bcc

    def libbpf(self):
        return self._libbpf

    def bcc(self):
        return self._bcc


class FakeBackend(object):

    def __init__(self, name):
        self.name = name
        self.calls = []

    def load(self, probe_spec, rodata, max_entries):
        self.calls.append((probe_spec.source, rodata, max_entries))
        return FakeLoaded()


class FakeLoaded(object):
    events = ('syscalls:sys_enter_ioctl', 'syscalls:sys_exit_ioctl')

    def read(self, name):
        return {(k,): (0,) * 32 for k in range(table.NUM_CLASSES)}

    def close(self):
        pass


class TestOptions(base.TestCase):

    def test_default_drivers_are_the_table(self):
        self.assertEqual(table.DRIVERS, probes_conf.GPU_IOCTL_DRIVERS)
        self.assertEqual(list(table.DRIVERS),
                         self.conf.multimodal_virt_probes.gpu_ioctl_drivers)

    def test_type_byte_option_is_gone(self):
        self.assertNotIn('gpu_ioctl_types', self.conf.multimodal_virt_probes)


class TestSettings(base.TestCase):

    def probe(self, host, **flags):
        self.flags('multimodal_virt_probes', **flags)
        return gpu_ioctl.GpuIoctlProbe(self.conf, host=host)

    def test_bcc_gets_the_table_and_no_devices(self):
        probe = self.probe(FakeHost(libbpf='kernel has no BTF'),
                           backend='auto', gpu_ioctl_drivers=['virtio_gpu'])
        settings = probe.settings()
        self.assertEqual(['targ_cmds', 'targ_ncmds'], sorted(settings))
        self.assertEqual([0xc0086448, 0xc0206442, 0xc0246446, 0xc0246447],
                         [n & 0xffffffff for n in settings['targ_cmds']])
        self.assertEqual([table.WAIT, table.SUBMIT, table.SUBMIT,
                          table.SUBMIT],
                         [n >> 32 for n in settings['targ_cmds']])
        text = probe.describe()
        self.assertIn('selector: exact ioctl number', text)
        self.assertIn('0xc0206442 submit    virtio_gpu '
                      'DRM_IOCTL_VIRTGPU_EXECBUFFER', text)
        self.assertIn('device numbers: not filtered (bcc backend)', text)

    def test_libbpf_gets_the_table_and_devices(self):
        probe = self.probe(FakeHost(), backend='auto',
                           gpu_device_globs=['/dev/null'])
        settings = probe.settings()
        self.assertEqual(['targ_cmds', 'targ_devs', 'targ_ncmds',
                          'targ_ndevs'], sorted(settings))
        self.assertEqual(len(table.TABLE), settings['targ_ncmds'])
        self.assertIn('device numbers (libbpf backend, gpu_device_globs): '
                      '1:3', probe.describe())

    def test_settings_pack_with_the_spec(self):
        probe = self.probe(FakeHost(), backend='bcc',
                           gpu_ioctl_drivers=['xe'],
                           gpu_extra_ioctls=['wait:0xAE01'])
        packed = spec.pack_rodata(gpu_ioctl.SPEC, probe.settings())
        self.assertEqual(24, len(packed['targ_cmds']))
        self.assertEqual(((table.WAIT << 32) | 0xAE01).to_bytes(8, 'little'),
                         packed['targ_cmds'][:8])

    def test_cflags_carry_the_table(self):
        probe = self.probe(FakeHost(), backend='bcc',
                           gpu_ioctl_drivers=['i915'])
        flags = bcc_backend.cflags(gpu_ioctl.SPEC, probe.settings(),
                                   {'start': 4096}, OFFERED)
        self.assertIn('-DMMV_TARG_NCMDS=3u', flags)
        # EXECBUFFER2 0x40406469, GEM_WAIT 0xc010646c, EXECBUFFER2_WR
        # 0xc0406469, sorted by number, class in the high word.
        self.assertIn('-DMMV_TARG_CMDS={%du,%du,%du}' % (
            (1 << 32) | 0x40406469, (2 << 32) | 0xc010646c,
            (1 << 32) | 0xc0406469), flags)
        self.assertFalse([f for f in flags if 'TARG_DEVS' in f])

    def test_bad_table_options_refused_at_start(self):
        fake = FakeBackend('bcc')
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.backend.get_backend',
            lambda conf, host=None: fake))
        for flags in ({'gpu_ioctl_drivers': ['nvidia', 'intel']},
                      {'gpu_extra_ioctls': ['exec:0x1']}):
            probe = self.probe(None, backend='bcc', **flags)
            self.assertRaises(exception.ProbeError, probe.start)
        self.assertEqual([], fake.calls)

    def test_bcc_start_needs_no_device_node(self):
        fake = FakeBackend('bcc')
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.backend.get_backend',
            lambda conf, host=None: fake))
        probe = self.probe(None, backend='bcc',
                           gpu_device_globs=['/nonexistent/nvidia*'],
                           gpu_ioctl_drivers=['msm'])
        probe.start()
        self.addCleanup(probe.stop)
        self.assertEqual('gpu_ioctl', fake.calls[0][0])
        self.assertEqual(3, fake.calls[0][1]['targ_ncmds'])
        reading = probe.collect()
        self.assertEqual(0, reading.gpu_submit.count)
        self.assertEqual(0, reading.gpu_wait.count)
