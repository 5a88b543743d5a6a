"""Load the probes with bcc (for kernels without BTF but with headers).

bcc compiles ``<source>.bcc.c`` at load time against the kernel headers,
so settings and map sizes go in as ``-D`` macros. It uses the same classic
tracepoints as the CO-RE objects (bcc cannot attach kprobes where the
kernel has none); for ``tp_btf`` programs the bcc source uses the classic
tracepoint of the same event. Map contents come back in the same
``{key tuple: value tuple}`` form as the libbpf loader.

Distributions install bcc's Python module for the system Python only
(Debian's ``python3-bpfcc`` in ``/usr/lib/python3/dist-packages``): the
directories of ``[multimodal_virt_bcc] python_path`` are added to
``sys.path`` only when bcc is first imported here.
"""

import importlib
import os
import pathlib
import re
import sys

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.collector.bpf import features
from multimodal_virt.collector.bpf import loaded

LOG = logging.getLogger(__name__)

SOURCE_DIR = pathlib.Path(__file__).resolve().parent


def import_bcc(python_path=()):
    """Import and return the ``bcc`` module.

    :param python_path: directories to add to ``sys.path`` (in order) when
        bcc is not importable from the collector's own environment
        (``[multimodal_virt_bcc] python_path``).
    :raises BPFUnavailable: if bcc is not installed.
    """
    try:
        return importlib.import_module('bcc')
    except ImportError:
        pass
    for directory in python_path:
        if directory not in sys.path:
            sys.path.append(directory)
    try:
        return importlib.import_module('bcc')
    except ImportError as err:
        raise exception.BPFUnavailable(
            'bcc is not importable (install python3-bpfcc): %s' % err)
    except OSError as err:
        raise exception.BPFUnavailable('bcc cannot load libbcc: %s' % err)


def unavailable_reason(python_path=()):
    """Return why bcc cannot be used here, or ``None`` if it can.

    :param python_path: as for :func:`import_bcc`.
    """
    if features.kernel_headers_dir() is None:
        return ('bcc needs kernel headers in /lib/modules/%s/build'
                % os.uname().release)
    try:
        import_bcc(python_path)
    except exception.BPFUnavailable as err:
        return str(err)
    return None


def headers_release():
    """Kernel release of the headers bcc compiles against, or ``None``."""
    build = features.kernel_headers_dir()
    if build is None:
        return None
    try:
        with open(os.path.join(build, 'include', 'generated',
                               'utsrelease.h')) as handle:
            text = handle.read()
    except OSError:
        return None
    match = re.search(r'UTS_RELEASE\s+"([^"]+)"', text)
    return match.group(1) if match else None


def _macro(name):
    return 'MMV_' + name.upper()


def cflags(spec, rodata, max_entries, offered):
    """Return the ``-D`` flags for a probe's bcc source.

    :param spec: the probe's ``ProbeSpec``.
    :param rodata: ``{setting: value or list}`` (unpacked values).
    :param max_entries: ``{map name: size}``.
    :param offered: events (``cat:name``) the kernel offers.
    """
    flags = ['-I%s' % SOURCE_DIR]
    for name, value in sorted(rodata.items()):
        if isinstance(value, (list, tuple)):
            items = [int(v) for v in value] or [0]
            flags.append('-D%s={%s}' % (_macro(name),
                                        ','.join('%du' % v for v in items)))
        else:
            flags.append('-D%s=%du' % (_macro(name), int(value)))
    for name, size in sorted(max_entries.items()):
        flags.append('-D%s_MAX=%d' % (_macro(name), int(size)))
    for program in spec.programs:
        if program.event in offered:
            flags.append('-D%s_HAVE=1' % _macro(program.name))
    return flags


class LoadedBcc(loaded.LoadedPrograms):
    """A bcc ``BPF`` object built and attached from a probe spec.

    :param spec: ``ProbeSpec``; ``<spec.source>.bcc.c`` is compiled.
    :param rodata: ``{setting: value}``.
    :param max_entries: ``{map name: size}``.
    :param python_path: as for :func:`import_bcc`.
    """

    def __init__(self, spec, rodata, max_entries, python_path=()):
        bcc = import_bcc(python_path)
        self.spec = spec
        self.skipped = {}
        offered = set()
        for program in spec.programs:
            if features.tracepoint_exists(program.category,
                                          program.tracepoint):
                offered.add(program.event)
            elif program.required:
                raise exception.ProbeError(
                    'kernel does not offer tracepoint %s, needed by %s'
                    % (program.event, spec.source))
            else:
                self.skipped[program.event] = 'event not offered by kernel'
        path = SOURCE_DIR / (spec.source + '.bcc.c')
        try:
            text = path.read_text()
        except OSError as err:
            raise exception.ProbeError('no bcc source for %s: %s'
                                       % (spec.source, err))
        try:
            self._bpf = bcc.BPF(text=text, cflags=cflags(
                spec, rodata, max_entries, offered))
        except Exception as err:  # bcc raises bare Exception on failure
            raise exception.ProbeError('bcc could not load %s: %s'
                                       % (path.name, err))
        # TRACEPOINT_PROBE programs attach when the BPF object is built.
        self.events = tuple(p.event for p in spec.programs
                            if p.event in offered)

    def prog_ids(self):
        """bcc keeps no program ids we can read cheaply: empty."""
        return []

    def recursion_misses(self):
        """Sum of the loaded programs' recursion misses (read through
        libbpf's prog info; ``None`` without libbpf)."""
        try:
            from multimodal_virt.collector.bpf import libbpf
            return sum(libbpf.prog_recursion_misses(function.fd)
                       for function in self._bpf.funcs.values())
        except (exception.BPFUnavailable, exception.ProbeError):
            return None

    def _entries(self, name, delete):
        spec_map = self.spec.map(name)
        table = self._bpf.get_table(name)
        result = {}
        for key, value in list(table.items()):
            result[spec_map.unpack_key(bytes(key))] = spec_map.unpack_value(
                bytes(value))
            if delete:
                try:
                    del table[key]
                except KeyError:
                    pass
        return result

    def _delete(self, name, raw_key):
        table = self._bpf.get_table(name)
        key = table.Key.from_buffer_copy(raw_key)
        try:
            del table[key]
        except KeyError:
            pass

    def close(self):
        """Detach and free everything; safe to call twice."""
        if self._bpf is not None:
            self._bpf.cleanup()
            self._bpf = None
