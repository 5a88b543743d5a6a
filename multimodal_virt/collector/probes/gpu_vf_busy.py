"""GPU engine busy per SR-IOV VF from the xe PMU (passthrough VFs).

A guest with a passthrough VF submits GPU work straight to the hardware:
its host never sees an ioctl or a fence for it. Where the PF driver
counts engine activity per function (Linux xe PMU: ``engine-active-ticks``
and ``engine-total-ticks`` with the ``function`` format field; function 0
is the PF, function N the Nth VF), this probe publishes, per VF, the busy
share of its busiest engine over the window::

    busy % = 100 * delta(engine-active-ticks) / delta(engine-total-ticks)

Where no PF exposes such counters, the reading declares nothing observable
(``gpu_observed`` lacks ``gpu_busy``) and a warning says why, once.

The PMU description (``/sys/bus/event_source/devices/xe_*``: ``type``,
``events/``, ``format/``) is parsed, never assumed; counters are opened
with ``perf_event_open`` system-wide on CPU 0 (CAP_PERFMON).
"""

import ctypes
import dataclasses
import os
import re

from oslo_log import log as logging

from multimodal_virt.collector.probes import base

LOG = logging.getLogger(__name__)

PMU_ROOT = '/sys/bus/event_source/devices'
PCI_ROOT = '/sys/bus/pci/devices'
ACTIVE = 'engine-active-ticks'
TOTAL = 'engine-total-ticks'
REQUIRED_FORMATS = ('event', 'gt', 'engine_class', 'engine_instance',
                    'function')
#: DRM_XE_ENGINE_CLASS_* ids (xe_drm.h) probed for counters.
ENGINE_CLASSES = {0: 'render', 1: 'copy', 2: 'video_decode',
                  3: 'video_enhance', 4: 'compute'}
MAX_GT = 2
MAX_INSTANCE = 8
_FORMAT_RE = re.compile(r'^config:(\d+)(?:-(\d+))?$')
_PMU_NAME_RE = re.compile(
    r'^xe_([0-9a-f]{4})_([0-9a-f]{2})_([0-9a-f]{2})\.([0-7])$')

_NR_PERF_EVENT_OPEN = 298      # x86-64
_PERF_FLAG_FD_CLOEXEC = 8
_PERF_ATTR_SIZE = 128          # PERF_ATTR_SIZE_VER7


class PmuError(ValueError):
    """A PMU description that cannot be used (message names the file)."""


def parse_format(text):
    """``(low bit, high bit)`` of a ``format/`` file (``config:44-59``)."""
    match = _FORMAT_RE.match(text.strip())
    if not match:
        raise PmuError('unsupported PMU format %r (expected config:LO-HI)'
                       % text.strip())
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 0 <= low <= high <= 63:
        raise PmuError('PMU format %r is outside a 64-bit config'
                       % text.strip())
    return low, high


def encode(formats, fields):
    """The ``perf_event_attr.config`` of ``fields`` under ``formats``.

    :param formats: ``{field: (low, high)}``.
    :param fields: ``{field: value}``.
    :raises PmuError: for a field the PMU lacks or a value too wide.
    """
    config = 0
    for name, value in fields.items():
        if name not in formats:
            raise PmuError('the PMU has no %r format field' % name)
        low, high = formats[name]
        if not 0 <= value < (1 << (high - low + 1)):
            raise PmuError('%s=%d does not fit config:%d-%d'
                           % (name, value, low, high))
        config |= value << low
    return config


def parse_event(text, formats):
    """Config of an ``events/`` file such as ``event=0x02``."""
    fields = {}
    for term in text.strip().split(','):
        if '=' not in term:
            raise PmuError('unsupported PMU event term %r' % term)
        key, value = term.split('=', 1)
        fields[key.strip()] = int(value.strip(), 0)
    return encode(formats, fields)


def _read(path):
    with open(path) as handle:
        return handle.read()


