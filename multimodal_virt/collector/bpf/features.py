"""Probe kernel features (never versions): which events can be attached."""

import os

from multimodal_virt.collector.bpf import build

TRACEFS_ROOTS = ('/sys/kernel/tracing', '/sys/kernel/debug/tracing')


def tracefs_root():
    """Return the mounted tracefs directory, or ``None``."""
    for root in TRACEFS_ROOTS:
        if os.path.isdir(os.path.join(root, 'events')):
            return root
    return None


def tracepoint_exists(category, name):
    """True if tracefs offers classic tracepoint ``category:name``."""
    root = tracefs_root()
    return bool(root) and os.path.exists(
        os.path.join(root, 'events', category, name, 'id'))


def has_kernel_btf():
    """True if the kernel exposes its BTF (needed for CO-RE and tp_btf)."""
    return os.path.exists(build.VMLINUX_BTF)


def kernel_headers_dir():
    """Return ``/lib/modules/<release>/build`` if it exists, else None."""
    path = os.path.join('/lib/modules', os.uname().release, 'build')
    return path if os.path.isdir(path) else None
