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
MAX_HOST_LENGTH = 255
MAX_INSTANCES = 4096
#: Most GPU devices (fence timelines' drivers) and VFs a sample lists.
MAX_GPU_DEVICES = 256
#: Fields added for the GPU signals, serialised only when set so samples
#: without them stay byte-identical to the earlier v1 payloads.
GPU_FIELDS = ('gpu_exec', 'gpu_submit', 'gpu_wait', 'gpu_nvidia_rm',
              'gpu_exec_by_device', 'gpu_exec_by_instance',
              'gpu_busy_by_vf', 'gpu_observed')
# Samples time-stamped further in the future than this are refused: a
# collector with a broken clock must not look fresh forever.
MAX_CLOCK_SKEW = 300.0
_HOST_RE = re.compile(r'[^\s/]{1,%d}' % MAX_HOST_LENGTH)
REQUIRED_FIELDS = frozenset(('host', 'timestamp', 'window_s', 'source'))


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


def _histogram_map(name, value, limit):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exception.InvalidSample('%s must be an object, got %s'
                                      % (name, type(value).__name__))
    if len(value) > limit:
        raise exception.InvalidSample('%s has %d entries, at most %d'
                                      % (name, len(value), limit))
    result = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > MAX_HOST_LENGTH:
            raise exception.InvalidSample(
                '%s keys must be non-empty strings of at most %d characters'
                % (name, MAX_HOST_LENGTH))
        result[key] = _optional_histogram('%s[%s]' % (name, key), item)
        if result[key] is None:
            raise exception.InvalidSample('%s[%s] must be a histogram'
                                          % (name, key))
    return result


def _signal_names(value):
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(
            v in vocabulary.GPU_SIGNALS for v in value):
        raise exception.InvalidSample(
            'gpu_observed must be a list of %s, got %r'
            % (', '.join(vocabulary.GPU_SIGNALS), value))
    return tuple(sorted(set(value)))


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
    :param gpu_cmd: deprecated alias of ``gpu_submit`` (same histogram).
    :param io: block I/O latency histogram (issue to complete).
    :param vm_exit_rate: VM exits per second on the host.
    :param irq_rate: hard IRQs per second on the host.
    :param gpu_util: GPU utilisation percentage, where known.
    :param vm_exits_by_instance: exits/s per Nova instance UUID.
    :param events: names of the kernel events that were counted.
    :param gpu_exec: GPU job latency, dma_fence emit to signaled.
    :param gpu_submit: command-submission ioctl latency (exact numbers).
    :param gpu_wait: wait ioctl latency (exact numbers).
    :param gpu_nvidia_rm: NVIDIA resource-manager escape latency
        (setup and control calls; informational, not an SLO metric).
    :param gpu_exec_by_device: ``{driver/device label: histogram}``.
    :param gpu_exec_by_instance: ``{instance uuid: histogram}`` of the
        fences emitted by that instance's qemu process.
    :param gpu_busy_by_vf: ``{VF PCI address: engine busy %}`` from the
        PF driver's per-function counters (passthrough VFs).
    :param gpu_observed: GPU signals (``vocabulary.GPU_SIGNALS``) the
        collector could measure on this host, events or not; a GPU metric
        not listed and without events is "not observable" here.
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
    gpu_exec: hist.LatencyHistogram = None
    gpu_submit: hist.LatencyHistogram = None
    gpu_wait: hist.LatencyHistogram = None
    gpu_nvidia_rm: hist.LatencyHistogram = None
    gpu_exec_by_device: dict = dataclasses.field(default_factory=dict)
    gpu_exec_by_instance: dict = dataclasses.field(default_factory=dict)
    gpu_busy_by_vf: dict = dataclasses.field(default_factory=dict)
    gpu_observed: tuple = ()

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
        for name in ('gpu_exec', 'gpu_submit', 'gpu_wait', 'gpu_nvidia_rm'):
            set_(self, name, _optional_histogram(name, getattr(self, name)))
        set_(self, 'gpu_exec_by_device', _histogram_map(
            'gpu_exec_by_device', self.gpu_exec_by_device, MAX_GPU_DEVICES))
        set_(self, 'gpu_exec_by_instance', _histogram_map(
            'gpu_exec_by_instance', self.gpu_exec_by_instance,
            MAX_INSTANCES))
        busy = _rate_map('gpu_busy_by_vf', self.gpu_busy_by_vf)
        if len(busy) > MAX_GPU_DEVICES or any(v > 100.0
                                              for v in busy.values()):
            raise exception.InvalidSample(
                'gpu_busy_by_vf holds at most %d percentages (0-100)'
                % MAX_GPU_DEVICES)
        set_(self, 'gpu_busy_by_vf', busy)
        set_(self, 'gpu_observed', _signal_names(self.gpu_observed))

    def observable(self, metric):
        """True if this host measured ``metric`` or declared it observable.

        Non-GPU metrics are always observable; a GPU metric is when the
        collector listed it in ``gpu_observed`` or it has events
        (``gpu_cmd`` follows ``gpu_submit``).
        """
        if metric not in vocabulary.GPU_METRICS:
            return True
        target = vocabulary.METRIC_ALIASES.get(metric, metric)
        histogram = getattr(self, metric, None)
        return (target in self.gpu_observed or metric in self.gpu_observed
                or (histogram is not None and histogram.count > 0))

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
        for name in GPU_FIELDS:
            value = getattr(self, name)
            if not value:
                continue
            if isinstance(value, hist.LatencyHistogram):
                data[name] = value.to_dict()
            elif name in ('gpu_exec_by_device', 'gpu_exec_by_instance'):
                data[name] = {k: v.to_dict() for k, v in value.items()}
            elif isinstance(value, dict):
                data[name] = dict(value)
            else:
                data[name] = list(value)
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
        if kwargs.get('events') is None:
            kwargs.pop('events', None)
        for name in GPU_FIELDS:
            if name in kwargs and kwargs[name] is None:
                kwargs.pop(name)
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
