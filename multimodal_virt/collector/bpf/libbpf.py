"""Load CO-RE objects with libbpf.so.1 through ctypes.

Settings are written into the ``.rodata`` map's initial value (offsets from
the object's BTF ``DATASEC``) before ``bpf_object__load``; map sizes are set
with ``bpf_map__set_max_entries``. Programs whose event the kernel lacks
are not loaded (``bpf_program__set_autoload``); optional programs that fail
to attach are reported and skipped.
"""

import collections
import ctypes
import errno
import functools
import glob
import os

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.collector.bpf import loaded

LOG = logging.getLogger(__name__)

LIBBPF = 'libbpf.so.1'
#: libbpf_print_level -> logging level.
LIBBPF_LOG_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
BTF_KIND_STRUCT = 4
BTF_KIND_TYPEDEF = 8
#: Kernel BTF files: vmlinux and one per loaded module with BTF.
KERNEL_BTF_DIR = '/sys/kernel/btf'
BTF_KIND_DATASEC = 15
_LOG_LINES = 200
_P = ctypes.c_void_p


class _BtfType(ctypes.Structure):
    _fields_ = [('name_off', ctypes.c_uint32), ('info', ctypes.c_uint32),
                ('size', ctypes.c_uint32)]


class _BtfMember(ctypes.Structure):
    _fields_ = [('name_off', ctypes.c_uint32), ('type', ctypes.c_uint32),
                ('offset', ctypes.c_uint32)]


class _VarSecinfo(ctypes.Structure):
    _fields_ = [('type', ctypes.c_uint32), ('offset', ctypes.c_uint32),
                ('size', ctypes.c_uint32)]


_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                             _P)

_SIGNATURES = {
    'bpf_object__open_file': (_P, [ctypes.c_char_p, _P]),
    'bpf_object__load': (ctypes.c_int, [_P]),
    'bpf_object__close': (None, [_P]),
    'bpf_object__btf': (_P, [_P]),
    'bpf_object__next_map': (_P, [_P, _P]),
    'bpf_object__find_map_by_name': (_P, [_P, ctypes.c_char_p]),
    'bpf_object__find_program_by_name': (_P, [_P, ctypes.c_char_p]),
    'bpf_map__name': (ctypes.c_char_p, [_P]),
    'bpf_map__is_internal': (ctypes.c_bool, [_P]),
    'bpf_map__initial_value': (_P, [_P, ctypes.POINTER(ctypes.c_size_t)]),
    'bpf_map__set_initial_value': (ctypes.c_int,
                                   [_P, _P, ctypes.c_size_t]),
    'bpf_map__set_max_entries': (ctypes.c_int, [_P, ctypes.c_uint32]),
    'bpf_map__fd': (ctypes.c_int, [_P]),
    'bpf_map__key_size': (ctypes.c_uint32, [_P]),
    'bpf_map__value_size': (ctypes.c_uint32, [_P]),
    'bpf_map__max_entries': (ctypes.c_uint32, [_P]),
    'bpf_map_lookup_batch': (ctypes.c_int, [ctypes.c_int, _P, _P, _P, _P,
                                            ctypes.POINTER(ctypes.c_uint32),
                                            _P]),
    'bpf_map_update_elem': (ctypes.c_int, [ctypes.c_int, _P, _P,
                                           ctypes.c_uint64]),
    'bpf_program__set_autoload': (ctypes.c_int, [_P, ctypes.c_bool]),
    'bpf_object__next_program': (_P, [_P, _P]),
    'bpf_program__name': (ctypes.c_char_p, [_P]),
    'bpf_prog_test_run_opts': (ctypes.c_int, [ctypes.c_int, _P]),
    'bpf_program__attach': (_P, [_P]),
    'bpf_program__fd': (ctypes.c_int, [_P]),
    'bpf_link__destroy': (ctypes.c_int, [_P]),
    'bpf_map_get_next_key': (ctypes.c_int, [ctypes.c_int, _P, _P]),
    'bpf_map_lookup_elem': (ctypes.c_int, [ctypes.c_int, _P, _P]),
    'bpf_map_lookup_and_delete_elem': (ctypes.c_int,
                                       [ctypes.c_int, _P, _P]),
    'bpf_map_delete_elem': (ctypes.c_int, [ctypes.c_int, _P]),
    'bpf_obj_get_info_by_fd': (ctypes.c_int,
                               [ctypes.c_int, _P,
                                ctypes.POINTER(ctypes.c_uint32)]),
    'btf__find_by_name_kind': (ctypes.c_int32,
                               [_P, ctypes.c_char_p, ctypes.c_uint32]),
    'btf__type_by_id': (_P, [_P, ctypes.c_uint32]),
    'btf__name_by_offset': (ctypes.c_char_p, [_P, ctypes.c_uint32]),
    'btf__load_vmlinux_btf': (_P, []),
    'btf__parse_split': (_P, [ctypes.c_char_p, _P]),
    'btf__free': (None, [_P]),
    'libbpf_set_print': (_P, [_PRINT_FN]),
}


