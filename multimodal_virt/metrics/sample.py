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
#: Per-metric sources: ``none`` says the host measured nothing of that kind.
METRIC_SOURCES = SOURCES + ('none',)
MAX_HOST_LENGTH = 255
MAX_INSTANCES = 4096
#: Per-device I/O histograms kept: the busiest N plus ``other``.
MAX_DEVICES = 16
OTHER_DEVICE = 'other'
MAX_DROP_COUNTERS = 64
MAX_GPU_VFS = 256
#: Most GPU fence drivers a sample lists per-device histograms for.
MAX_GPU_DEVICES = 64
#: Histograms carried besides the vocabulary's latency metrics
#: (informational: never scored or used in SLOs).
EXTRA_HISTOGRAMS = ('gpu_nvidia_rm',)
MAX_COUNTER = 2 ** 63 - 1
# Samples time-stamped further in the future than this are refused: a
# collector with a broken clock must not look fresh forever.
MAX_CLOCK_SKEW = 300.0
# Host and node names: what hostnames, FQDNs and ironic node UUIDs use.
# No "/", whitespace, "+" (the store-key separator) or control characters,
# and no leading dot, so a name is always a safe file name and memcached key.
_HOST_PATTERN = r'[A-Za-z0-9_][A-Za-z0-9_.:-]{0,%d}' % (MAX_HOST_LENGTH - 1)
_HOST_RE = re.compile(_HOST_PATTERN)
_NAME_RE = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,127}')
KEY_SEPARATOR = '+'
#: A store key: ``host`` or ``host+nodename``.
KEY_RE = re.compile(r'%s(?:\+%s)?' % (_HOST_PATTERN, _HOST_PATTERN))
REQUIRED_FIELDS = frozenset(('host', 'timestamp', 'window_s', 'source'))


def _host_name(value):
    if not isinstance(value, str) or not value.strip():
        raise exception.InvalidSample(
            'host must be a non-empty string, got %r' % (value,))
    if not _HOST_RE.fullmatch(value):
        raise exception.InvalidSample(
            'host %r must be 1 to %d characters of letters, digits, '
            '"_", ".", ":" and "-", not starting with "." or "-"'
            % (value[:80], MAX_HOST_LENGTH))
    return value


def sample_key(host, nodename=None):
    """The store key of a compute node's sample.

    ``host`` alone when the node is named like its host (libvirt's usual
    case), else ``host+nodename`` (ironic, several hypervisors per host).
    """
    if nodename is None or nodename == host:
        return host
    return host + KEY_SEPARATOR + nodename


def split_key(key):
    """Inverse of :func:`sample_key`: ``(host, nodename)``."""
    host, _, node = key.partition(KEY_SEPARATOR)
    return host, (node or host)


