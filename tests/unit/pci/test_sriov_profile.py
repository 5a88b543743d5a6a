"""VF profile walk: layout checks, no symlink followed, and the swap race."""

import os
import subprocess
import sys

import fixtures

from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import sriov_profile
from tests import base
from tests.fixtures import sysfs_builder as layouts

A = pci_address.PciAddress.parse
VF = A('0000:4d:00.2')  # virtfn1 -> vf2
# Swaps the real profile/ directory with a symlink to elsewhere, forever.
SWAPPER = """
import os, sys
profile, real, link = sys.argv[1:]
while True:
    os.rename(profile, real)
    os.rename(link, profile)
    os.rename(profile, link)
    os.rename(real, profile)
"""


def _stop(process):
    if process.poll() is None:
        process.kill()
        process.wait()


def xe_layout():
    layout = layouts.load('intel-flex170')
    for pf in layout['pfs']:
        pf['driver'] = 'xe'
        pf['sriov_admin'] = True
    return layout


class SysfsProfilesTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(layouts.SysfsTree(xe_layout())).root
        self.profiles = sriov_profile.SysfsProfiles(self.root)
        self.pf_dir = os.path.join(self.root, 'devices', 'pci0000:00',
                                   '0000:4d:00.0')
        self.outside = self.useFixture(fixtures.TempDir()).path

    def _attr(self, vf_number, name):
        with open(os.path.join(self.pf_dir, 'sriov_admin',
                               'vf%d' % vf_number, 'profile', name)) as fh:
            return fh.read().strip()

    def test_write_reaches_exactly_the_vf(self):
        self.profiles.write(VF, {'exec_quantum_ms': '20',
                                 'sched_priority': 'high'})
        self.assertEqual('20', self._attr(2, 'exec_quantum_ms'))
        self.assertEqual('high', self._attr(2, 'sched_priority'))
        for number in (1, 3, 4):
            self.assertEqual('0', self._attr(number, 'exec_quantum_ms'))
        self.assertEqual({'exec_quantum_ms': '20',
                          'preempt_timeout_us': '0',
                          'sched_priority': 'high'}, self.profiles.read(VF))

    def test_sched_priority_choice_is_parsed(self):
        self.assertEqual('low', self.profiles.read(VF)['sched_priority'])

    def test_pf_and_non_vf_are_refused(self):
        err = self.assertRaises(sriov_profile.ProfileError,
                                self.profiles.write, A('0000:4d:00.0'),
                                {'exec_quantum_ms': '1'})
        self.assertIn('is not an SR-IOV VF', str(err))
        self.assertRaises(sriov_profile.ProfileError, self.profiles.write,
                          A('0000:4d:00.7'), {'exec_quantum_ms': '1'})

    def test_driver_without_profiles_is_named(self):
        link = os.path.join(self.pf_dir, 'driver')
        os.unlink(link)
        os.symlink('../../../bus/pci/drivers/i915', link)
        err = self.assertRaises(sriov_profile.ProfileError,
                                self.profiles.write, VF,
                                {'exec_quantum_ms': '1'})
        self.assertIn('driven by i915', str(err))

    def test_unknown_attribute_refused(self):
        self.assertRaises(sriov_profile.ProfileError, self.profiles.write,
                          VF, {'../../../../etc/passwd': '1'})

    def test_wrong_device_link_refused(self):
        link = os.path.join(self.pf_dir, 'sriov_admin', 'vf2', 'device')
        os.unlink(link)
        os.symlink('../../../0000:4d:00.3', link)
        err = self.assertRaises(sriov_profile.ProfileError,
                                self.profiles.write, VF,
                                {'exec_quantum_ms': '1'})
        self.assertIn('not 0000:4d:00.2', str(err))

    def test_bus_link_out_of_shape_refused(self):
        link = os.path.join(self.root, 'bus', 'pci', 'devices', str(VF))
        os.unlink(link)
        os.symlink(self.outside, link)
        err = self.assertRaises(sriov_profile.ProfileError,
                                self.profiles.write, VF,
                                {'exec_quantum_ms': '1'})
        self.assertIn('points to', str(err))

    def test_planted_symlinks_are_not_followed(self):
        decoy = os.path.join(self.outside, 'exec_quantum_ms')
        with open(decoy, 'w') as fh:
            fh.write('untouched')
        attr = os.path.join(self.pf_dir, 'sriov_admin', 'vf2', 'profile',
                            'exec_quantum_ms')
        os.unlink(attr)
        os.symlink(decoy, attr)
        self.assertRaises(sriov_profile.ProfileError, self.profiles.write,
                          VF, {'exec_quantum_ms': '7'})
        profile = os.path.dirname(attr)
        os.rename(profile, profile + '.real')
        os.symlink(self.outside, profile)
        self.assertRaises(sriov_profile.ProfileError, self.profiles.write,
                          VF, {'exec_quantum_ms': '7'})
        with open(decoy) as fh:
            self.assertEqual('untouched', fh.read())

    def test_symlink_swap_race(self):
        """A concurrent swap of profile/ for a link never redirects a write.

        A naive writer (the kernel path checked, then opened by name) is run
        against the same swapping tree as a control: it must get fooled, or
        the race is not being exercised.
        """
        race(self, self.profiles, os.path.join(
            self.pf_dir, 'sriov_admin', 'vf2', 'profile'), self.outside)