class _TestRunOpts(ctypes.Structure):
    """``struct bpf_test_run_opts`` (libbpf 1.x, bpf/bpf.h)."""

    _fields_ = [('sz', ctypes.c_size_t), ('data_in', _P),
                ('data_out', _P), ('data_size_in', ctypes.c_uint32),
                ('data_size_out', ctypes.c_uint32), ('ctx_in', _P),
                ('ctx_out', _P), ('ctx_size_in', ctypes.c_uint32),
                ('ctx_size_out', ctypes.c_uint32),
                ('retval', ctypes.c_uint32), ('repeat', ctypes.c_int),
                ('duration', ctypes.c_uint32), ('flags', ctypes.c_uint32),
                ('cpu', ctypes.c_uint32), ('batch_size', ctypes.c_uint32)]


# struct bpf_prog_info (uapi linux/bpf.h): offsets of run_time_ns, run_cnt,
# recursion_misses.
_PROG_INFO_RUN_TIME_NS = 192
_PROG_INFO_RUN_CNT = 200
_PROG_INFO_RECURSION_MISSES = 208
_PROG_INFO_SIZE = 256
_NR_BPF = 321              # x86-64
_BPF_ENABLE_STATS = 32
_BPF_STATS_RUN_TIME = 0


class Libbpf(object):
    """Typed handle on libbpf.so.1 with libbpf's log captured.

    One per process (see :func:`library`): libbpf's print callback is
    process-wide and must outlive every call.
    """

    def __init__(self, path=LIBBPF):
        try:
            self.lib = ctypes.CDLL(path, use_errno=True)
            self.libc = ctypes.CDLL(None, use_errno=True)
        except OSError as err:
            raise exception.BPFUnavailable('cannot load %s: %s'
                                           % (path, err))
        for name, (restype, argtypes) in _SIGNATURES.items():
            func = getattr(self.lib, name)
            func.restype = restype
            func.argtypes = argtypes
        self.libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                        ctypes.c_char_p, _P]
        self.messages = collections.deque(maxlen=_LOG_LINES)
        self._print = _PRINT_FN(self._on_print)
        self.claim_print()

    def claim_print(self):
        """Make our callback libbpf's print function (again).

        The print function is process-wide, and Debian's libbcc links the
        same libbpf.so.1 and installs its own when bcc loads a program, so
        every load claims it back before calling libbpf.
        """
        self.lib.libbpf_set_print(self._print)

    def _on_print(self, level, fmt, args):
        """libbpf's print callback: to oslo.log, and kept for errors.

        libbpf levels: 0 warning, 1 info, 2 debug. Its debug output (the
        verifier log, relocations) goes to DEBUG; the last messages are
        also kept so a load error can quote them.
        """
        buf = ctypes.create_string_buffer(1024)
        self.libc.vsnprintf(buf, len(buf), fmt, args)
        text = buf.value.decode(errors='replace').rstrip()
        self.messages.append(text)
        # libbpf's messages start with "libbpf: " themselves.
        LOG.log(LIBBPF_LOG_LEVELS.get(level, logging.DEBUG), '%s', text)
        return 0

    def __getattr__(self, name):
        return getattr(self.lib, name)

    def take_log(self):
        """Return and clear libbpf's messages since the last call."""
        text = '\n'.join(self.messages)
        self.messages.clear()
        return text