@dataclasses.dataclass(frozen=True)
class XePmu:
    """One xe PMU with per-function engine counters.

    :param name: PMU name (``xe_0000_03_00.0``).
    :param pf: PCI address of the PF (``0000:03:00.0``).
    :param type: ``perf_event_attr.type`` of the PMU.
    :param formats: ``{field: (low, high)}``.
    :param events: ``{event name: base config}``.
    """

    name: str
    pf: str
    type: int
    formats: dict
    events: dict

    def config(self, event, gt, engine_class, engine_instance, function):
        return self.events[event] | encode(self.formats, {
            'gt': gt, 'engine_class': engine_class,
            'engine_instance': engine_instance, 'function': function})


def describe(path):
    """Parse one PMU directory; ``None`` if it is not a usable xe PMU.

    :raises PmuError: for an xe PMU whose description is malformed.
    """
    match = _PMU_NAME_RE.match(os.path.basename(path))
    if not match:
        return None
    pf = '%s:%s:%s.%s' % match.groups()
    formats = {}
    for name in os.listdir(os.path.join(path, 'format')):
        formats[name] = parse_format(_read(os.path.join(path, 'format',
                                                        name)))
    if any(name not in formats for name in REQUIRED_FORMATS):
        return None
    events = {}
    for name in (ACTIVE, TOTAL):
        event_path = os.path.join(path, 'events', name)
        if not os.path.exists(event_path):
            return None
        events[name] = parse_event(_read(event_path), formats)
    try:
        pmu_type = int(_read(os.path.join(path, 'type')))
    except ValueError:
        raise PmuError('%s/type is not an integer' % path)
    return XePmu(os.path.basename(path), pf, pmu_type, formats, events)


def discover(root=PMU_ROOT):
    """``(pmus, reasons)``: usable xe PMUs, and why others were not."""
    pmus, reasons = [], []
    try:
        names = sorted(os.listdir(root))
    except OSError as err:
        return [], ['cannot list %s: %s' % (root, err)]
    for name in names:
        if not name.startswith('xe_'):
            continue
        try:
            pmu = describe(os.path.join(root, name))
        except (OSError, PmuError) as err:
            reasons.append('%s: %s' % (name, err))
            continue
        if pmu is None:
            reasons.append('%s has no per-function engine counters (%s, '
                           '%s with function=N)' % (name, ACTIVE, TOTAL))
        else:
            pmus.append(pmu)
    return pmus, reasons


def vf_functions(pf, pci_root=PCI_ROOT):
    """``{function number: VF PCI address}``: virtfnN is function N+1."""
    result = {}
    device = os.path.join(pci_root, pf)
    try:
        entries = os.listdir(device)
    except OSError:
        return result
    for entry in entries:
        if entry.startswith('virtfn') and entry[6:].isdigit():
            target = os.path.basename(os.path.realpath(
                os.path.join(device, entry)))
            result[int(entry[6:]) + 1] = target
    return result


def busy_percent(active_delta, total_delta):
    """Busy share in percent, ``None`` when no time elapsed on the engine."""
    if total_delta <= 0 or active_delta < 0:
        return None
    return min(100.0, 100.0 * active_delta / total_delta)


