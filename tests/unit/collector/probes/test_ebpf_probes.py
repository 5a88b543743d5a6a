"""eBPF probe logic over fake loaded objects (no BPF needed)."""

import os
import tempfile

import fixtures

from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.probes import block_io
from multimodal_virt.collector.probes import gpu_ioctl
from multimodal_virt.collector.probes import irq
from multimodal_virt.collector.probes import kvm_exit
from multimodal_virt import exception
from tests import base


class FakeLoaded(object):
    """Stands in for a loaded BPF object: maps as dicts."""

    def __init__(self, maps, events=('a:b',)):
        self.maps = maps
        self.events = events
        self.closed = 0

    def read(self, name):
        return dict(self.maps.get(name, {}))

    def delete(self, name, key):
        self.maps[name].pop(key, None)

    def pop(self, name):
        data, self.maps[name] = self.maps[name], {}
        return data

    def close(self):
        self.closed += 1


class FakeBackend(object):
    name = 'fake'

    def __init__(self, loaded):
        self.loaded = loaded
        self.calls = []

    def load(self, probe_spec, rodata, max_entries):
        self.calls.append((probe_spec.source, rodata, max_entries))
        return self.loaded


class ProbeTestCase(base.TestCase):

    def start(self, probe, loaded):
        fake = FakeBackend(loaded)
        self.patch('multimodal_virt.collector.bpf.backend.get_backend',
                   lambda conf, host=None: fake)
        probe.start()
        return fake

    def patch(self, target, new):
        self.useFixture(fixtures.MonkeyPatch(target, new))


def _fake_block_host(testcase, devices, proc_devices):
    """A sysfs with ``{(major, minor): name}`` and a /proc/devices file."""
    root = testcase.useFixture(fixtures.TempDir()).path
    for (major, minor), name in devices.items():
        entry = os.path.join(root, 'dev', 'block', '%d:%d' % (major, minor))
        os.makedirs(entry)
        with open(os.path.join(entry, 'uevent'), 'w') as handle:
            handle.write('MAJOR=%d\nMINOR=%d\nDEVNAME=%s\n'
                         % (major, minor, name))
    path = os.path.join(root, 'devices')
    with open(path, 'w') as handle:
        handle.write(proc_devices)
    return root, path


PROC_DEVICES = """Character devices:
  1 mem
  7 vcs

Block devices:
  7 loop
  9 md
253 device-mapper
254 virtblk
259 blkext
"""