@functools.lru_cache(maxsize=None)
def library():
    """Return the process-wide :class:`Libbpf` (loaded on first use)."""
    return Libbpf()


def _check(ret, what):
    if ret is not None and ret < 0:
        code = -ret
        raise exception.ProbeError('%s: %s' % (what, os.strerror(code)))


def _search_kernel_btf(visit, btf_dir=KERNEL_BTF_DIR):
    """First non-None ``visit(btf)`` over the kernel's BTF: vmlinux, then
    each module's file (split on vmlinux).

    Module BTF is read from its file (world-readable), not through the BPF
    syscall, which enumerates BTF objects only with CAP_SYS_ADMIN.
    """
    lib = library()
    base = lib.btf__load_vmlinux_btf()
    if not base:
        return None
    try:
        found = visit(base)
        if found is not None:
            return found
        for path in sorted(glob.glob(os.path.join(btf_dir, '*'))):
            if os.path.basename(path) == 'vmlinux':
                continue
            btf = lib.btf__parse_split(path.encode(), base)
            if not btf:
                continue
            try:
                found = visit(btf)
            finally:
                lib.btf__free(btf)
            if found is not None:
                return found
        return None
    finally:
        lib.btf__free(base)


def btf_has_typedef(name):
    """True if the kernel's or a loaded module's BTF has typedef ``name``
    (e.g. ``btf_trace_X``: the kernel offers tracepoint X)."""
    lib = library()
    return bool(_search_kernel_btf(
        lambda btf: True if lib.btf__find_by_name_kind(
            btf, name.encode(), BTF_KIND_TYPEDEF) > 0 else None))


def btf_member_offset(struct, member):
    """Byte offset of ``struct.member`` in the kernel's or a module's BTF.

    For the loader to set the offsets of module types as settings, where a
    CO-RE relocation would need CAP_SYS_ADMIN to find the module's BTF.

    :returns: the offset, or ``None`` if no BTF has that struct and member
        (or the member is a bitfield).
    """
    lib = library()

    def visit(btf):
        type_id = lib.btf__find_by_name_kind(btf, struct.encode(),
                                             BTF_KIND_STRUCT)
        if type_id <= 0:
            return None
        address = lib.btf__type_by_id(btf, type_id)
        header = _BtfType.from_address(address)
        members = (_BtfMember * (header.info & 0xffff)).from_address(
            address + ctypes.sizeof(_BtfType))
        kind_flag = header.info >> 31
        for item in members:
            name = lib.btf__name_by_offset(btf, item.name_off)
            if name is None or name.decode() != member:
                continue
            bits = item.offset & 0xffffff if kind_flag else item.offset
            if kind_flag and item.offset >> 24:
                return None  # a bitfield
            return bits // 8 if bits % 8 == 0 else None
        return None

    return _search_kernel_btf(visit)


def _prog_info(fd):
    info = (ctypes.c_uint8 * _PROG_INFO_SIZE)()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    _check(library().bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size)),
           'bpf_obj_get_info_by_fd')
    return bytes(info)


def prog_id(fd):
    """Return the kernel id of the BPF program behind ``fd``."""
    return int.from_bytes(_prog_info(fd)[4:8], 'little')


def prog_run_stats(fd):
    """``(run_time_ns, run_cnt)`` of the program behind ``fd``.

    Counted only while BPF statistics are on (:func:`enable_stats`).
    """
    info = _prog_info(fd)
    return (int.from_bytes(info[_PROG_INFO_RUN_TIME_NS:
                                _PROG_INFO_RUN_TIME_NS + 8], 'little'),
            int.from_bytes(info[_PROG_INFO_RUN_CNT:_PROG_INFO_RUN_CNT + 8],
                           'little'))


def prog_recursion_misses(fd):
    """Times the kernel skipped the program behind ``fd`` because a BPF
    program was already running on that CPU (an event nested in an
    interrupt): counted whether or not statistics are on."""
    info = _prog_info(fd)
    return int.from_bytes(info[_PROG_INFO_RECURSION_MISSES:
                               _PROG_INFO_RECURSION_MISSES + 8], 'little')


