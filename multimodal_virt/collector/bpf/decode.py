"""Tiny decoders from raw map contents to metrics (table-driven tests).

Every function is pure: no BPF, no I/O except :func:`block_device_name`,
which reads one sysfs file built from two integers.
"""

import os

from multimodal_virt.metrics import histogram

MINORBITS = 20
MINORMASK = (1 << MINORBITS) - 1

#: kvm_exit.bpf.c event ids -> tracepoint names.
KVM_EVENTS = {1: 'kvm:kvm_exit', 2: 'kvm:kvm_userspace_exit'}

#: kvm_exit ``isa`` field values.
KVM_ISA = {1: 'VMX', 2: 'SVM'}

#: VMX basic exit reasons (Intel SDM appendix C), the common ones.
VMX_EXIT_REASONS = {
    0: 'EXCEPTION_NMI', 1: 'EXTERNAL_INTERRUPT', 2: 'TRIPLE_FAULT',
    7: 'INTERRUPT_WINDOW', 10: 'CPUID', 12: 'HLT', 18: 'VMCALL',
    28: 'CR_ACCESS', 30: 'IO_INSTRUCTION', 31: 'MSR_READ', 32: 'MSR_WRITE',
    40: 'PAUSE_INSTRUCTION', 44: 'APIC_ACCESS', 45: 'EOI_INDUCED',
    48: 'EPT_VIOLATION', 49: 'EPT_MISCONFIG', 52: 'PREEMPTION_TIMER',
    55: 'XSETBV', 56: 'APIC_WRITE',
}

#: SVM exit codes (AMD APM vol. 2 appendix C), the common ones.
SVM_EXIT_REASONS = {
    0x060: 'intr', 0x061: 'nmi', 0x064: 'vintr', 0x072: 'cpuid',
    0x077: 'pause', 0x078: 'hlt', 0x07b: 'io', 0x07c: 'msr',
    0x081: 'vmmcall', 0x400: 'npf', 0x401: 'avic_incomplete_ipi',
    0x402: 'avic_unaccelerated_access',
}

#: KVM_EXIT_* codes of ``struct kvm_run`` (linux/kvm.h).
KVM_USERSPACE_EXIT_REASONS = {
    0: 'UNKNOWN', 1: 'EXCEPTION', 2: 'IO', 3: 'HYPERCALL', 4: 'DEBUG',
    5: 'HLT', 6: 'MMIO', 7: 'IRQ_WINDOW_OPEN', 8: 'SHUTDOWN',
    9: 'FAIL_ENTRY', 10: 'INTR', 11: 'SET_TPR', 12: 'TPR_ACCESS',
    17: 'INTERNAL_ERROR', 24: 'SYSTEM_EVENT', 29: 'X86_RDMSR',
    30: 'X86_WRMSR',
}


def kernel_dev(major, minor):
    """Kernel-internal ``dev_t`` (``MKDEV``) of a major/minor pair."""
    return (major << MINORBITS) | minor


def kernel_dev_from_rdev(st_rdev):
    """Kernel ``dev_t`` of a user-space ``st_rdev`` (``os.stat``)."""
    return kernel_dev(os.major(st_rdev), os.minor(st_rdev))


def split_kernel_dev(dev):
    """Return ``(major, minor)`` of a kernel ``dev_t``."""
    return dev >> MINORBITS, dev & MINORMASK


def block_device_name(dev, sysfs='/sys'):
    """Name (``vda``) of a block device from its kernel ``dev_t``.

    :returns: the DEVNAME from sysfs, else ``"major:minor"``.
    """
    major, minor = split_kernel_dev(int(dev))
    label = '%d:%d' % (major, minor)
    try:
        with open(os.path.join(sysfs, 'dev', 'block', label,
                               'uevent')) as handle:
            for line in handle:
                if line.startswith('DEVNAME='):
                    return line.strip().split('=', 1)[1]
    except OSError:
        pass
    return label


def histogram_from_slots(slots):
    """LatencyHistogram from log2 slot counts (trailing zeros trimmed)."""
    counts = [int(c) for c in slots]
    while counts and counts[-1] == 0:
        counts.pop()
    return histogram.LatencyHistogram(tuple(counts))


def slots_delta(current, previous):
    """Per-slot increase of a cumulative histogram since ``previous``.

    A slot that went down (the entry was recreated) counts from zero.
    """
    previous = previous or ()
    result = []
    for index, value in enumerate(current):
        before = previous[index] if index < len(previous) else 0
        result.append(value - before if value >= before else value)
    return tuple(result)


def counter_deltas(current, previous):
    """``{key: increase}`` of cumulative counters; zero increases dropped."""
    result = {}
    for key, value in current.items():
        before = previous.get(key, 0)
        delta = value - before if value >= before else value
        if delta:
            result[key] = delta
    return result


def kvm_exit_reason(event, reason, isa):
    """Readable exit reason, e.g. ``VMX:HLT`` or ``userspace:IO``.

    :param event: event id (:data:`KVM_EVENTS`).
    :param reason: raw exit reason.
    :param isa: 1 VMX, 2 SVM (kvm_exit only).
    """
    if event == 2:
        return 'userspace:%s' % KVM_USERSPACE_EXIT_REASONS.get(
            reason, str(reason))
    arch = KVM_ISA.get(isa, 'isa%d' % isa)
    if arch == 'VMX':
        name = VMX_EXIT_REASONS.get(reason & 0xffff, str(reason & 0xffff))
    elif arch == 'SVM':
        name = SVM_EXIT_REASONS.get(reason, hex(reason))
    else:
        name = str(reason)
    return '%s:%s' % (arch, name)


def kvm_exits(entries):
    """Decode the kvm_exit map into counts.

    Exits are counted from ``kvm:kvm_exit`` when it fired (every exit);
    otherwise from ``kvm:kvm_userspace_exit`` (paravirtual hosts, where
    only exits to qemu are visible), never both, so nothing is counted
    twice.

    :param entries: ``{(tgid, event, reason, isa): (count,)}``.
    :returns: ``(by_pid, by_reason, events)``.
    """
    fired = {event for (_, event, _, _), (count,) in entries.items()
             if count}
    use = 1 if 1 in fired else (2 if 2 in fired else None)
    by_pid = {}
    by_reason = {}
    for (tgid, event, reason, isa), (count,) in entries.items():
        if event != use or not count:
            continue
        by_pid[tgid] = by_pid.get(tgid, 0) + count
        name = kvm_exit_reason(event, reason, isa)
        by_reason[name] = by_reason.get(name, 0) + count
    events = (KVM_EVENTS[use],) if use else ()
    return by_pid, by_reason, events