class PerfCounter(object):
    """A system-wide counting perf event on CPU 0 (read as one u64)."""

    def __init__(self, pmu_type, config):
        attr = (ctypes.c_uint8 * _PERF_ATTR_SIZE)()
        ctypes.memmove(attr, ctypes.byref(ctypes.c_uint32(pmu_type)), 4)
        ctypes.memmove(ctypes.byref(attr, 4),
                       ctypes.byref(ctypes.c_uint32(_PERF_ATTR_SIZE)), 4)
        ctypes.memmove(ctypes.byref(attr, 8),
                       ctypes.byref(ctypes.c_uint64(config)), 8)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        fd = libc.syscall(ctypes.c_long(_NR_PERF_EVENT_OPEN), attr,
                          ctypes.c_int(-1), ctypes.c_int(0),
                          ctypes.c_int(-1),
                          ctypes.c_ulong(_PERF_FLAG_FD_CLOEXEC))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd = fd

    def read(self):
        return int.from_bytes(os.read(self.fd, 8), 'little')

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class GpuVfBusyProbe(base.Probe):
    """Engine busy per passthrough VF, or "not observable".

    Enable with ``[multimodal_virt_collector] probes = gpu_vf_busy,...``.

    :param conf: ConfigOpts with ``[multimodal_virt_probes]``.
    :param pmu_root: PMU sysfs directory (tests pass a recorded tree).
    :param pci_root: PCI devices sysfs directory.
    :param opener: callable(type, config) -> counter with ``read()`` and
        ``close()`` (default :class:`PerfCounter`).
    """

    name = 'gpu_vf_busy'

    def __init__(self, conf, pmu_root=PMU_ROOT, pci_root=PCI_ROOT,
                 opener=PerfCounter):
        super().__init__(conf)
        self._pmu_root = pmu_root
        self._pci_root = pci_root
        self._opener = opener
        self._engines = {}      # vf address -> [(active, total)]
        self._previous = {}
        self.reasons = []

    def _open_engines(self, pmu, function):
        engines = []
        for gt in range(MAX_GT):
            for klass in ENGINE_CLASSES:
                for instance in range(MAX_INSTANCE):
                    try:
                        pair = tuple(self._opener(pmu.type, pmu.config(
                            event, gt, klass, instance, function))
                            for event in (ACTIVE, TOTAL))
                    except (OSError, PmuError):
                        continue    # no such engine on this GT
                    engines.append(pair)
        return engines

    def start(self):
        if self._engines:
            return
        pmus, self.reasons = discover(self._pmu_root)
        for pmu in pmus:
            vfs = vf_functions(pmu.pf, self._pci_root)
            if not vfs:
                self.reasons.append('%s: PF %s has no VFs enabled'
                                    % (pmu.name, pmu.pf))
            for function, vf in sorted(vfs.items()):
                engines = self._open_engines(pmu, function)
                if engines:
                    self._engines[vf] = engines
                else:
                    self.reasons.append('%s: no engine counter opens for '
                                        'function %d (%s)'
                                        % (pmu.name, function, vf))
        if self._engines:
            LOG.info('gpu_vf_busy counts engine activity of VFs %s',
                     ', '.join(sorted(self._engines)))
        else:
            LOG.warning('GPU work of passthrough VFs is not observable on '
                        'this host: %s',
                        '; '.join(self.reasons) or
                        'no xe PMU in %s' % self._pmu_root)
        self._previous = self._read_all()

    def _read_all(self):
        return {vf: [(active.read(), total.read())
                     for active, total in engines]
                for vf, engines in self._engines.items()}

    def collect(self):
        current = self._read_all()
        busy = {}
        for vf, values in current.items():
            before = self._previous.get(vf, values)
            shares = [busy_percent(a - a0, t - t0) for (a, t), (a0, t0)
                      in zip(values, before)]
            shares = [s for s in shares if s is not None]
            if shares:
                busy[vf] = max(shares)
        self._previous = current
        return base.ProbeReading(
            source='pmu', gpu_busy_by_vf=busy,
            gpu_observed=('gpu_busy',) if self._engines else (),
            events=('pmu:%s' % ACTIVE,) if self._engines else ())

    def stop(self):
        for engines in self._engines.values():
            for pair in engines:
                for counter in pair:
                    counter.close()
        self._engines = {}
        self._previous = {}

    def describe(self):
        pmus, reasons = discover(self._pmu_root)
        lines = ['probe gpu_vf_busy: xe PMU %s/%s per function'
                 % (ACTIVE, TOTAL)]
        for pmu in pmus:
            lines.append('  %s (PF %s, type %d): VFs %s'
                         % (pmu.name, pmu.pf, pmu.type, ', '.join(
                             sorted(vf_functions(pmu.pf, self._pci_root)
                                    .values())) or 'none'))
        lines.extend('  not usable: %s' % reason for reason in reasons)
        if not pmus:
            lines.append('  not observable: no xe PMU with per-function '
                         'engine counters')
        return '\n'.join(lines)