def test_run(fd, args):
    """Run the program behind ``fd`` once with ``BPF_PROG_TEST_RUN``.

    :param args: the raw tracepoint arguments, as 64-bit integers.
    :returns: the program's return value.
    """
    ctx = (ctypes.c_uint64 * len(args))(*args)
    opts = _TestRunOpts(sz=ctypes.sizeof(_TestRunOpts),
                        ctx_in=ctypes.cast(ctx, _P),
                        ctx_size_in=ctypes.sizeof(ctx))
    _check(library().bpf_prog_test_run_opts(fd, ctypes.byref(opts)),
           'BPF_PROG_TEST_RUN')
    return opts.retval


def enable_stats():
    """Turn on BPF run-time statistics; return the fd that holds them on.

    ``BPF_ENABLE_STATS``: statistics stay on until the fd is closed, so
    nothing is left behind (unlike the ``kernel.bpf_stats_enabled`` sysctl).
    """
    libc = library().libc
    attr = (ctypes.c_uint32 * 4)(_BPF_STATS_RUN_TIME, 0, 0, 0)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(_NR_BPF), ctypes.c_long(_BPF_ENABLE_STATS),
                      attr, ctypes.c_uint(ctypes.sizeof(attr)))
    if fd < 0:
        raise exception.ProbeError('BPF_ENABLE_STATS: %s'
                                   % os.strerror(ctypes.get_errno()))
    return fd


