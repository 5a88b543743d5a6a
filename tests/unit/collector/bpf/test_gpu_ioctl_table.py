"""The GPU ioctl table: encoding, provenance and the C headers."""

import os
import shutil
import subprocess
import tempfile

from multimodal_virt.collector.bpf import gpu_ioctl_table as table
from multimodal_virt import exception
from tests import base

LIBDRM = '/usr/include/libdrm'

# Values printed by the C compiler from the uapi macros (libdrm-dev 2.4.114
# headers, x86-64) or, for headers libdrm does not ship, computed by hand
# from the struct layout in the kernel's include/uapi/drm (see ``source``).
EXPECTED = {
    'DRM_IOCTL_SYNCOBJ_WAIT': 0xc02064c3,
    'DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT': 0xc02864ca,
    'DRM_IOCTL_I915_GEM_EXECBUFFER2': 0x40406469,
    'DRM_IOCTL_I915_GEM_EXECBUFFER2_WR': 0xc0406469,
    'DRM_IOCTL_I915_GEM_WAIT': 0xc010646c,
    'DRM_IOCTL_XE_EXEC': 0x40386449,
    'DRM_IOCTL_XE_WAIT_USER_FENCE': 0xc048644a,
    'DRM_IOCTL_AMDGPU_CS': 0xc0186444,
    'DRM_IOCTL_AMDGPU_WAIT_CS': 0xc0206449,
    'DRM_IOCTL_AMDGPU_WAIT_FENCES': 0xc0186452,
    'DRM_IOCTL_NOUVEAU_GEM_PUSHBUF': 0xc0406481,
    'DRM_IOCTL_NOUVEAU_EXEC': 0xc0286452,
    'DRM_IOCTL_NOUVEAU_GEM_CPU_PREP': 0x40086482,
    'DRM_IOCTL_VIRTGPU_EXECBUFFER': 0xc0206442,
    'DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST': 0xc0246446,
    'DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST': 0xc0246447,
    'DRM_IOCTL_VIRTGPU_WAIT': 0xc0086448,
    'DRM_IOCTL_MSM_GEM_SUBMIT': 0xc0286446,
    'DRM_IOCTL_MSM_WAIT_FENCE': 0x40206447,
    'DRM_IOCTL_MSM_GEM_CPU_PREP': 0x40186444,
    'NV_ESC_RM_CONTROL': 0xc020462a,
    'NV_ESC_RM_ALLOC': 0xc030462b,
}

# Macros the installed libdrm headers define (others: see EXPECTED).
C_CHECK = r'''
#include <stdint.h>
#include <stdio.h>
#include <drm.h>
#include <i915_drm.h>
#include <amdgpu_drm.h>
#include <nouveau_drm.h>
#include <virtgpu_drm.h>
#include <msm_drm.h>
#define P(name, value) printf("%s 0x%08lx\n", name, (unsigned long)(value))
int main(void)
{
    P("DRM_IOCTL_SYNCOBJ_WAIT", DRM_IOCTL_SYNCOBJ_WAIT);
    P("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT", DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT);
    P("DRM_IOCTL_I915_GEM_EXECBUFFER2", DRM_IOCTL_I915_GEM_EXECBUFFER2);
    P("DRM_IOCTL_I915_GEM_EXECBUFFER2_WR", DRM_IOCTL_I915_GEM_EXECBUFFER2_WR);
    P("DRM_IOCTL_I915_GEM_WAIT", DRM_IOCTL_I915_GEM_WAIT);
    P("DRM_IOCTL_AMDGPU_CS", DRM_IOCTL_AMDGPU_CS);
    P("DRM_IOCTL_AMDGPU_WAIT_CS", DRM_IOCTL_AMDGPU_WAIT_CS);
    P("DRM_IOCTL_AMDGPU_WAIT_FENCES", DRM_IOCTL_AMDGPU_WAIT_FENCES);
    P("DRM_IOCTL_NOUVEAU_GEM_PUSHBUF",
      DRM_IOWR(DRM_COMMAND_BASE + DRM_NOUVEAU_GEM_PUSHBUF,
               struct drm_nouveau_gem_pushbuf));
    P("DRM_IOCTL_NOUVEAU_GEM_CPU_PREP",
      DRM_IOW(DRM_COMMAND_BASE + DRM_NOUVEAU_GEM_CPU_PREP,
              struct drm_nouveau_gem_cpu_prep));
    P("DRM_IOCTL_VIRTGPU_EXECBUFFER", DRM_IOCTL_VIRTGPU_EXECBUFFER);
    P("DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST",
      DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST);
    P("DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST",
      DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST);
    P("DRM_IOCTL_VIRTGPU_WAIT", DRM_IOCTL_VIRTGPU_WAIT);
    P("DRM_IOCTL_MSM_GEM_SUBMIT", DRM_IOCTL_MSM_GEM_SUBMIT);
    P("DRM_IOCTL_MSM_WAIT_FENCE", DRM_IOCTL_MSM_WAIT_FENCE);
    P("DRM_IOCTL_MSM_GEM_CPU_PREP", DRM_IOCTL_MSM_GEM_CPU_PREP);
    return 0;
}
'''


class TestEncoding(base.TestCase):

    def test_ioc_macros(self):
        # Values of linux/kvm.h and asm-generic/ioctl.h.
        self.assertEqual(0xAE00, table.io(0xAE, 0x00))       # KVM_GET_API
        self.assertEqual(0x4008AE89, table.iow(0xAE, 0x89, 8))
        self.assertEqual(0x8004AE98, table.ior(0xAE, 0x98, 4))
        self.assertEqual(0xC008AE91, table.iowr(0xAE, 0x91, 8))

    def test_size_must_fit(self):
        self.assertRaises(ValueError, table.iow, 0x64, 0, 1 << 14)
        self.assertRaises(ValueError, table.iow, 0x64, 0, -1)


