"""gpu_ioctl_types: option parsing, bcc settings and -D flags (no BPF)."""

import os
import tempfile

import fixtures
from oslo_config import cfg

from multimodal_virt.collector.bpf import bcc_backend
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
        return {(0,): (0,) * 32}

    def close(self):
        pass


class TestIoctlTypeOption(base.TestCase):

    PARSED = [
        ('d', 0x64),
        ('F', 0x46),
        ('K', 0x4B),
        ('0x64', 0x64),
        ('0xAE', 0xAE),
        ('0xae', 0xAE),
        ('0x00', 0),
        ('0xff', 0xff),
        (0xAE, 0xAE),
    ]
    REFUSED = ['', 'dd', 'DRM', ' ', '\x7f', '\u00e9', '0x', '0x100',
               '0xzz', '-1', 256, -1, True, None]

    def test_parses_characters_and_hex(self):
        kind = probes_conf.IoctlType()
        for text, expected in self.PARSED:
            self.assertEqual(expected, kind(text), text)

    def test_refuses_and_names_the_value(self):
        kind = probes_conf.IoctlType()
        for value in self.REFUSED:
            err = self.assertRaises(ValueError, kind, value)
            self.assertIn(repr(value), str(err))
            self.assertIn('hex byte', str(err))

    def test_format_round_trips(self):
        kind = probes_conf.IoctlType()
        for value in range(256):
            self.assertEqual(value, kind(kind._formatter(value)))

    def test_default_is_drm_nvidia_kfd(self):
        self.assertEqual([0x64, 0x46, 0x4B],
                         self.conf.multimodal_virt_probes.gpu_ioctl_types)

    def test_override_as_list_or_string(self):
        self.flags('multimodal_virt_probes', gpu_ioctl_types=['0xAE', 'd'])
        self.assertEqual([0xAE, 0x64],
                         self.conf.multimodal_virt_probes.gpu_ioctl_types)
        self.flags('multimodal_virt_probes', gpu_ioctl_types='K, 0x46')
        self.assertEqual([0x4B, 0x46],
                         self.conf.multimodal_virt_probes.gpu_ioctl_types)

    def test_bad_value_in_config_file_names_option(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'mmv.conf')
            with open(path, 'w') as handle:
                handle.write('[multimodal_virt_probes]\n'
                             'gpu_ioctl_types = d,DRM\n')
            conf = cfg.ConfigOpts()
            probes_conf.register_opts(conf)
            conf(['--config-file', path])
            err = self.assertRaises(
                cfg.ConfigFileValueError,
                lambda: conf.multimodal_virt_probes.gpu_ioctl_types)
        self.assertIn('gpu_ioctl_types', str(err))
        self.assertIn("'DRM'", str(err))


class TestIoctlTypes(base.TestCase):

    def test_sorted_distinct(self):
        self.assertEqual([0x46, 0x4B, 0x64],
                         gpu_ioctl.ioctl_types([0x64, 0x46, 0x4B, 0x64]))

    def test_empty_refused(self):
        err = self.assertRaises(exception.ProbeError,
                                gpu_ioctl.ioctl_types, [])
        self.assertIn('gpu_ioctl_types is empty', str(err))

    def test_too_many_refused(self):
        err = self.assertRaises(exception.ProbeError, gpu_ioctl.ioctl_types,
                                list(range(gpu_ioctl.MAX_IOCTL_TYPES + 1)))
        self.assertIn('at most %d' % gpu_ioctl.MAX_IOCTL_TYPES, str(err))
        self.assertEqual(
            list(range(gpu_ioctl.MAX_IOCTL_TYPES)),
            gpu_ioctl.ioctl_types(range(gpu_ioctl.MAX_IOCTL_TYPES)))

    def test_out_of_range_refused(self):
        for value in (256, -1, '0x64'):
            err = self.assertRaises(exception.ProbeError,
                                    gpu_ioctl.ioctl_types, [value])
            self.assertIn(repr(value), str(err))

    def test_format(self):
        self.assertEqual("'d' (0x64)", gpu_ioctl.format_ioctl_type(0x64))
        self.assertEqual('0xae', gpu_ioctl.format_ioctl_type(0xAE))
        self.assertEqual('0x20', gpu_ioctl.format_ioctl_type(0x20))


class TestBccSettings(base.TestCase):

    def probe(self, host, **flags):
        self.flags('multimodal_virt_probes', **flags)
        return gpu_ioctl.GpuIoctlProbe(self.conf, host=host)

    def test_bcc_selects_by_type(self):
        probe = self.probe(FakeHost(libbpf='kernel has no BTF'),
                           backend='auto')
        self.assertEqual({'targ_ntypes': 3, 'targ_types': [0x46, 0x4B, 0x64]},
                         probe.settings())
        text = probe.describe()
        self.assertIn('selector: ioctl type (bcc backend, gpu_ioctl_types): '
                      "'F' (0x46), 'K' (0x4b), 'd' (0x64)", text)
        self.assertNotIn('device numbers', text)

    def test_libbpf_selects_by_device(self):
        probe = self.probe(FakeHost(), backend='auto',
                           gpu_device_globs=['/dev/null'])
        self.assertEqual(['targ_devs', 'targ_ndevs'],
                         sorted(probe.settings()))
        text = probe.describe()
        self.assertIn('selector: device number (libbpf backend, '
                      'gpu_device_globs)', text)
        self.assertIn('device numbers: 1:3', text)

    def test_type_settings_pack_with_the_spec(self):
        probe = self.probe(FakeHost(), backend='bcc',
                           gpu_ioctl_types=['0xAE', 'd'])
        packed = spec.pack_rodata(gpu_ioctl.SPEC, probe.settings())
        self.assertEqual(bytes([0x64, 0xAE]), packed['targ_types'])
        self.assertRaises(exception.ProbeError, spec.pack_rodata,
                          gpu_ioctl.SPEC, {'targ_types': [256]})

    def test_cflags_carry_the_type_set(self):
        probe = self.probe(FakeHost(), backend='bcc',
                           gpu_ioctl_types=['0xAE', 'd', 'K'])
        flags = bcc_backend.cflags(gpu_ioctl.SPEC, probe.settings(),
                                   {'start': 4096}, OFFERED)
        self.assertIn('-DMMV_TARG_NTYPES=3u', flags)
        self.assertIn('-DMMV_TARG_TYPES={75u,100u,174u}', flags)
        self.assertIn('-DMMV_START_MAX=4096', flags)
        self.assertIn('-DMMV_MMV_SYS_ENTER_IOCTL_HAVE=1', flags)
        self.assertFalse([f for f in flags if 'TARG_DEVS' in f])

    def test_bcc_start_needs_no_device_node(self):
        fake = FakeBackend('bcc')
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.backend.get_backend',
            lambda group, host=None: fake))
        probe = self.probe(None, backend='bcc',
                           gpu_device_globs=['/nonexistent/nvidia*'],
                           gpu_ioctl_types=['0xAE'])
        probe.start()
        self.addCleanup(probe.stop)
        self.assertEqual([('gpu_ioctl',
                           {'targ_ntypes': 1, 'targ_types': [0xAE]},
                           {'start': 10240})], fake.calls)
        self.assertEqual(0, probe.collect().gpu_cmd.count)

    def test_bcc_start_refuses_empty_types(self):
        fake = FakeBackend('bcc')
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.bpf.backend.get_backend',
            lambda group, host=None: fake))
        probe = self.probe(None, backend='bcc', gpu_ioctl_types=[])
        self.assertRaises(exception.ProbeError, probe.start)
        self.assertEqual([], fake.calls)
