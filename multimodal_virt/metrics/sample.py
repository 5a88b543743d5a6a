"""The host sample: what a collector publishes and the scheduler reads.

A sample is validated when it is built, so a sample that exists is valid:
``from_dict``/``from_json`` are the edge where untrusted payloads come in,
and they raise :class:`~multimodal_virt.exception.InvalidSample` with a
message naming the bad field.
"""

import dataclasses
import json
import re
import time

from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import vocabulary

SCHEMA_VERSION = 1
SOURCES = ('ebpf', 'procfs')
#: Per-metric sources: ``none`` says no probe measured the metric.
METRIC_SOURCES = SOURCES + ('none',)
MAX_HOST_LENGTH = 255
MAX_INSTANCES = 4096
#: Per-device I/O histograms published (top N by count plus ``other``).
MAX_DEVICES = 64
OTHER_DEVICES = 'other'
MAX_DROP_COUNTERS = 64
_DEVICE_RE = re.compile(r'[A-Za-z0-9._!:-]{1,64}')
_COUNTER_RE = re.compile(r'[a-z0-9_]{1,64}\.[a-z0-9_]{1,64}')
# Samples time-stamped further in the future than this are refused: a
# collector with a broken clock must not look fresh forever.
MAX_CLOCK_SKEW = 300.0
_HOST_RE = re.compile(r'[^\s/]{1,%d}' % MAX_HOST_LENGTH)
REQUIRED_FIELDS = frozenset(('host', 'timestamp', 'window_s', 'source'))
#: Figures that carry a per-metric source: the latency metrics and rates.
SOURCE_METRICS = vocabulary.LATENCY_METRICS + ('vm_exit_rate', 'irq_rate')


def _host_name(value):
    if not isinstance(value, str) or not value.strip():
        raise exception.InvalidSample(
            'host must be a non-empty string, got %r' % (value,))
    if not _HOST_RE.fullmatch(value):
        raise exception.InvalidSample(
            'host %r must be at most %d characters with no whitespace or "/"'
            % (value[:80], MAX_HOST_LENGTH))
    return value


def _optional_histogram(name, value):
    if value is None:
        return None
    if isinstance(value, hist.LatencyHistogram):
        return value
    try:
        return hist.LatencyHistogram.from_dict(value)
    except exception.InvalidHistogram as err:
        raise exception.InvalidHistogram('%s: %s' % (name, err))


def _checked_map(name, value, limit):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exception.InvalidSample('%s must be an object, got %s'
                                      % (name, type(value).__name__))
    if len(value) > limit:
        raise exception.InvalidSample('%s has %d entries, at most %d'
                                      % (name, len(value), limit))
    return value


def _device_histograms(value):
    result = {}
    for key, item in _checked_map('io_by_device', value, MAX_DEVICES).items():
        if not isinstance(key, str) or not _DEVICE_RE.fullmatch(key):
            raise exception.InvalidSample(
                'io_by_device key %r is not a block device name' % (key,))
        result[key] = _optional_histogram('io_by_device[%s]' % key, item)
        if result[key] is None:
            raise exception.InvalidSample('io_by_device[%s] is null' % key)
    return result


def _drop_counters(value):
    result = {}
    for key, count in _checked_map('dropped_events', value,
                                   MAX_DROP_COUNTERS).items():
        if not isinstance(key, str) or not _COUNTER_RE.fullmatch(key):
            raise exception.InvalidSample(
                'dropped_events key %r must be "<probe>.<map>"' % (key,))
        if type(count) is not int or count < 0:
            raise exception.InvalidSample(
                'dropped_events[%s] must be a count >= 0, got %r'
                % (key, count))
        result[key] = count
    return result


def _metric_sources(value):
    result = {}
    for key, source in _checked_map('sources', value, 16).items():
        if key not in SOURCE_METRICS:
            raise exception.InvalidSample(
                'sources key %r is not one of %s'
                % (key, ', '.join(SOURCE_METRICS)))
        if source not in METRIC_SOURCES:
            raise exception.InvalidSample(
                'sources[%s] must be one of %s, got %r'
                % (key, ', '.join(METRIC_SOURCES), source))
        result[key] = source
    return result


def _min_events(value):
    result = {}
    for key, count in _checked_map('min_events', value, 16).items():
        if key not in vocabulary.PERCENTILE_NAMES:
            raise exception.InvalidSample(
                'min_events key %r is not one of %s'
                % (key, ', '.join(vocabulary.PERCENTILE_NAMES)))
        if type(count) is not int or count < 0:
            raise exception.InvalidSample(
                'min_events[%s] must be a count >= 0, got %r' % (key, count))
        result[key] = count
    return result


