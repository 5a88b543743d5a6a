"""Real eBPF life cycle: clean detach, SIGTERM, failure isolation, bounds."""

import dataclasses
import json
import signal
import subprocess
import sys

from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import block_io
from multimodal_virt.collector.probes import gpu_ioctl
from multimodal_virt.collector.probes import irq
from multimodal_virt.collector.probes import kvm_exit
from multimodal_virt import exception
from tests.functional.collector import ebpf_base

ALL = (block_io.BlockIOProbe, gpu_ioctl.GpuIoctlProbe,
       kvm_exit.KvmExitProbe, irq.IrqProbe)

# Runs in a child process: start every probe, print the program ids, stop
# everything on SIGTERM.
CHILD = r'''
import json, signal, sys, time
from oslo_config import cfg
from multimodal_virt import conf as mmv_conf
from multimodal_virt.collector.probes import block_io, gpu_ioctl, irq, kvm_exit
conf = cfg.ConfigOpts()
mmv_conf.register_opts(conf)
conf([], default_config_files=[])
conf.set_override('bpf_build_dir', sys.argv[1], 'multimodal_virt_libbpf')
conf.set_override('gpu_device_globs', ['/dev/kvm'], 'multimodal_virt_probes')
conf.set_override('gpu_extra_ioctls', ['submit:0xAE00'], 'multimodal_virt_probes')
probes = [c(conf) for c in (block_io.BlockIOProbe, gpu_ioctl.GpuIoctlProbe,
                            kvm_exit.KvmExitProbe, irq.IrqProbe)]
for probe in probes:
    probe.start()
def on_term(signum, frame):
    for probe in probes:
        probe.stop()
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print(json.dumps([i for p in probes for i in p.loaded.prog_ids()]),
      flush=True)
while True:
    time.sleep(1)
'''


class BrokenIrqProbe(irq.IrqProbe):
    """An irq probe whose required event does not exist."""

    name = 'broken'
    spec = dataclasses.replace(irq.SPEC, programs=(
        spec.Program('mmv_irq_handler_entry', 'irq:mmv_no_such_event',
                     'tp_btf'),))


class TestLifecycle(ebpf_base.EbpfTestCase):

    def setUp(self):
        super().setUp()
        self.flags('multimodal_virt_probes', gpu_device_globs=['/dev/kvm'])

    def test_stop_leaves_no_program(self):
        before = ebpf_base.bpf_prog_ids_of_this_process()
        probes = [cls(self.conf) for cls in ALL]
        for probe in probes:
            probe.start()
        ours = {i for p in probes for i in p.loaded.prog_ids()}
        # block_io 2, gpu_ioctl 2, kvm_exit up to 2, irq 1.
        self.assertGreaterEqual(len(ours), 5)
        self.assertTrue(ours <= ebpf_base.bpf_prog_ids_of_this_process())
        self.assertTrue(ours <= ebpf_base.kernel_prog_ids())
        for probe in probes:
            probe.stop()
            probe.stop()  # twice is safe
        self.assertEqual(before, ebpf_base.bpf_prog_ids_of_this_process())
        self.assertEqual(set(), ebpf_base.wait_gone(ours))

    def test_sigterm_detaches_everything(self):
        child = subprocess.Popen(
            [sys.executable, '-c', CHILD, ebpf_base.BUILD_DIR],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: child.poll() is None and child.kill())
        line = child.stdout.readline()
        self.assertTrue(line, child.stderr.read() if not line else '')
        ours = set(json.loads(line))
        self.assertGreaterEqual(len(ours), 5)
        self.assertTrue(ours <= ebpf_base.kernel_prog_ids())
        child.send_signal(signal.SIGTERM)
        self.assertEqual(0, child.wait(timeout=60))
        child.stdout.close()
        child.stderr.close()
        self.assertEqual(set(), ebpf_base.wait_gone(ours))

    def test_failing_probe_does_not_stop_the_others(self):
        good = self.started(block_io.BlockIOProbe)
        broken = BrokenIrqProbe(self.conf)
        err = self.assertRaises(exception.ProbeError, broken.start)
        self.assertIn('irq:mmv_no_such_event', str(err))
        broken.stop()
        good.collect()
        ebpf_base.direct_writes(self.tmp, 16)
        self.assertGreaterEqual(good.collect().io.count, 16)

    def test_maps_sized_from_config(self):
        self.flags('multimodal_virt_probes', max_block_devices=3,
                   inflight_max_entries=256)
        probe = self.started(block_io.BlockIOProbe)
        map_ids = set()
        for prog in probe.loaded.prog_ids():
            info = json.loads(subprocess.run(
                ['bpftool', '-j', 'prog', 'show', 'id', str(prog)],
                capture_output=True, check=True, text=True).stdout)
            map_ids.update(info.get('map_ids', ()))
        sizes = {}
        for map_id in map_ids:
            info = json.loads(subprocess.run(
                ['bpftool', '-j', 'map', 'show', 'id', str(map_id)],
                capture_output=True, check=True, text=True).stdout)
            sizes[info['name']] = info['max_entries']
        self.assertEqual(3, sizes['hists'])
        self.assertEqual(256, sizes['start'])