def _checked_map(name, value, limit):
    """Return ``value`` checked as a dict of at most ``limit`` entries.

    ``None`` gives ``{}``; anything else raises InvalidSample naming
    ``name``.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exception.InvalidSample('%s must be an object, got %s'
                                      % (name, type(value).__name__))
    if len(value) > limit:
        raise exception.InvalidSample('%s has %d entries, at most %d'
                                      % (name, len(value), limit))
    return value


def _name_map(name, value, limit, check):
    """Validate a small ``{name: value}`` map with ``check(label, v)``."""
    result = {}
    for key, item in _checked_map(name, value, limit).items():
        if not isinstance(key, str) or not _NAME_RE.fullmatch(key):
            raise exception.InvalidSample('%s has a bad key %r'
                                          % (name, str(key)[:80]))
        result[key] = check('%s[%s]' % (name, key), item)
    return result


def _count(label, value):
    if type(value) is not int or not 0 <= value <= MAX_COUNTER:
        raise exception.InvalidSample('%s must be an integer count, got %r'
                                      % (label, value))
    return value


def _fraction(label, value):
    value = hist.finite_non_negative(label, value, allow_none=False)
    if value > 1.0:
        raise exception.InvalidSample('%s is a fraction 0..1, got %r'
                                      % (label, value))
    return value


def _metric_source(label, value):
    if value not in METRIC_SOURCES:
        raise exception.InvalidSample('%s must be one of %s, got %r'
                                      % (label, ', '.join(METRIC_SOURCES),
                                         value))
    return value


def _flag(label, value):
    if not isinstance(value, bool):
        raise exception.InvalidSample('%s must be true or false' % label)
    return value


def _device_histogram(label, value):
    return _optional_histogram(label, value)


def _histogram(label, value):
    histogram = _optional_histogram(label, value)
    if histogram is None:
        raise exception.InvalidSample('%s must be a histogram' % label)
    return histogram


def _optional_histogram(name, value):
    if value is None:
        return None
    if isinstance(value, hist.LatencyHistogram):
        return value
    try:
        return hist.LatencyHistogram.from_dict(value)
    except exception.InvalidHistogram as err:
        raise exception.InvalidHistogram('%s: %s' % (name, err))


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
    result = {}
    for key, rate in _checked_map(name, value, MAX_INSTANCES).items():
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
    :param nodename: compute node name (Nova's ``HostState.nodename``);
        defaults to ``host``.
    :param metric_sources: ``{metric: ebpf|procfs|none}``; a metric not
        listed was measured by ``source`` if it has a histogram, else none.
    :param observable: ``{metric: bool}``; ``False`` says the host cannot
        measure that metric at all (e.g. no GPU). Unlisted: observable.
    :param device_io: ``{device: LatencyHistogram}``, the busiest
        :data:`MAX_DEVICES` block devices plus ``other``.
    :param dropped: ``{bpf map name: events dropped}`` in the window.
    :param gpu_busy: ``{VF PCI address: busy fraction 0..1}``.
    :param gpu_exec: GPU job latency, dma_fence emit to signaled.
    :param gpu_submit: command-submission ioctl latency (exact numbers).
    :param gpu_wait: wait ioctl latency (exact numbers).
    :param gpu_queue: GPU queue wait, DRM scheduler job queued to run.
    :param gpu_nvidia_rm: NVIDIA resource-manager escape latency
        (setup and control calls; informational, not an SLO metric).
    :param gpu_exec_by_device: ``{fence driver label: histogram}``.
    :param gpu_exec_by_instance: ``{instance uuid: histogram}`` of the
        fences emitted by that instance's qemu process.
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
    nodename: str = None
    metric_sources: dict = dataclasses.field(default_factory=dict)
    observable: dict = dataclasses.field(default_factory=dict)
    device_io: dict = dataclasses.field(default_factory=dict)
    dropped: dict = dataclasses.field(default_factory=dict)
    gpu_busy: dict = dataclasses.field(default_factory=dict)
    gpu_exec: hist.LatencyHistogram = None
    gpu_submit: hist.LatencyHistogram = None
    gpu_wait: hist.LatencyHistogram = None
    gpu_nvidia_rm: hist.LatencyHistogram = None
    gpu_exec_by_device: dict = dataclasses.field(default_factory=dict)
    gpu_exec_by_instance: dict = dataclasses.field(default_factory=dict)
    min_events: dict = dataclasses.field(default_factory=dict)
    effective_window_s: dict = dataclasses.field(default_factory=dict)
    gpu_queue: hist.LatencyHistogram = None

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
        for name in vocabulary.LATENCY_METRICS + EXTRA_HISTOGRAMS:
            if hasattr(self, name):  # a newer vocabulary may know more
                set_(self, name, _optional_histogram(name,
                                                     getattr(self, name)))
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
        set_(self, 'nodename', _host_name(
            self.host if self.nodename is None else self.nodename))
        set_(self, 'metric_sources', _name_map(
            'metric_sources', self.metric_sources, MAX_DROP_COUNTERS,
            _metric_source))
        set_(self, 'observable', _name_map(
            'observable', self.observable, MAX_DROP_COUNTERS, _flag))
        devices = _name_map('device_io', self.device_io, MAX_DEVICES + 1,
                            _device_histogram)
        set_(self, 'device_io', {k: v for k, v in devices.items()
                                 if v is not None})
        set_(self, 'dropped', _name_map('dropped', self.dropped,
                                        MAX_DROP_COUNTERS, _count))
        set_(self, 'gpu_busy', _name_map('gpu_busy', self.gpu_busy,
                                         MAX_GPU_VFS, _fraction))
        set_(self, 'gpu_exec_by_device', _name_map(
            'gpu_exec_by_device', self.gpu_exec_by_device, MAX_GPU_DEVICES,
            _histogram))
        set_(self, 'gpu_exec_by_instance', _name_map(
            'gpu_exec_by_instance', self.gpu_exec_by_instance,
            MAX_INSTANCES, _histogram))
        set_(self, 'min_events', _min_events(self.min_events))
        set_(self, 'effective_window_s',
             _effective_windows(self.effective_window_s))

    @property
    def key(self):
        """Store key of this sample: see :func:`sample_key`."""
        return sample_key(self.host, self.nodename)

    def histogram(self, metric):
        """The histogram of a vocabulary metric, ``None`` if not carried."""
        value = getattr(self, metric, None)
        return value if isinstance(value, hist.LatencyHistogram) else None

    def metric_source(self, metric):
        """``ebpf``, ``procfs`` or ``none`` for one metric."""
        if metric in self.metric_sources:
            return self.metric_sources[metric]
        return self.source if self.histogram(metric) is not None else 'none'

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
            **{name: self.histogram(name).to_dict()
               if self.histogram(name) else None
               for name in vocabulary.LATENCY_METRICS + EXTRA_HISTOGRAMS
               if hasattr(self, name)},
            'vm_exit_rate': self.vm_exit_rate,
            'irq_rate': self.irq_rate,
            'gpu_util': self.gpu_util,
            'vm_exits_by_instance': dict(self.vm_exits_by_instance),
            'events': list(self.events),
            'nodename': self.nodename,
            'metric_sources': dict(self.metric_sources),
            'observable': dict(self.observable),
            'device_io': {k: v.to_dict() for k, v in self.device_io.items()},
            'dropped': dict(self.dropped),
            'gpu_busy': dict(self.gpu_busy),
            'gpu_exec_by_device': {k: v.to_dict() for k, v
                                   in self.gpu_exec_by_device.items()},
            'gpu_exec_by_instance': {k: v.to_dict() for k, v
                                     in self.gpu_exec_by_instance.items()},
            'min_events': dict(self.min_events),
            'effective_window_s': dict(self.effective_window_s),
        }
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
        for optional in ('events', 'metric_sources', 'observable',
                         'device_io', 'dropped', 'gpu_busy',
                         'gpu_exec_by_device', 'gpu_exec_by_instance',
                         'min_events', 'effective_window_s'):
            if kwargs.get(optional) is None:
                kwargs.pop(optional, None)
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