class TestBlockIO(ProbeTestCase):

    def _probe(self, devices):
        sysfs, proc_devices = _fake_block_host(self, devices, PROC_DEVICES)
        return block_io.BlockIOProbe(self.conf, sysfs=sysfs,
                                     proc_devices=proc_devices)

    def test_reports_deltas_per_device(self):
        vda = decode.kernel_dev(254, 0)
        loaded = FakeLoaded({'hists': {(vda,): (0, 0, 4) + (0,) * 29}})
        probe = self._probe({(254, 0): 'vda'})
        fake = self.start(probe, loaded)
        # The issue-time table: inflight_max_entries (10240) rounded up to
        # a power of two, its index mask a setting.
        self.assertEqual({'start': 16384, 'hists': 64}, fake.calls[0][2])
        self.assertEqual(16383, probe.settings()['targ_start_mask'])
        # loop, md and device-mapper by major (this kernel has no zram or
        # ramdisk driver registered: nothing to exclude for them).
        self.assertEqual({'targ_dev': 0, 'targ_nskip': 3,
                          'targ_skip_majors': [7, 9, 253],
                          'targ_start_mask': 16383},
                         fake.calls[0][1])
        # start() took the baseline: nothing new yet; the idle entry stays
        # (the table has room) and vda's next requests add to it.
        self.assertEqual(0, probe.collect().io.count)
        self.assertEqual([(vda,)], list(loaded.maps['hists']))
        loaded.maps['hists'] = {(vda,): (0, 1, 6) + (0,) * 29}
        loaded.maps['drops'] = {(0,): (0,), (1,): (3,)}
        reading = probe.collect()
        self.assertEqual('ebpf', reading.source)
        self.assertEqual((0, 1, 2), reading.io.buckets)
        self.assertEqual({'vda'}, set(reading.io_by_device))
        self.assertEqual(('a:b',), reading.events)
        self.assertEqual({'block_io.start': 0, 'block_io.hists': 3},
                         reading.dropped)

    def test_exclusion_is_configurable(self):
        self.flags('multimodal_virt_probes', exclude_block_drivers=[])
        probe = self._probe({})
        self.assertEqual({'targ_dev': 0, 'targ_nskip': 0,
                          'targ_skip_majors': [],
                          'targ_start_mask': 16383}, probe.settings())
        self.flags('multimodal_virt_probes',
                   exclude_block_drivers=['loop', 'nbd'])
        self.assertEqual([7], probe.settings()['targ_skip_majors'])

    def test_vanished_devices_are_deleted_every_window(self):
        vda = decode.kernel_dev(254, 0)
        gone = decode.kernel_dev(259, 7)
        loaded = FakeLoaded({'hists': {}})
        probe = self._probe({(254, 0): 'vda'})
        self.start(probe, loaded)
        loaded.maps['hists'] = {(vda,): (0, 2) + (0,) * 30,
                                (gone,): (0, 5) + (0,) * 30}
        reading = probe.collect()
        self.assertEqual({'vda'}, set(reading.io_by_device))
        self.assertEqual(2, reading.io.count)
        self.assertEqual([(vda,)], list(loaded.maps['hists']))
        # vda idle for a window, with room in the table: its entry stays,
        # so an I/O landing while the collector reads is never deleted
        # with it; its next requests count from where it was.
        self.assertEqual(0, probe.collect().io.count)
        self.assertEqual([(vda,)], list(loaded.maps['hists']))
        loaded.maps['hists'] = {(vda,): (0, 3) + (0,) * 30}
        self.assertEqual(1, probe.collect().io_by_device['vda'].count)

    def test_idle_devices_are_deleted_when_the_table_is_half_full(self):
        self.flags('multimodal_virt_probes', max_block_devices=4)
        devs = [decode.kernel_dev(254, n) for n in range(3)]
        loaded = FakeLoaded({'hists': {}})
        probe = self._probe({(254, n): 'vd%d' % n for n in range(3)})
        self.start(probe, loaded)
        loaded.maps['hists'] = {(dev,): (0, 1) + (0,) * 30 for dev in devs}
        self.assertEqual(3, probe.collect().io.count)
        # Three of four slots taken, none moved: all idle, all deleted.
        loaded.maps['hists'][(devs[0],)] = (0, 2) + (0,) * 30
        self.assertEqual(1, probe.collect().io.count)
        self.assertEqual([(devs[0],)], list(loaded.maps['hists']))

    def test_drivers_registered_later_are_excluded_by_name(self):
        loop = decode.kernel_dev(7, 3)
        loaded = FakeLoaded({'hists': {}})
        probe = self._probe({(7, 3): 'loop3'})
        self.start(probe, loaded)
        loaded.maps['hists'] = {(loop,): (0, 2) + (0,) * 30}
        self.assertEqual({}, probe.collect().io_by_device)

    def test_first_drop_of_each_map_logged_once(self):
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.probe'))
        loaded = FakeLoaded({'hists': {}})
        probe = self._probe({})
        self.start(probe, loaded)
        # Completions without a start in the first window: requests in
        # flight at attach time, published but not logged.
        loaded.maps['drops'] = {(0,): (2,), (1,): (0,)}
        self.assertEqual({'block_io.start': 2, 'block_io.hists': 0},
                         probe.collect().dropped)
        self.assertNotIn('not counted', logs.output)
        loaded.maps['drops'] = {(0,): (2,), (1,): (4,)}
        self.assertEqual({'block_io.start': 0, 'block_io.hists': 4},
                         probe.collect().dropped)
        loaded.maps['drops'] = {(0,): (9,), (1,): (10,)}
        self.assertEqual({'block_io.start': 7, 'block_io.hists': 6},
                         probe.collect().dropped)
        loaded.maps['drops'] = {(0,): (12,), (1,): (11,)}
        probe.collect()
        self.assertEqual(1, logs.output.count('map hists was full'))
        self.assertEqual(1, logs.output.count('no start time in BPF map start'))
        self.assertIn('max_block_devices', logs.output)

    def test_events_the_kernel_skipped_are_published_logged_once(self):
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.probe'))
        loaded = FakeLoaded({'hists': {}})
        misses = [0]
        loaded.recursion_misses = lambda: misses[0]
        probe = self._probe({})
        self.start(probe, loaded)
        self.assertEqual(0, probe.collect().dropped['block_io.nested'])
        misses[0] = 3
        self.assertEqual(3, probe.collect().dropped['block_io.nested'])
        misses[0] = 4
        self.assertEqual(1, probe.collect().dropped['block_io.nested'])
        self.assertEqual(1, logs.output.count('already running on that CPU'))
        # A loader that cannot tell publishes no such counter.
        del loaded.recursion_misses
        self.assertNotIn('block_io.nested', probe.collect().dropped)

    def test_map_sizes_from_config(self):
        self.flags('multimodal_virt_probes', max_block_devices=4,
                   inflight_max_entries=256)
        probe = block_io.BlockIOProbe(self.conf)
        self.assertEqual({'start': 256, 'hists': 4}, probe.max_entries())

    def test_collect_before_start(self):
        probe = block_io.BlockIOProbe(self.conf)
        self.assertRaises(exception.ProbeError, probe.collect)

    def test_stop_closes_once(self):
        loaded = FakeLoaded({'hists': {}})
        probe = block_io.BlockIOProbe(self.conf)
        self.start(probe, loaded)
        probe.stop()
        probe.stop()
        self.assertEqual(1, loaded.closed)
        self.assertEqual((), probe.events)


