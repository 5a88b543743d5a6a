"""Choose and drive an eBPF loader: libbpf (CO-RE) or bcc.

``auto`` probes the host: libbpf when the kernel exposes BTF and libbpf,
clang and bpftool are present; otherwise bcc when kernel headers and
python3-bpfcc are installed. ``[multimodal_virt_probes] backend`` forces
one. Each backend receives its own option group (``[multimodal_virt_libbpf]``,
``[multimodal_virt_bcc]``). Both loaders return objects with ``events``,
``skipped``, ``read``, ``pop``, ``prog_ids`` and ``close``.
"""

import shutil

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.collector.bpf import build
from multimodal_virt.collector.bpf import features
from multimodal_virt.collector.bpf import spec as bpf_spec

LOG = logging.getLogger(__name__)

BACKENDS = ('libbpf', 'bcc')


class HostProbe(object):
    """What the host offers; each method returns ``None`` or a reason.

    :param conf: ConfigOpts with the backends' groups registered.
    """

    def __init__(self, conf):
        self.conf = conf

    def libbpf(self):
        group = self.conf.multimodal_virt_libbpf
        if not features.has_kernel_btf():
            return 'kernel has no BTF (%s missing)' % build.VMLINUX_BTF
        if not build.prebuilt(group.bpf_build_dir):
            # Objects built at install time (--build-bpf) need no compiler.
            for tool in (group.clang, group.bpftool):
                if shutil.which(tool) is None:
                    return ('%s is not installed and the CO-RE objects were '
                            'not built at install time (run '
                            'multimodal-virt-collector --build-bpf)' % tool)
        from multimodal_virt.collector.bpf import libbpf
        try:
            libbpf.library()
        except exception.BPFUnavailable as err:
            return str(err)
        return None

    def bcc(self):
        from multimodal_virt.collector.bpf import bcc_backend
        return bcc_backend.unavailable_reason(
            self.conf.multimodal_virt_bcc.python_path)


def select(choice, host):
    """Return the backend name to use.

    :param choice: ``auto``, ``libbpf`` or ``bcc``.
    :param host: object with ``libbpf()`` and ``bcc()`` returning ``None``
        when usable, else a reason string (see :class:`HostProbe`).
    :raises BPFUnavailable: naming why each candidate cannot be used.
    """
    if choice not in ('auto',) + BACKENDS:
        raise exception.BPFUnavailable(
            'backend must be auto, libbpf or bcc, got %r' % (choice,))
    candidates = BACKENDS if choice == 'auto' else (choice,)
    reasons = []
    for name in candidates:
        reason = getattr(host, name)()
        if reason is None:
            return name
        reasons.append('%s: %s' % (name, reason))
    raise exception.BPFUnavailable('no usable eBPF backend (%s)'
                                   % '; '.join(reasons))


class LibbpfBackend(object):
    """CO-RE objects built by :mod:`build`, loaded with libbpf.

    :param group: the ``[multimodal_virt_libbpf]`` option group.
    """

    name = 'libbpf'

    def __init__(self, group):
        self.group = group

    @staticmethod
    def offered(program):
        """Does the kernel offer the program's event?

        BTF-typed and raw tracepoints are attached by name: the kernel (or a
        loaded module) offers one when its BTF has ``btf_trace_<name>``; a
        raw tracepoint is also known by tracefs. Classic tracepoints need
        tracefs.
        """
        if program.kind in ('tp_btf', 'raw_tp'):
            from multimodal_virt.collector.bpf import libbpf
            if libbpf.btf_has_typedef('btf_trace_' + program.tracepoint):
                return True
            if program.kind == 'tp_btf':
                return False
        return features.tracepoint_exists(program.category,
                                          program.tracepoint)

    def object_path(self, probe_spec):
        return build.object_path(probe_spec.source, self.group.bpf_build_dir,
                                 self.group.clang, self.group.bpftool)

    def load(self, probe_spec, rodata, max_entries):
        """Build if needed, load, set up and attach; return the object."""
        from multimodal_virt.collector.bpf import libbpf
        path = self.object_path(probe_spec)
        packed = bpf_spec.pack_rodata(probe_spec, rodata)
        return libbpf.LoadedObject(path, probe_spec, packed, max_entries,
                                   self.offered)


class BccBackend(object):
    """bcc: compile ``<source>.bcc.c`` at load time.

    :param group: the ``[multimodal_virt_bcc]`` option group.
    """

    name = 'bcc'

    def __init__(self, group):
        self.group = group

    def load(self, probe_spec, rodata, max_entries):
        """Compile, load and attach; return the object."""
        from multimodal_virt.collector.bpf import bcc_backend
        bpf_spec.pack_rodata(probe_spec, rodata)  # same validation
        return bcc_backend.LoadedBcc(probe_spec, rodata, max_entries,
                                     self.group.python_path)


#: Backend name -> (loader class, name of the option group it receives).
_LOADERS = {'libbpf': (LibbpfBackend, 'multimodal_virt_libbpf'),
            'bcc': (BccBackend, 'multimodal_virt_bcc')}


def get_backend(conf, host=None):
    """Return the loader ``[multimodal_virt_probes] backend`` chooses.

    :param conf: ConfigOpts with the probes' and the backends' groups
        registered; the loader receives its own group only.
    :param host: :class:`HostProbe`-like object (tests inject one).
    """
    name = select(conf.multimodal_virt_probes.backend,
                  host or HostProbe(conf))
    LOG.debug('Using the %s eBPF backend', name)
    loader, group = _LOADERS[name]
    return loader(getattr(conf, group))
