"""VM exits per qemu process and exit reason, from eBPF."""

from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.bpf import probe
from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import base

SPEC = spec.ProbeSpec(
    source='kvm_exit',
    programs=(
        spec.Program('mmv_kvm_exit', 'kvm:kvm_exit', 'tracepoint',
                     required=False),
        spec.Program('mmv_kvm_userspace_exit', 'kvm:kvm_userspace_exit',
                     'tracepoint', required=False),
    ),
    maps=(spec.Map('exits', 'IIII', 'Q', 'max_vm_exit_keys'),),
    drops=('exits',),
)


class KvmExitProbe(probe.BpfProbe):
    """VM exits per qemu pid, by reason where the kernel reports it.

    Attaches to whichever of ``kvm:kvm_exit`` and ``kvm:kvm_userspace_exit``
    the kernel offers; the reading's ``events`` names the one counted.
    Enable with ``[multimodal_virt_probes] enabled = kvm_exit,...``.
    """

    name = 'kvm_exit'
    spec = SPEC

    def read(self):
        by_pid, by_reason, events = decode.kvm_exits(
            self.loaded.pop('exits'))
        return base.ProbeReading(source='ebpf', vm_exits_by_pid=by_pid,
                                 vm_exits_by_reason=by_reason,
                                 events=events or self.events)