def race(test, profiles, profile, outside):
    """Swap ``profile`` (a directory holding exec_quantum_ms) with a link to
    ``outside`` while ``profiles`` writes VF; assert no write escaped and a
    naive writer, as the control, did get redirected."""
    decoy = os.path.join(outside, 'exec_quantum_ms')
    with open(decoy, 'w') as fh:
        fh.write('untouched')
    real = profile + '.real'
    link = profile + '.link'
    os.symlink(outside, link)
    # A separate process: a real concurrent swapper even where the test
    # runner has eventlet green threads.
    swapper = subprocess.Popen([sys.executable, '-c', SWAPPER, profile,
                                real, link])
    test.addCleanup(_stop, swapper)

    def naive_write(value):
        path = os.path.join(profile, 'exec_quantum_ms')
        try:
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, 'w') as fh:
                    fh.write(value)
        except OSError:
            pass

    ok = refused = 0
    for i in range(3000):
        try:
            profiles.write(VF, {'exec_quantum_ms': str(i)})
            ok += 1
        except sriov_profile.ProfileError:
            refused += 1
    with open(decoy) as fh:
        ours = fh.read()
    for _ in range(50000):
        naive_write('naive')
        with open(decoy) as fh:
            if fh.read() == 'naive':
                break
    _stop(swapper)
    test.assertEqual('untouched', ours)
    test.assertGreater(ok, 0)
    test.assertGreater(refused, 0)
    with open(decoy) as fh:
        test.assertEqual('naive', fh.read(),
                         'control: the naive writer was never fooled, '
                         'so the swap race did not happen')


def i915_layout(gts=('gt0',)):
    layout = layouts.load('intel-flex170')
    for pf in layout['pfs']:
        pf['i915_iov'] = list(gts)
    return layout


