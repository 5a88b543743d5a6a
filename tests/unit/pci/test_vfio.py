"""Unit tests of vfio rebinding: path validation and the sysfs writes.

The privsep entrypoints run in-process here (client mode off); the real
daemon is exercised in tests/functional/libvirt/test_privsep_vfio.py.
"""

import os

import fixtures

from multimodal_virt import exception
from multimodal_virt.pci import address
from multimodal_virt.pci import vfio
from multimodal_virt.privileged import vfio as priv_vfio
from multimodal_virt import privsep
from tests import base
from tests.functional.libvirt import fake_sysfs

VF = fake_sysfs.VFS[0]


class VfioTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.sysfs = self.useFixture(fake_sysfs.FakeSysfs())
        self.root = self.sysfs.root
        privsep.sys_admin_pctxt.set_client_mode(False)
        self.addCleanup(privsep.sys_admin_pctxt.set_client_mode, True)

    def test_paths(self):
        dev = vfio.device_dir(self.root, address.PciAddress.parse(VF))
        self.assertEqual(os.path.join(self.root, 'bus/pci/devices', VF), dev)
        self.assertEqual('nvidia', vfio.current_driver(self.root, VF))
        self.assertEqual(os.path.join(self.root, 'bus/pci/drivers/vfio-pci'),
                         vfio.driver_dir(self.root, 'vfio-pci'))

    def test_bad_roots(self):
        link = os.path.join(self.useFixture(fixtures.TempDir()).path, 'l')
        os.symlink(self.root, link)
        cases = [('sys', 'absolute path'),
                 (None, 'absolute path'),
                 (self.root + '/', 'normalised'),
                 (self.root + '/bus/..', 'normalised'),
                 (link, 'free of symlinks'),
                 (os.path.join(self.root, 'bus'), 'no bus/pci/devices')]
        for root, text in cases:
            err = self.assertRaises(exception.VfioBindError,
                                    vfio.validate_sysfs_root, root)
            self.assertIn(text, str(err), root)

    def test_bad_driver_and_address(self):
        for name in ('', '../vfio', 'vfio pci', 'a/b', None, 'x' * 65):
            err = self.assertRaises(exception.VfioBindError,
                                    vfio.validate_driver, name)
            self.assertIn('driver name', str(err))
        err = self.assertRaises(exception.InvalidPciAddress,
                                vfio.device_dir, self.root, '../../etc')
        self.assertIn("'../../etc'", str(err))
        err = self.assertRaises(exception.VfioBindError, vfio.device_dir,
                                self.root, '0000:3b:00.7')
        self.assertIn('0000:3b:00.7 not found', str(err))
        err = self.assertRaises(exception.VfioBindError, vfio.driver_dir,
                                self.root, 'vfio_pci_missing')
        self.assertIn('is not loaded', str(err))

    def test_device_link_escaping_the_root_is_refused(self):
        outside = self.useFixture(fixtures.TempDir()).path
        os.symlink(outside, os.path.join(self.root, 'bus/pci/devices',
                                         '0000:3b:00.7'))
        err = self.assertRaises(exception.VfioBindError, vfio.device_dir,
                                self.root, '0000:3b:00.7')
        self.assertIn('outside the sysfs root', str(err))

    def test_set_driver_writes_override_unbind_bind(self):
        previous = priv_vfio.set_driver(self.root, VF, 'vfio-pci')
        self.assertEqual('nvidia', previous)
        self.assertEqual('vfio-pci\n', self.sysfs.read(
            'bus/pci/devices', VF, 'driver_override'))
        self.assertEqual(VF, self.sysfs.read('bus/pci/drivers/nvidia/unbind'))
        self.assertEqual(VF, self.sysfs.read('bus/pci/drivers/vfio-pci/bind'))
        self.assertEqual('', self.sysfs.read('bus/pci/drivers_probe'))

    def test_set_driver_unbound_device_skips_unbind(self):
        self.sysfs.set_driver(VF, None)
        self.assertIsNone(priv_vfio.set_driver(self.root, VF, 'vfio-pci'))
        self.assertEqual('', self.sysfs.read('bus/pci/drivers/nvidia/unbind'))
        self.assertEqual(VF, self.sysfs.read('bus/pci/drivers/vfio-pci/bind'))

    def test_bind_vfio_already_bound_is_idempotent(self):
        self.sysfs.set_driver(VF, 'vfio-pci')
        self.assertEqual('vfio-pci', priv_vfio.bind_vfio(VF, self.root))
        self.assertEqual('', self.sysfs.read('bus/pci/drivers/vfio-pci/bind'))
        self.assertEqual('', self.sysfs.read(
            'bus/pci/drivers/vfio-pci/unbind'))

    def test_bind_vfio_reports_a_bind_the_kernel_refused(self):
        # Nothing behind the fake tree moves the driver link, exactly like
        # a kernel that refused the bind (e.g. IOMMU group not viable).
        err = self.assertRaises(exception.VfioBindError, priv_vfio.bind_vfio,
                                VF, self.root)
        self.assertIn('bound to nvidia after the bind, expected vfio-pci',
                      str(err))

    def test_clear_driver(self):
        self.sysfs.set_driver(VF, 'vfio-pci')
        self.assertEqual('vfio-pci',
                         priv_vfio.clear_driver(self.root, VF, 'vfio-pci'))
        self.assertEqual('\n', self.sysfs.read('bus/pci/devices', VF,
                                               'driver_override'))
        self.assertEqual(VF,
                         self.sysfs.read('bus/pci/drivers/vfio-pci/unbind'))
        self.assertEqual(VF, self.sysfs.read('bus/pci/drivers_probe'))

    def test_entrypoints_validate_their_arguments(self):
        for args, exc in (((self.root, 'zz', 'vfio-pci'),
                           exception.InvalidPciAddress),
                          ((self.root, VF, '../x'), exception.VfioBindError),
                          (('relative', VF, 'vfio-pci'),
                           exception.VfioBindError)):
            self.assertRaises(exc, priv_vfio.set_driver, *args)
            self.assertRaises(exc, priv_vfio.clear_driver, *args)
        self.assertEqual('(null)\n', self.sysfs.read(
            'bus/pci/devices', VF, 'driver_override'))

    def test_write_never_creates_files(self):
        os.unlink(os.path.join(self.sysfs.device(VF), 'driver_override'))
        err = self.assertRaises(exception.VfioBindError,
                                priv_vfio.set_driver, self.root, VF,
                                'vfio-pci')
        self.assertIn('cannot open', str(err))
        self.assertFalse(os.path.exists(
            os.path.join(self.sysfs.device(VF), 'driver_override')))

    def test_configured_root_and_driver(self):
        self.flags('multimodal_virt_libvirt', sysfs_root=self.root,
                   vfio_driver='vfio-pci')
        self.sysfs.set_driver(VF, 'vfio-pci')
        self.assertEqual('vfio-pci', priv_vfio.bind_configured(self.conf, VF))
        self.assertEqual('vfio-pci',
                         priv_vfio.unbind_configured(self.conf, VF))
        self.assertEqual(VF, self.sysfs.read('bus/pci/drivers_probe'))
        self.assertRaises(ValueError, self.flags, 'multimodal_virt_libvirt',
                          vfio_driver='../x')
