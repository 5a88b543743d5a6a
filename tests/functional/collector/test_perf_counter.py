"""gpu_vf_busy's perf_event_open plumbing on the real kernel.

There is no xe PMU here; the same PerfCounter opens the kernel's software
task-clock-like PMU (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK) on CPU 0
and must count nanoseconds as wall time passes.
"""

import os
import time

from multimodal_virt.collector.probes import gpu_vf_busy
from tests import base
from tests.functional import requirements

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_CPU_CLOCK = 0


class TestPerfCounter(base.TestCase):

    def test_software_counter_counts(self):
        requirements.require(self, os.geteuid() == 0,
                             'system-wide perf events need CAP_PERFMON')
        counter = gpu_vf_busy.PerfCounter(PERF_TYPE_SOFTWARE,
                                          PERF_COUNT_SW_CPU_CLOCK)
        self.addCleanup(counter.close)
        first = counter.read()
        time.sleep(0.05)
        second = counter.read()
        # CPU 0's clock runs whether or not it is busy: >= 50 ms passed.
        self.assertGreaterEqual(second - first, 40 * 10 ** 6)

    def test_unknown_pmu_refused(self):
        requirements.require(self, os.geteuid() == 0,
                             'system-wide perf events need CAP_PERFMON')
        err = self.assertRaises(OSError, gpu_vf_busy.PerfCounter, 0x7fff, 0)
        self.assertIsNotNone(err.errno)
