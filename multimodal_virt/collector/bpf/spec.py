"""Declarative description of an eBPF probe object: programs and maps.

A probe says what it loads (like an ebpf_exporter config); the loaders
(libbpf, bcc) turn it into attached programs, and map contents come back
as ``{key tuple: value tuple}`` decoded with :mod:`struct` formats, the
same for both loaders.
"""

import dataclasses
import struct

from multimodal_virt import exception

KINDS = ('tp_btf', 'tracepoint', 'raw_tp')


@dataclasses.dataclass(frozen=True)
class Program:
    """One BPF program and the kernel event it attaches to.

    :param name: BPF function name in the C source.
    :param event: ``category:name`` of the tracepoint.
    :param kind: ``tp_btf`` (BTF-typed raw tracepoint, no tracefs),
        ``tracepoint`` (classic, needs tracefs) or ``raw_tp``.
    :param required: if False the program is skipped when the kernel does
        not offer the event or refuses to attach it.
    :param attach: if False the program is loaded but never attached: it
        is driven with ``BPF_PROG_TEST_RUN`` (``raw_tp`` synthetic-event
        programs for tests and benchmarks).
    """

    name: str
    event: str
    kind: str
    required: bool = True
    attach: bool = True

    def __post_init__(self):
        if self.kind not in KINDS:
            raise exception.ProbeError(
                'program %s: kind must be one of %s, got %r'
                % (self.name, ', '.join(KINDS), self.kind))
        if self.event.count(':') != 1:
            raise exception.ProbeError(
                'program %s: event must be "category:name", got %r'
                % (self.name, self.event))

    @property
    def category(self):
        return self.event.split(':', 1)[0]

    @property
    def tracepoint(self):
        return self.event.split(':', 1)[1]


@dataclasses.dataclass(frozen=True)
class Map:
    """A BPF map and the :mod:`struct` layout of its keys and values.

    :param name: map name in the C source.
    :param key: struct format of a key (native byte order), e.g. ``'I'``.
    :param value: struct format of a value, e.g. ``'32Q'``.
    :param size_option: ``[multimodal_virt_probes]`` option that sets its
        ``max_entries`` (``None``: fixed in the source).
    :param evicts: an LRU table of start times: when full it evicts the
        oldest entry, and its drop counter counts completions that found no
        start time, which also counts events in flight when the programs
        attached (a few in the first window).
    """

    name: str
    key: str
    value: str
    size_option: str = None
    evicts: bool = False

    def pack_key(self, key):
        return struct.pack('=' + self.key, *key)

    def unpack_key(self, raw):
        return struct.unpack('=' + self.key, raw)

    def unpack_value(self, raw):
        return struct.unpack('=' + self.value, raw)


#: The dropped-events counters of an object (``MMV_DROPS_MAP``).
DROPS_MAP = Map('drops', 'I', 'Q')


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """What one probe loads.

    :param source: base name of ``<source>.bpf.c`` / ``<source>.bcc.c``.
    :param programs: tuple of :class:`Program`.
    :param maps: tuple of :class:`Map` that user space reads or sizes.
    :param rodata: ``{global name: struct format}`` of the ``const
        volatile`` settings.
    :param drops: names of the bounded maps, in the slot order of the
        object's ``drops`` array (``MMV_DROPS_MAP``): slot ``i`` counts the
        events lost because map ``drops[i]`` was full.
    """

    source: str
    programs: tuple
    maps: tuple
    rodata: dict = dataclasses.field(default_factory=dict)
    drops: tuple = ()

    def map(self, name):
        for item in self.maps:
            if item.name == name:
                return item
        if name == DROPS_MAP.name and self.drops:
            return DROPS_MAP
        raise exception.ProbeError('probe %s has no map %r'
                                   % (self.source, name))


def pack_rodata(spec, values):
    """Pack ``{name: value}`` settings with the formats of ``spec.rodata``.

    A list value fills the start of an array global; the rest stays zero.

    :returns: ``{name: bytes}``.
    :raises ProbeError: for an unknown setting or a value that does not fit.
    """
    packed = {}
    for name, value in values.items():
        if name not in spec.rodata:
            raise exception.ProbeError(
                'probe %s has no setting %r (known: %s)'
                % (spec.source, name, ', '.join(sorted(spec.rodata))))
        fmt = spec.rodata[name]
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        try:
            packed[name] = struct.pack('=%d%s' % (len(items), fmt), *items)
        except struct.error as err:
            raise exception.ProbeError(
                'probe %s setting %s=%r does not fit format %r: %s'
                % (spec.source, name, value, fmt, err))
    return packed