class TestIrq(ProbeTestCase):

    def test_counts_since_last_collect(self):
        loaded = FakeLoaded({'counts': {(1,): (10,), (24,): (3,)}})
        probe = irq.IrqProbe(self.conf)
        self.start(probe, loaded)
        loaded.maps['counts'] = {(1,): (15,), (24,): (3,), (30,): (2,)}
        self.assertEqual({1: 5, 30: 2}, probe.collect().irq_counts)


class TestKvmExit(ProbeTestCase):

    def test_pops_and_decodes(self):
        loaded = FakeLoaded({'exits': {}},
                            events=('kvm:kvm_exit', 'kvm:kvm_userspace_exit'))
        probe = kvm_exit.KvmExitProbe(self.conf)
        self.start(probe, loaded)
        loaded.maps['exits'] = {(42, 2, 2, 0): (9,)}
        reading = probe.collect()
        self.assertEqual({42: 9}, reading.vm_exits_by_pid)
        self.assertEqual({'userspace:IO': 9}, reading.vm_exits_by_reason)
        self.assertEqual(('kvm:kvm_userspace_exit',), reading.events)
        self.assertEqual({}, loaded.maps['exits'])
        # Nothing fired: events are the attached ones, counts empty.
        reading = probe.collect()
        self.assertEqual({}, reading.vm_exits_by_pid)
        self.assertEqual(loaded.events, reading.events)


class TestGpuIoctl(ProbeTestCase):

    def test_resolve_devices_only_character_devices(self):
        with tempfile.TemporaryDirectory() as tmp:
            open(os.path.join(tmp, 'regular'), 'w').close()
            devices = gpu_ioctl.resolve_devices(
                ['/dev/null', '/dev/zero', tmp + '/*', '/nonexistent*'], 64)
        expected = sorted(decode.kernel_dev_from_rdev(os.stat(p).st_rdev)
                          for p in ('/dev/null', '/dev/zero'))
        self.assertEqual(expected, devices)
        self.assertEqual(expected[:1], gpu_ioctl.resolve_devices(
            ['/dev/null', '/dev/zero'], 1))

    def test_relative_glob_is_refused(self):
        err = self.assertRaises(exception.ProbeError,
                                gpu_ioctl.resolve_devices, ['dev/dri/*'], 8)
        self.assertIn('dev/dri/*', str(err))

    def test_settings_from_globs(self):
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/null'])
        probe = gpu_ioctl.GpuIoctlProbe(self.conf)
        null = decode.kernel_dev_from_rdev(os.stat('/dev/null').st_rdev)
        settings = probe.settings()
        self.assertEqual(1, settings['targ_ndevs'])
        self.assertEqual([null], settings['targ_devs'])
        self.assertEqual(22, settings['targ_ncmds'])
        self.assertIn('1:3', probe.describe())

    def test_no_device_attaches_nothing(self):
        self.flags('multimodal_virt_probes',
                   gpu_device_globs=['/nonexistent/nvidia*'])
        probe = gpu_ioctl.GpuIoctlProbe(self.conf)
        fake = self.start(probe, FakeLoaded({}))
        self.assertEqual([], fake.calls)
        reading = probe.collect()
        self.assertIsNone(reading.gpu_cmd)
        probe.stop()

    def test_histogram_delta(self):
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/null'])
        loaded = FakeLoaded({'hist': {(1,): (5,) + (0,) * 31,
                                      (2,): (0,) * 32}})
        probe = gpu_ioctl.GpuIoctlProbe(self.conf)
        self.start(probe, loaded)
        loaded.maps['hist'] = {(1,): (8, 1) + (0,) * 30,
                               (2,): (0, 0, 4) + (0,) * 29}
        reading = probe.collect()
        self.assertEqual((3, 1), reading.gpu_submit.buckets)
        self.assertEqual((0, 0, 4), reading.gpu_wait.buckets)
        self.assertEqual(0, reading.gpu_nvidia_rm.count)
        self.assertIsNone(reading.gpu_cmd)
        self.assertEqual(('gpu_submit', 'gpu_wait'), reading.gpu_observed)
