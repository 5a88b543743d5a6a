"""Probe specs: validation and packing of const volatile settings."""

import struct

from multimodal_virt.collector.bpf import bcc_backend
from multimodal_virt.collector.bpf import spec
from multimodal_virt import exception
from tests import base

SPEC = spec.ProbeSpec(
    source='demo',
    programs=(spec.Program('p_enter', 'syscalls:sys_enter_ioctl',
                           'tracepoint'),
              spec.Program('p_opt', 'kvm:kvm_exit', 'tracepoint',
                           required=False)),
    maps=(spec.Map('hist', 'I', '32Q', 'max_block_devices'),),
    rodata={'targ_ndevs': 'I', 'targ_devs': 'I'})


class TestSpec(base.TestCase):

    def test_pack_scalar_and_array(self):
        packed = spec.pack_rodata(SPEC, {'targ_ndevs': 2,
                                         'targ_devs': [7, 9]})
        self.assertEqual(struct.pack('=I', 2), packed['targ_ndevs'])
        self.assertEqual(struct.pack('=2I', 7, 9), packed['targ_devs'])
        self.assertEqual(b'', spec.pack_rodata(SPEC, {'targ_devs': []})[
            'targ_devs'])

    def test_unknown_setting_named(self):
        err = self.assertRaises(exception.ProbeError, spec.pack_rodata,
                                SPEC, {'targ_pid': 1})
        self.assertIn('targ_pid', str(err))
        self.assertIn('targ_devs', str(err))

    def test_value_out_of_range_named(self):
        err = self.assertRaises(exception.ProbeError, spec.pack_rodata,
                                SPEC, {'targ_ndevs': -1})
        self.assertIn('targ_ndevs', str(err))

    def test_program_validation(self):
        self.assertRaises(exception.ProbeError, spec.Program, 'x',
                          'kvm:kvm_exit', 'kprobe')
        self.assertRaises(exception.ProbeError, spec.Program, 'x',
                          'kvm_exit', 'tracepoint')
        program = spec.Program('x', 'kvm:kvm_exit', 'tracepoint')
        self.assertEqual(('kvm', 'kvm_exit'),
                         (program.category, program.tracepoint))

    def test_map_unpack(self):
        hist = SPEC.map('hist')
        raw_value = struct.pack('=32Q', *range(32))
        self.assertEqual(tuple(range(32)), hist.unpack_value(raw_value))
        self.assertEqual((5,), hist.unpack_key(struct.pack('=I', 5)))
        self.assertRaises(exception.ProbeError, SPEC.map, 'nope')

    def test_bcc_cflags(self):
        flags = bcc_backend.cflags(SPEC, {'targ_ndevs': 2,
                                          'targ_devs': [7, 9]},
                                   {'hist': 16}, {'syscalls:sys_enter_ioctl'})
        self.assertIn('-DMMV_TARG_NDEVS=2u', flags)
        self.assertIn('-DMMV_TARG_DEVS={7u,9u}', flags)
        self.assertIn('-DMMV_HIST_MAX=16', flags)
        self.assertIn('-DMMV_P_ENTER_HAVE=1', flags)
        self.assertNotIn('-DMMV_P_OPT_HAVE=1', flags)
        empty = bcc_backend.cflags(SPEC, {'targ_devs': []}, {}, set())
        self.assertIn('-DMMV_TARG_DEVS={0u}', empty)