class I915ProfilesTest(base.TestCase):
    """The i915 SR-IOV layout: drm/card*/iov/vfN/gt*/ below the PF."""

    def _tree(self, gts=('gt0',)):
        self.root = self.useFixture(layouts.SysfsTree(i915_layout(gts))).root
        self.profiles = sriov_profile.SysfsProfiles(self.root)
        self.pf_dir = os.path.join(self.root, 'devices', 'pci0000:00',
                                   '0000:4d:00.0')
        self.iov = os.path.join(self.pf_dir, 'drm', 'card0', 'iov')

    def _attr(self, number, gt, name, iov=None):
        with open(os.path.join(iov or self.iov, 'vf%d' % number, gt,
                               name)) as fh:
            return fh.read().strip()

    def test_every_gt_of_exactly_the_vf_is_written(self):
        self._tree(('gt0', 'gt1'))
        self.assertEqual({'exec_quantum_ms': '20'}, self.profiles.write(
            VF, {'exec_quantum_ms': '20'}))
        for gt in ('gt0', 'gt1'):
            self.assertEqual('20', self._attr(2, gt, 'exec_quantum_ms'))
            self.assertEqual('0', self._attr(2, gt, 'preempt_timeout_us'))
            for number in (1, 3, 4, 31):
                self.assertEqual('0', self._attr(number, gt,
                                                 'exec_quantum_ms'))
        self.assertEqual({'exec_quantum_ms': '20',
                          'preempt_timeout_us': '0'}, self.profiles.read(VF))
        # The second card (card1) is untouched.
        other = os.path.join(self.root, 'devices', 'pci0000:00',
                             '0000:ca:00.0', 'drm', 'card1', 'iov')
        self.assertEqual('0', self._attr(2, 'gt0', 'exec_quantum_ms',
                                         iov=other))

    def test_single_tile_gt_directory(self):
        self._tree(('gt',))
        self.profiles.write(VF, {'preempt_timeout_us': '50000'})
        self.assertEqual('50000', self._attr(2, 'gt', 'preempt_timeout_us'))

    def test_tiles_that_disagree_are_shown_each(self):
        self._tree(('gt0', 'gt1'))
        with open(os.path.join(self.iov, 'vf2', 'gt1', 'exec_quantum_ms'),
                  'w') as fh:
            fh.write('7\n')
        self.assertEqual('gt0:0,gt1:7',
                         self.profiles.read(VF)['exec_quantum_ms'])

    def test_sched_priority_is_refused_by_name_and_nothing_written(self):
        self._tree()
        err = self.assertRaises(
            sriov_profile.ProfileError, self.profiles.write, VF,
            {'exec_quantum_ms': '20', 'sched_priority': 'high'})
        self.assertIn('i915 has no sched_priority', str(err))
        self.assertEqual('0', self._attr(2, 'gt0', 'exec_quantum_ms'))
        # Restoring defaults skips what the driver has not.
        self.assertEqual({'exec_quantum_ms': '0'}, self.profiles.write(
            VF, {'exec_quantum_ms': '0', 'sched_priority': 'low'},
            only_supported=True))

    def test_i915_without_the_iov_tree_is_named(self):
        self.root = self.useFixture(layouts.SysfsTree(
            'intel-flex170')).root
        err = self.assertRaises(sriov_profile.ProfileError,
                                sriov_profile.SysfsProfiles(self.root).write,
                                VF, {'exec_quantum_ms': '1'})
        self.assertIn('driven by i915 but no drm/card*/iov exists', str(err))

    def test_wrong_device_link_refused(self):
        self._tree()
        link = os.path.join(self.iov, 'vf2', 'device')
        os.unlink(link)
        os.symlink('../../../../../0000:4d:00.3', link)
        err = self.assertRaises(sriov_profile.ProfileError,
                                self.profiles.write, VF,
                                {'exec_quantum_ms': '1'})
        self.assertIn('not 0000:4d:00.2', str(err))

    def test_planted_symlinks_are_not_followed(self):
        self._tree()
        outside = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(outside, 'gt0'))
        decoy = os.path.join(outside, 'gt0', 'exec_quantum_ms')
        with open(decoy, 'w') as fh:
            fh.write('untouched')
        # A gt directory, the vf directory and the card swapped for links.
        for path in (os.path.join(self.iov, 'vf2', 'gt0'),
                     os.path.join(self.iov, 'vf2'),
                     os.path.dirname(self.iov)):
            os.rename(path, path + '.real')
            os.symlink(os.path.join(outside, 'gt0') if path.endswith(
                'gt0') else outside, path)
            self.assertRaises(sriov_profile.ProfileError,
                              self.profiles.write, VF,
                              {'exec_quantum_ms': '7'})
            os.unlink(path)
            os.rename(path + '.real', path)
        with open(decoy) as fh:
            self.assertEqual('untouched', fh.read())
        self.profiles.write(VF, {'exec_quantum_ms': '7'})
        self.assertEqual('7', self._attr(2, 'gt0', 'exec_quantum_ms'))

    def test_class_drm_link_matches_the_kernel_shape(self):
        self._tree()
        self.assertEqual(os.path.realpath(os.path.dirname(self.iov)),
                         os.path.realpath(os.path.join(
                             self.root, 'class', 'drm', 'card0')))
        self.assertEqual('0000:4d:00.2', os.path.basename(os.path.realpath(
            os.path.join(self.iov, 'vf2', 'device'))))
        self.assertFalse(os.path.lexists(os.path.join(
            self.iov, 'vf5', 'device')))  # VF 5 of 31 is not enabled

    def test_symlink_swap_race_on_a_tile(self):
        self._tree()
        race(self, self.profiles, os.path.join(self.iov, 'vf2', 'gt0'),
             self.useFixture(fixtures.TempDir()).path)