def _effective_windows(value):
    result = {}
    for key, seconds in _checked_map('effective_window_s', value,
                                     16).items():
        if key not in vocabulary.LATENCY_METRICS:
            raise exception.InvalidSample(
                'effective_window_s key %r is not one of %s'
                % (key, ', '.join(vocabulary.LATENCY_METRICS)))
        result[key] = hist.finite_non_negative(
            'effective_window_s[%s]' % key, seconds, allow_none=False)
    return result


def _rate_map(name, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exception.InvalidSample('%s must be an object, got %s'
                                      % (name, type(value).__name__))
    if len(value) > MAX_INSTANCES:
        raise exception.InvalidSample('%s has %d entries, at most %d'
                                      % (name, len(value), MAX_INSTANCES))
    result = {}
    for key, rate in value.items():
        if not isinstance(key, str) or not key:
            raise exception.InvalidSample('%s keys must be strings' % name)
        result[key] = hist.finite_non_negative('%s[%s]' % (name, key), rate,
                                               allow_none=False)
    return result


@dataclasses.dataclass(frozen=True)
class HostSample:
    """Latency and load of one compute host over one collection window.

    :param host: compute host name, as Nova's ``HostState.host``.
    :param timestamp: end of the window, seconds since the epoch.
    :param window_s: length of the window in seconds.
    :param source: ``ebpf`` or ``procfs``.
    :param collector_version: version of the collector that made it.
    :param gpu_cmd: GPU command-submission latency histogram (ioctl time).
    :param io: block I/O latency histogram (issue to complete).
    :param vm_exit_rate: VM exits per second on the host.
    :param irq_rate: hard IRQs per second on the host.
    :param gpu_util: GPU utilisation percentage, where known.
    :param vm_exits_by_instance: exits/s per Nova instance UUID.
    :param events: names of the kernel events that were counted.
    :param io_by_device: ``{device name: LatencyHistogram}`` of the
        busiest devices, the rest summed under ``other``.
    :param dropped_events: ``{"<probe>.<map>": count}``: events each
        bounded BPF map lost in the window because it was full.
    :param sources: ``{metric: ebpf | procfs | none}``: where each figure
        came from (``none``: not measured on this host).
    :param min_events: ``{percentile: count}``: a percentile of a latency
        histogram holding fewer events is *insufficient*: the reader must
        treat it as not measured (neutral), not as a figure.
    :param effective_window_s: ``{metric: seconds}``: the span of time the
        latency histogram effectively covers (decayed merge of windows).
    """

    host: str
    timestamp: float
    window_s: float
    source: str
    collector_version: str = 'unknown'
    gpu_cmd: hist.LatencyHistogram = None
    io: hist.LatencyHistogram = None
    vm_exit_rate: float = None
    irq_rate: float = None
    gpu_util: float = None
    vm_exits_by_instance: dict = dataclasses.field(default_factory=dict)
    events: tuple = ()
    io_by_device: dict = dataclasses.field(default_factory=dict)
    dropped_events: dict = dataclasses.field(default_factory=dict)
    sources: dict = dataclasses.field(default_factory=dict)
    min_events: dict = dataclasses.field(default_factory=dict)
    effective_window_s: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, 'host', _host_name(self.host))
        timestamp = hist.finite_non_negative('timestamp', self.timestamp,
                                             allow_none=False)
        if timestamp > time.time() + MAX_CLOCK_SKEW:
            raise exception.InvalidSample(
                'timestamp %.0f is more than %.0f s in the future'
                % (timestamp, MAX_CLOCK_SKEW))
        set_(self, 'timestamp', timestamp)
        window = hist.finite_non_negative('window_s', self.window_s,
                                          allow_none=False)
        if window <= 0:
            raise exception.InvalidSample('window_s must be > 0')
        set_(self, 'window_s', window)
        if self.source not in SOURCES:
            raise exception.InvalidSample(
                'source must be one of %s, got %r'
                % (', '.join(SOURCES), self.source))
        if not isinstance(self.collector_version, str):
            raise exception.InvalidSample('collector_version must be a string')
        set_(self, 'gpu_cmd', _optional_histogram('gpu_cmd', self.gpu_cmd))
        set_(self, 'io', _optional_histogram('io', self.io))
        for name in ('vm_exit_rate', 'irq_rate', 'gpu_util'):
            set_(self, name, hist.finite_non_negative(name,
                                                      getattr(self, name)))
        if self.gpu_util is not None and self.gpu_util > 100.0:
            raise exception.InvalidSample(
                'gpu_util is a percentage, got %r' % self.gpu_util)
        set_(self, 'vm_exits_by_instance',
             _rate_map('vm_exits_by_instance', self.vm_exits_by_instance))
        events = self.events
        if not isinstance(events, (list, tuple)) or not all(
                isinstance(e, str) for e in events):
            raise exception.InvalidSample('events must be a list of names')
        set_(self, 'events', tuple(events))
        set_(self, 'io_by_device', _device_histograms(self.io_by_device))
        set_(self, 'dropped_events', _drop_counters(self.dropped_events))
        set_(self, 'sources', _metric_sources(self.sources))
        set_(self, 'min_events', _min_events(self.min_events))
        set_(self, 'effective_window_s',
             _effective_windows(self.effective_window_s))

    def sufficient(self, metric, percentile):
        """False when ``percentile`` of ``metric`` rests on too few events.

        The rule the scheduler applies: a percentile whose histogram holds
        fewer than ``min_events[percentile]`` events is *insufficient* and
        counts as not measured (neutral for the host), never as a figure.
        ``True`` also when the histogram is missing (that is "no data",
        handled by the caller) or no minimum was published.
        """
        histogram = getattr(self, metric, None)
        if histogram is None:
            return True
        return histogram.count >= self.min_events.get(percentile, 0)

    def age(self, now=None):
        """Seconds since the end of the sample window."""
        return (time.time() if now is None else now) - self.timestamp

    def to_dict(self):
        """Serialise to plain JSON types (with schema version)."""
        data = {
            'version': SCHEMA_VERSION,
            'host': self.host,
            'timestamp': self.timestamp,
            'window_s': self.window_s,
            'source': self.source,
            'collector_version': self.collector_version,
            'gpu_cmd': self.gpu_cmd.to_dict() if self.gpu_cmd else None,
            'io': self.io.to_dict() if self.io else None,
            'vm_exit_rate': self.vm_exit_rate,
            'irq_rate': self.irq_rate,
            'gpu_util': self.gpu_util,
            'vm_exits_by_instance': dict(self.vm_exits_by_instance),
            'events': list(self.events),
        }
        # Optional fields only when set: samples without them stay
        # byte-identical to what older collectors wrote.
        if self.io_by_device:
            data['io_by_device'] = {name: item.to_dict() for name, item
                                    in self.io_by_device.items()}
        for name in ('dropped_events', 'sources', 'min_events',
                     'effective_window_s'):
            if getattr(self, name):
                data[name] = dict(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data):
        """Build a sample from untrusted parsed JSON.

        :raises InvalidSample: naming the field that is wrong.
        """
        if not isinstance(data, dict):
            raise exception.InvalidSample(
                'sample must be a JSON object, got %s' % type(data).__name__)
        version = data.get('version')
        if version != SCHEMA_VERSION:
            raise exception.InvalidSample(
                'unsupported sample version %r (this reader knows %d)'
                % (version, SCHEMA_VERSION))
        unknown = data.keys() - FIELD_NAMES - {'version'}
        if unknown:
            raise exception.InvalidSample(
                'unknown sample fields: %s' % ', '.join(sorted(unknown)))
        missing = REQUIRED_FIELDS - data.keys()
        if missing:
            raise exception.InvalidSample(
                'sample lacks required fields: %s'
                % ', '.join(sorted(missing)))
        kwargs = {k: v for k, v in data.items() if k != 'version'}
        if kwargs.get('vm_exits_by_instance') is None:
            kwargs.pop('vm_exits_by_instance', None)
        for name in ('events', 'io_by_device', 'dropped_events', 'sources',
                     'min_events', 'effective_window_s'):
            if kwargs.get(name) is None:
                kwargs.pop(name, None)
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise exception.InvalidSample('malformed sample: %s' % err)

    def to_json(self, max_bytes=None):
        """Serialise to compact UTF-8 JSON bytes.

        :param max_bytes: refuse to produce a larger payload.
        :raises InvalidSample: if the payload is over ``max_bytes``.
        """
        payload = json.dumps(self.to_dict(), separators=(',', ':'),
                             allow_nan=False).encode('utf-8')
        if max_bytes is not None and len(payload) > max_bytes:
            raise exception.InvalidSample(
                'sample for %s is %d bytes, over the %d byte limit'
                % (self.host, len(payload), max_bytes))
        return payload

    @classmethod
    def from_json(cls, payload, max_bytes=None):
        """Parse and validate a JSON payload (bytes or str).

        :raises InvalidSample: on oversized, non-JSON or invalid payloads.
        """
        if max_bytes is not None and len(payload) > max_bytes:
            raise exception.InvalidSample(
                'sample payload is %d bytes, over the %d byte limit'
                % (len(payload), max_bytes))
        try:
            data = json.loads(payload, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as err:
            raise exception.InvalidSample('sample is not valid JSON: %s' % err)
        return cls.from_dict(data)


FIELD_NAMES = frozenset(field.name for field in dataclasses.fields(HostSample))


def _reject_constant(name):
    raise exception.InvalidSample('sample contains %s, which is not a number'
                                  % name)