class LoadedObject(loaded.LoadedPrograms):
    """An opened, loaded and attached BPF object.

    :param path: compiled ``.bpf.o``.
    :param spec: :class:`~multimodal_virt.collector.bpf.spec.ProbeSpec`.
    :param rodata: ``{global name: packed bytes}`` (``spec.pack_rodata``).
    :param max_entries: ``{map name: max_entries}``.
    :param available: callable(Program) -> bool: does the kernel offer
        the program's event.
    """

    def __init__(self, path, spec, rodata, max_entries, available):
        self.spec = spec
        self.events = ()
        self.skipped = {}
        self._lib = library()
        self._links = []
        self._obj = None
        self._lib.claim_print()
        self._lib.take_log()
        obj = self._lib.bpf_object__open_file(path.encode(), None)
        if not obj:
            raise exception.ProbeError(
                'cannot open BPF object %s: %s'
                % (path, os.strerror(ctypes.get_errno())))
        self._obj = obj
        try:
            self._prepare(rodata, max_entries, available)
            ret = self._lib.bpf_object__load(obj)
            if ret < 0:
                raise self._load_error(path, -ret)
            self._attach()
        except Exception:
            self.close()
            raise

    def _load_error(self, path, code):
        log = self._lib.take_log()
        cls = exception.BPFUnavailable if code in (
            errno.EPERM, errno.EACCES) else exception.ProbeError
        return cls('loading %s failed: %s\n%s'
                   % (path, os.strerror(code), log[-4000:]))

    def _prepare(self, rodata, max_entries, available):
        wanted = {program.name for program in self.spec.programs}
        handle = self._lib.bpf_object__next_program(self._obj, None)
        while handle:
            if self._lib.bpf_program__name(handle).decode() not in wanted:
                # Another spec of the same object (e.g. synthetic-event
                # programs) loads these; this one does not.
                self._lib.bpf_program__set_autoload(handle, False)
            handle = self._lib.bpf_object__next_program(self._obj, handle)
        for program in self.spec.programs:
            handle = self._program(program.name)
            if not program.attach or available(program):
                continue
            if program.required:
                raise exception.ProbeError(
                    'kernel does not offer %s, needed by %s'
                    % (program.event, self.spec.source))
            self._lib.bpf_program__set_autoload(handle, False)
            self.skipped[program.event] = 'event not offered by the kernel'
        for name, size in max_entries.items():
            _check(self._lib.bpf_map__set_max_entries(self._map(name), size),
                   'setting max_entries of map %s' % name)
        if rodata:
            self._set_rodata(rodata)

    def _program(self, name):
        handle = self._lib.bpf_object__find_program_by_name(self._obj,
                                                            name.encode())
        if not handle:
            raise exception.ProbeError('BPF object %s has no program %s'
                                       % (self.spec.source, name))
        return handle

    def _map(self, name):
        handle = self._lib.bpf_object__find_map_by_name(self._obj,
                                                        name.encode())
        if not handle:
            raise exception.ProbeError('BPF object %s has no map %s'
                                       % (self.spec.source, name))
        return handle

    def _rodata_layout(self):
        """Return ``{var name: (offset, size)}`` of the .rodata DATASEC."""
        lib = self._lib
        btf = lib.bpf_object__btf(self._obj)
        sec_id = lib.btf__find_by_name_kind(btf, b'.rodata',
                                            BTF_KIND_DATASEC)
        if sec_id <= 0:
            return {}
        sec = _BtfType.from_address(lib.btf__type_by_id(btf, sec_id))
        vlen = sec.info & 0xffff
        infos = (_VarSecinfo * vlen).from_address(
            lib.btf__type_by_id(btf, sec_id) + ctypes.sizeof(_BtfType))
        layout = {}
        for info in infos:
            var = _BtfType.from_address(lib.btf__type_by_id(btf, info.type))
            name = lib.btf__name_by_offset(btf, var.name_off).decode()
            layout[name] = (info.offset, info.size)
        return layout

    def _set_rodata(self, rodata):
        rodata_map = None
        handle = self._lib.bpf_object__next_map(self._obj, None)
        while handle:
            name = self._lib.bpf_map__name(handle).decode()
            if (self._lib.bpf_map__is_internal(handle)
                    and name.endswith('.rodata')):
                rodata_map = handle
                break
            handle = self._lib.bpf_object__next_map(self._obj, handle)
        if rodata_map is None:
            raise exception.ProbeError('BPF object %s has no .rodata'
                                       % self.spec.source)
        size = ctypes.c_size_t()
        address = self._lib.bpf_map__initial_value(rodata_map,
                                                   ctypes.byref(size))
        data = bytearray(ctypes.string_at(address, size.value))
        layout = self._rodata_layout()
        for name, packed in rodata.items():
            if name not in layout:
                raise exception.ProbeError('BPF object %s has no const '
                                           'volatile %s' % (self.spec.source,
                                                            name))
            offset, var_size = layout[name]
            if len(packed) > var_size:
                raise exception.ProbeError(
                    'setting %s is %d bytes, the global holds %d'
                    % (name, len(packed), var_size))
            data[offset:offset + len(packed)] = packed
        buf = (ctypes.c_char * len(data)).from_buffer(data)
        _check(self._lib.bpf_map__set_initial_value(rodata_map, buf,
                                                    len(data)),
               'bpf_map__set_initial_value')

    def _attach(self):
        events = []
        for program in self.spec.programs:
            if program.event in self.skipped or not program.attach:
                continue
            link = self._lib.bpf_program__attach(self._program(program.name))
            if not link:
                reason = os.strerror(ctypes.get_errno())
                if program.required:
                    raise exception.ProbeError(
                        'attaching %s to %s failed: %s\n%s'
                        % (program.name, program.event, reason,
                           self._lib.take_log()[-2000:]))
                LOG.warning('Optional program %(prog)s not attached to '
                            '%(event)s: %(reason)s',
                            {'prog': program.name, 'event': program.event,
                             'reason': reason})
                self.skipped[program.event] = reason
                continue
            self._links.append(link)
            events.append(program.event)
        self.events = tuple(events)

    def prog_ids(self):
        """Kernel ids of the loaded programs (for checks and dumps)."""
        ids = []
        for program in self.spec.programs:
            fd = self._lib.bpf_program__fd(self._program(program.name))
            if fd >= 0:
                ids.append(prog_id(fd))
        return ids

    def recursion_misses(self):
        """Sum of the attached programs' recursion misses."""
        total = 0
        for program in self.spec.programs:
            if program.event in self.skipped or not program.attach:
                continue
            fd = self._lib.bpf_program__fd(self._program(program.name))
            if fd >= 0:
                total += prog_recursion_misses(fd)
        return total

    def program_fd(self, name):
        """fd of the loaded program ``name`` (a program of the spec)."""
        fd = self._lib.bpf_program__fd(self._program(name))
        if fd < 0:
            raise exception.ProbeError('program %s is not loaded' % name)
        return fd

    def test_run(self, name, args):
        """Run program ``name`` once with ``BPF_PROG_TEST_RUN``.

        :param args: the raw tracepoint arguments, as 64-bit integers.
        :returns: the program's return value.
        """
        return test_run(self.program_fd(name), args)

    def run_stats(self, name):
        """``(run_time_ns, run_cnt)`` of program ``name`` (bpf_stats)."""
        return prog_run_stats(self.program_fd(name))

    def _entries(self, name, delete):
        spec_map = self.spec.map(name)
        handle = self._map(name)
        fd = self._lib.bpf_map__fd(handle)
        key_size = self._lib.bpf_map__key_size(handle)
        value_size = self._lib.bpf_map__value_size(handle)
        keys = []
        prev = None
        key = ctypes.create_string_buffer(key_size)
        while self._lib.bpf_map_get_next_key(fd, prev, key) == 0:
            keys.append(key.raw)
            prev = ctypes.create_string_buffer(key.raw, key_size)
        result = {}
        value = ctypes.create_string_buffer(value_size)
        for raw in keys:
            kbuf = ctypes.create_string_buffer(raw, key_size)
            if delete:
                ret = self._lib.bpf_map_lookup_and_delete_elem(fd, kbuf,
                                                               value)
                if ret == -errno.EINVAL or ret == -errno.ENOTSUP:
                    ret = self._lib.bpf_map_lookup_elem(fd, kbuf, value)
                    self._lib.bpf_map_delete_elem(fd, kbuf)
            else:
                ret = self._lib.bpf_map_lookup_elem(fd, kbuf, value)
            if ret == 0:
                result[spec_map.unpack_key(raw)] = spec_map.unpack_value(
                    value.raw)
        return result

    def read_array(self, name):
        """The values of ARRAY map ``name``, concatenated in index order.

        One ``BPF_MAP_LOOKUP_BATCH`` per call for the whole table, where
        :meth:`read` makes two system calls per entry.
        """
        handle = self._map(name)
        fd = self._lib.bpf_map__fd(handle)
        entries = self._lib.bpf_map__max_entries(handle)
        value_size = self._lib.bpf_map__value_size(handle)
        keys = (ctypes.c_uint32 * entries)()
        values = ctypes.create_string_buffer(entries * value_size)
        out_batch = ctypes.c_uint32()
        count = ctypes.c_uint32(entries)
        ret = self._lib.bpf_map_lookup_batch(fd, None,
                                             ctypes.byref(out_batch), keys,
                                             values, ctypes.byref(count),
                                             None)
        if ret < 0 and ret != -errno.ENOENT:
            raise exception.ProbeError('batch read of map %s: %s'
                                       % (name, os.strerror(-ret)))
        return values.raw[:count.value * value_size]

    def clear_slot(self, name, index):
        """Zero the value at ``index`` of ARRAY map ``name``."""
        handle = self._map(name)
        key = ctypes.c_uint32(index)
        zeros = ctypes.create_string_buffer(
            self._lib.bpf_map__value_size(handle))
        _check(self._lib.bpf_map_update_elem(
            self._lib.bpf_map__fd(handle), ctypes.byref(key), zeros, 0),
            'clearing slot %d of map %s' % (index, name))

    def _delete(self, name, raw_key):
        fd = self._lib.bpf_map__fd(self._map(name))
        key = ctypes.create_string_buffer(raw_key, len(raw_key))
        self._lib.bpf_map_delete_elem(fd, key)

    def close(self):
        """Destroy links and close the object; safe to call twice."""
        while self._links:
            self._lib.bpf_link__destroy(self._links.pop())
        if self._obj:
            self._lib.bpf_object__close(self._obj)
            self._obj = None
