"""Shared set-up of the real eBPF tests (root, BTF, tracefs, libbpf/bcc)."""

import logging
import os
import shutil
import subprocess
import tempfile
import time

from multimodal_virt.collector.bpf import backend
from multimodal_virt.collector.bpf import features
from tests import base
from tests.functional import requirements

# Shared by the test processes: objects are written atomically and named
# by content hash, so parallel workers can share one cache.
BUILD_DIR = os.path.join(tempfile.gettempdir(), 'mmv-test-bpf-cache')


def bpf_prog_ids_of_this_process():
    """Program ids behind this process's BPF fds (from /proc/self/fdinfo)."""
    ids = set()
    for fd in os.listdir('/proc/self/fdinfo'):
        try:
            with open('/proc/self/fdinfo/' + fd) as handle:
                for line in handle:
                    if line.startswith('prog_id:'):
                        ids.add(int(line.split()[1]))
        except OSError:
            continue
    return ids


def kernel_prog_ids():
    """Ids of every BPF program loaded in the kernel (bpftool)."""
    out = subprocess.run(['bpftool', 'prog', 'show'], capture_output=True,
                         text=True, check=True).stdout
    return {int(line.split(':', 1)[0]) for line in out.splitlines()
            if line and line[0].isdigit()}


def wait_gone(prog_ids, deadline_s=10.0):
    """Ids among ``prog_ids`` still loaded after waiting up to a deadline.

    The kernel frees programs asynchronously after the last fd closes.
    """
    end = time.monotonic() + deadline_s
    while True:
        left = set(prog_ids) & kernel_prog_ids()
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.1)


def direct_writes(directory, count, block='4k', overwrite=False):
    """Write ``count`` blocks with O_DIRECT (dd oflag=direct).

    :param overwrite: write over the blocks of the existing file
        (``conv=notrunc``): one block request per write, where extending a
        fresh file may let the filesystem allocate, and so submit, blocks
        differently.
    """
    path = os.path.join(directory, 'direct.bin')
    argv = ['dd', 'if=/dev/zero', 'of=' + path, 'bs=' + block,
            'count=%d' % count, 'oflag=direct']
    if overwrite:
        argv.append('conv=notrunc')
    subprocess.run(argv, check=True, capture_output=True)
    return path


def logger_enabled(testcase, name):
    """Re-enable logger ``name`` for the test (another test's logging
    configuration may have disabled existing loggers)."""
    logger = logging.getLogger(name)
    testcase.addCleanup(setattr, logger, 'disabled', logger.disabled)
    logger.disabled = False


def counters_by_name(loaded, spec, anomalies):
    """A loaded object's drop counters and anomalies, by name.

    :param spec: the probe's ``ProbeSpec`` (names of the ``drops`` slots).
    :param anomalies: names of the ``anomalies`` map's slots.
    """
    counters = {spec.drops[key[0]]: value[0]
                for key, value in loaded.read('drops').items()}
    counters.update({anomalies[key[0]]: value[0]
                     for key, value in loaded.read('anomalies').items()})
    return counters


class EbpfTestCase(base.TestCase):
    """Real eBPF: requires root and the chosen backend on this host."""

    BACKEND = 'libbpf'

    def setUp(self):
        super().setUp()
        requirements.require(self, os.geteuid() == 0,
                             'loading BPF programs needs root')
        requirements.require(self, features.tracefs_root() is not None,
                             'classic tracepoints need tracefs mounted on '
                             '/sys/kernel/tracing (tools/setup-host.sh)')
        if self.BACKEND == 'libbpf':
            self.flags('multimodal_virt_libbpf', bpf_build_dir=BUILD_DIR)
            reason = backend.HostProbe(self.conf).libbpf()
        else:
            reason = backend.HostProbe(self.conf).bcc()
        requirements.require(self, reason is None,
                             '%s backend: %s' % (self.BACKEND, reason))
        self.flags('multimodal_virt_probes', backend=self.BACKEND)
        self.tmp = tempfile.mkdtemp(dir='/var/tmp', prefix='mmv-ebpf-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def started(self, probe_cls):
        """Start a probe; stop it at cleanup."""
        probe = probe_cls(self.conf)
        probe.start()
        self.addCleanup(probe.stop)
        return probe