class TestTable(base.TestCase):

    def test_every_number_as_expected(self):
        got = {entry.name: entry.number for entry in table.TABLE}
        self.assertEqual(EXPECTED, got)

    def test_numbers_distinct_and_sourced(self):
        numbers = [entry.number for entry in table.TABLE]
        self.assertEqual(len(numbers), len(set(numbers)))
        for entry in table.TABLE:
            size = (entry.number >> 16) & 0x3fff
            self.assertIn('%d bytes' % size, entry.source, entry.name)

    def test_every_driver_has_a_submit_or_rm_entry(self):
        for driver in ('i915', 'xe', 'amdgpu', 'nouveau', 'virtio_gpu',
                       'msm'):
            classes = {e.klass for e in table.TABLE if e.driver == driver}
            self.assertIn('submit', classes, driver)
            self.assertIn('wait', classes, driver)
        self.assertEqual({'nvidia_rm'}, {e.klass for e in table.TABLE
                                         if e.driver == 'nvidia'})

    def test_no_setup_call_is_timed(self):
        # DRM_IOCTL_VERSION, GEM_CLOSE, amdgpu GEM_CREATE, i915 GEM_CREATE:
        # setup calls that used to set the "GPU command" p99.
        setup = {table.iowr(0x64, 0x00, 64), table.iow(0x64, 0x09, 8),
                 table.iowr(0x64, 0x40, 32), table.iowr(0x64, 0x5b, 16)}
        self.assertFalse(setup & {e.number for e in table.TABLE})

    def test_type_bytes_of_kd_and_fbdev_absent(self):
        # The console's KD ('K') and fbdev ('F' with small numbers) ioctls
        # were counted by the type-byte selector; none is in the table.
        kdgkbmode = 0x4B44
        fbioget_vscreeninfo = 0x4600
        numbers = {e.number for e in table.TABLE}
        self.assertNotIn(kdgkbmode, numbers)
        self.assertNotIn(fbioget_vscreeninfo, numbers)


class TestAgainstHeaders(base.TestCase):
    """Compile the installed uapi headers and compare every macro."""

    def test_numbers_match_the_c_headers(self):
        compiler = shutil.which('cc') or shutil.which('gcc')
        if compiler is None or not os.path.exists(
                os.path.join(LIBDRM, 'virtgpu_drm.h')):
            self.skipTest('needs cc and libdrm-dev headers in %s' % LIBDRM)
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, 'nums.c')
            exe = os.path.join(tmp, 'nums')
            with open(src, 'w') as handle:
                handle.write(C_CHECK)
            built = subprocess.run([compiler, '-I' + LIBDRM, src, '-o', exe],
                                   capture_output=True, text=True)
            self.assertEqual(0, built.returncode, built.stderr[-2000:])
            out = subprocess.run([exe], check=True, capture_output=True,
                                 text=True).stdout
        from_c = {name: int(value, 16) for name, value in
                  (line.split() for line in out.splitlines())}
        self.assertEqual(17, len(from_c))
        for name, value in from_c.items():
            self.assertEqual(value, EXPECTED[name], name)


class TestSelect(base.TestCase):

    def test_all_drivers(self):
        entries = table.select(table.DRIVERS)
        self.assertEqual(len(table.TABLE), len(entries))
        self.assertEqual(sorted(e.number for e in entries),
                         [e.number for e in entries])

    def test_one_driver(self):
        entries = table.select(['virtio_gpu'])
        self.assertEqual({'virtio_gpu'}, {e.driver for e in entries})
        self.assertEqual(4, len(entries))

    def test_unknown_driver_named(self):
        err = self.assertRaises(exception.ProbeError, table.select,
                                ['i915', 'radeonx'])
        self.assertIn('radeonx', str(err))

    def test_extra_entries(self):
        extra = table.parse_extra(['submit:0xAE00:kvm_get_api_version',
                                   'wait:44800'])
        self.assertEqual(('extra', 'kvm_get_api_version', 'submit',
                          0xAE00), (extra[0].driver, extra[0].name,
                                    extra[0].klass, extra[0].number))
        self.assertEqual('0x0000af00', extra[1].name)
        entries = table.select(['virtio_gpu'], extra)
        self.assertEqual(0xAE00, entries[0].number)
        settings = table.settings(entries)
        self.assertEqual(6, settings['targ_ncmds'])
        self.assertEqual((table.SUBMIT << 32) | 0xAE00,
                         settings['targ_cmds'][0])
        self.assertEqual((table.WAIT << 32) | 0xAF00,
                         settings['targ_cmds'][1])

    def test_bad_extra_entries_named(self):
        for item in ('0xAE00', 'exec:0xAE00', 'submit:zz', 'submit:0',
                     'submit:0x100000000', 'a:b:c:d'):
            err = self.assertRaises(exception.ProbeError, table.parse_extra,
                                    [item])
            self.assertIn(item.split(':')[0] if item.startswith('0x')
                          else '', str(err))

    def test_conflicting_class_refused(self):
        extra = table.parse_extra(['wait:0xc0206442'])
        err = self.assertRaises(exception.ProbeError, table.select,
                                ['virtio_gpu'], extra)
        self.assertIn('DRM_IOCTL_VIRTGPU_EXECBUFFER', str(err))

    def test_too_many_refused(self):
        extra = table.parse_extra(['submit:%d' % n for n in range(1, 50)])
        err = self.assertRaises(exception.ProbeError, table.select, [], extra)
        self.assertIn('at most %d' % table.MAX_ENTRIES, str(err))
