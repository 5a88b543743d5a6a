"""Table-driven tests of the map decoders."""

import os
import tempfile

from multimodal_virt.collector.bpf import decode
from multimodal_virt.metrics import histogram
from tests import base


class TestHistogramDecoders(base.TestCase):

    def test_histogram_from_slots(self):
        cases = [
            ((), ()),
            ((0, 0, 0), ()),
            ((1, 0, 2, 0, 0), (1, 0, 2)),
            ((0,) * 31 + (5,), (0,) * 31 + (5,)),
        ]
        for slots, expected in cases:
            hist = decode.histogram_from_slots(slots)
            self.assertIsInstance(hist, histogram.LatencyHistogram)
            self.assertEqual(expected, hist.buckets, slots)

    def test_slot_layout_matches_latency_histogram(self):
        # The BPF side puts a latency of v us in slot floor(log2(v)),
        # 0 for v <= 1: the same as LatencyHistogram.from_values.
        for value_us, slot in [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2),
                               (1023, 9), (1024, 10)]:
            self.assertEqual(slot, histogram.bucket_of(value_us))
            slots = [0] * 32
            slots[slot] = 1
            self.assertEqual(
                histogram.LatencyHistogram.from_values([value_us]),
                decode.histogram_from_slots(slots))

    def test_slots_delta(self):
        cases = [
            ((3, 4), None, (3, 4)),
            ((3, 4), (1, 4), (2, 0)),
            ((3, 4, 5), (1,), (2, 4, 5)),
            # Entry recreated (counts went down): count from zero.
            ((1, 4), (3, 4), (1, 0)),
        ]
        for current, previous, expected in cases:
            self.assertEqual(expected,
                             decode.slots_delta(current, previous))

    def test_counter_deltas(self):
        cases = [
            ({1: 5}, {}, {1: 5}),
            ({1: 5, 2: 3}, {1: 5, 2: 1}, {2: 2}),
            ({1: 2}, {1: 7}, {1: 2}),
            ({}, {1: 7}, {}),
        ]
        for current, previous, expected in cases:
            self.assertEqual(expected,
                             decode.counter_deltas(current, previous))


class TestDeviceNumbers(base.TestCase):

    def test_kernel_dev_round_trip(self):
        for major, minor in [(0, 0), (8, 0), (10, 232), (226, 128),
                             (259, 1048575)]:
            dev = decode.kernel_dev(major, minor)
            self.assertEqual((major, minor), decode.split_kernel_dev(dev))
            self.assertEqual(dev, decode.kernel_dev_from_rdev(
                os.makedev(major, minor)))

    def test_kernel_encoding(self):
        # MKDEV(major, minor) = major << 20 | minor, unlike user space.
        self.assertEqual(0xA000E8, decode.kernel_dev(10, 232))

    def test_block_device_name(self):
        with tempfile.TemporaryDirectory() as sysfs:
            path = os.path.join(sysfs, 'dev', 'block', '253:0')
            os.makedirs(path)
            with open(os.path.join(path, 'uevent'), 'w') as handle:
                handle.write('MAJOR=253\nMINOR=0\nDEVNAME=vda\n')
            self.assertEqual('vda', decode.block_device_name(
                decode.kernel_dev(253, 0), sysfs=sysfs))
            self.assertEqual('7:3', decode.block_device_name(
                decode.kernel_dev(7, 3), sysfs=sysfs))


class TestKvmExits(base.TestCase):

    def test_reason_names(self):
        cases = [
            ((1, 12, 1), 'VMX:HLT'),
            ((1, 30, 1), 'VMX:IO_INSTRUCTION'),
            ((1, 0x80000021, 1), 'VMX:33'),
            ((1, 0x78, 2), 'SVM:hlt'),
            ((1, 0x999, 2), 'SVM:0x999'),
            ((1, 5, 7), 'isa7:5'),
            ((2, 2, 0), 'userspace:IO'),
            ((2, 6, 0), 'userspace:MMIO'),
            ((2, 77, 0), 'userspace:77'),
        ]
        for args, expected in cases:
            self.assertEqual(expected, decode.kvm_exit_reason(*args))

    def test_prefers_kvm_exit_when_it_fired(self):
        entries = {
            (100, 1, 12, 1): (7,),
            (100, 1, 30, 1): (3,),
            (100, 2, 2, 0): (3,),     # subset of the kvm_exit exits
            (200, 1, 12, 1): (1,),
        }
        by_pid, by_reason, events = decode.kvm_exits(entries)
        self.assertEqual({100: 10, 200: 1}, by_pid)
        self.assertEqual({'VMX:HLT': 8, 'VMX:IO_INSTRUCTION': 3}, by_reason)
        self.assertEqual(('kvm:kvm_exit',), events)

    def test_falls_back_to_userspace_exits(self):
        entries = {(100, 2, 2, 0): (40,), (100, 2, 6, 0): (2,),
                   (300, 2, 2, 0): (1,)}
        by_pid, by_reason, events = decode.kvm_exits(entries)
        self.assertEqual({100: 42, 300: 1}, by_pid)
        self.assertEqual({'userspace:IO': 41, 'userspace:MMIO': 2},
                         by_reason)
        self.assertEqual(('kvm:kvm_userspace_exit',), events)

    def test_empty(self):
        self.assertEqual(({}, {}, ()), decode.kvm_exits({}))
