"""Merge probe readings of one window into a validated host sample.

Pure logic: no BPF, no libvirt, no I/O. The rules:

* ``source`` is ``ebpf`` if any eBPF reading contributed, else ``procfs``.
* For each metric, eBPF readings win over procfs ones when both measured
  it (so an explicitly configured procfs probe never double counts).
* ``vm_exit_rate`` and ``irq_rate`` are counts divided by the window;
  ``None`` when no reading measured them.
* ``vm_exits_by_instance`` sums the exits of every qemu pid that the
  attribution map resolves, per instance UUID, divided by the window; the
  busiest :data:`~multimodal_virt.metrics.sample.MAX_INSTANCES` are kept.
* A reading entry that is not a non-negative integer count is dropped with
  a log line naming the probe and the entry; it never makes a rate negative.
* GPU signals: ``gpu_exec``, ``gpu_submit``, ``gpu_wait`` and
  ``gpu_nvidia_rm`` histograms are summed like ``io``; ``gpu_cmd`` (the
  deprecated alias) carries ``gpu_submit``'s histogram unless a reading set
  ``gpu_cmd`` itself. Fence histograms per emitting pid become per instance
  UUID through the attribution map; per device they are summed by label.
  DRM GPU scheduler execution (run to done, ``gpu_sched_exec``) joins
  ``gpu_exec`` only for drivers no fence reading measured in the window
  (:func:`sched_exec_readings`), so a job is never counted twice.
  A GPU signal no reading declares (``gpu_observed``) and without events
  is marked ``observable: false`` in the sample.
* ``sources`` says, per metric, whether eBPF or procfs measured it, or
  ``none``; the sample-wide ``source`` stays ``ebpf`` when any eBPF
  reading contributed.
* Latency histograms go through the decayed merge of
  :mod:`~multimodal_virt.collector.sample_quality` when a history is given;
  the effective window and the minimum counts are published with them.
* ``io_by_device`` keeps the busiest ``max_devices`` devices and sums the
  rest under ``other``; ``dropped`` sums the probes' drop counters.
"""

import time

from oslo_log import log as logging

from multimodal_virt.collector.probes import base as probe_base
from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.metrics import vocabulary

LOG = logging.getLogger(__name__)

EBPF = 'ebpf'
PROCFS = 'procfs'
NONE = 'none'
DEFAULT_MAX_DEVICES = 8
# An event name containing one of these says the reading measured the
# metric even when it counted nothing in the window.
VM_EXIT_EVENT_MARKERS = ('kvm',)
IRQ_EVENT_MARKERS = ('irq', 'interrupts')


def _is_count(value):
    return (isinstance(value, int) and not isinstance(value, bool)
            and value >= 0)


def _counts(reading, field):
    """Return the valid ``{key: count}`` entries of ``reading.<field>``."""
    data = getattr(reading, field) or {}
    if not isinstance(data, dict):
        LOG.warning('Probe reading %(field)s from %(source)s is %(type)s, '
                    'expected a dict of counts; ignored',
                    {'field': field, 'source': reading.source,
                     'type': type(data).__name__})
        return {}
    valid = {}
    for key, count in data.items():
        if _is_count(count):
            valid[key] = count
        else:
            LOG.warning('Dropping %(field)s[%(key)r] = %(count)r from a '
                        '%(source)s reading: expected a count >= 0',
                        {'field': field, 'key': key, 'count': count,
                         'source': reading.source})
    return valid


def _histogram(reading, field):
    value = getattr(reading, field)
    if value is None or isinstance(value, hist.LatencyHistogram):
        return value
    LOG.warning('Probe reading %(field)s from %(source)s is %(type)s, '
                'expected a LatencyHistogram; ignored',
                {'field': field, 'source': reading.source,
                 'type': type(value).__name__})
    return None


def _preferred(readings, measured):
    """The eBPF readings that measured a metric, else the procfs ones."""
    ebpf = [r for r in readings if r.source == EBPF and measured(r)]
    if ebpf:
        return ebpf
    return [r for r in readings if r.source != EBPF and measured(r)]


def _has_event(reading, markers):
    return any(marker in event for event in reading.events or ()
               for marker in markers)


def _source_of(chosen):
    if not chosen:
        return NONE
    return EBPF if chosen[0].source == EBPF else PROCFS


def merge_histograms(readings, field):
    """Sum the ``field`` histograms of the preferred readings, or ``None``."""
    return _merge_with_source(readings, field)[0]


def _merge_with_source(readings, field):
    chosen = _preferred(readings,
                        lambda r: _histogram(r, field) is not None)
    merged = None
    for reading in chosen:
        value = getattr(reading, field)
        merged = value if merged is None else merged.merged(value)
    return merged, _source_of(chosen)


def device_histograms(readings):
    """``{device: LatencyHistogram}`` summed over the preferred readings."""
    chosen = _preferred(readings, lambda r: _histogram(r, 'io') is not None)
    result = {}
    for reading in chosen:
        devices = reading.io_by_device or {}
        if not isinstance(devices, dict):
            continue
        for name, value in devices.items():
            if not isinstance(value, hist.LatencyHistogram):
                continue
            result[name] = (value if name not in result
                            else result[name].merged(value))
    return result


def top_devices(histograms, limit):
    """Keep the ``limit`` busiest devices; sum the rest under ``other``.

    :param histograms: ``{device name: LatencyHistogram}``.
    :param limit: devices published by name (>= 1).
    :returns: a new dict of at most ``limit + 1`` entries.
    """
    ranked = sorted(histograms.items(),
                    key=lambda item: (-item[1].count, item[0]))
    kept = dict(ranked[:limit])
    other = None
    for _name, value in ranked[limit:]:
        other = value if other is None else other.merged(value)
    if other is not None:
        kept[sample_mod.OTHER_DEVICE] = other
    return kept


def dropped_events(readings):
    """``{"<probe>.<map>": count}`` summed over every reading."""
    totals = {}
    for reading in readings:
        for key, count in _counts(reading, 'dropped').items():
            totals[key] = totals.get(key, 0) + count
    return totals


def _sum_counts(readings, field, markers):
    chosen = _preferred(
        readings,
        lambda r: bool(getattr(r, field)) or _has_event(r, markers))
    if not chosen:
        return None, {}
    totals = {}
    for reading in chosen:
        for key, count in _counts(reading, field).items():
            totals[key] = totals.get(key, 0) + count
    return sum(totals.values()), totals


def instance_rates(exits_by_pid, attribution, window_s):
    """Exits per second per instance UUID.

    :param exits_by_pid: ``{pid: exit count}``.
    :param attribution: ``{pid: instance uuid}``; unknown pids are skipped.
    :param window_s: window length in seconds (> 0).
    :returns: ``{uuid: exits/s}``, at most ``MAX_INSTANCES`` entries.
    """
    per_uuid = {}
    for pid, count in exits_by_pid.items():
        uuid = attribution.get(pid)
        if uuid:
            per_uuid[uuid] = per_uuid.get(uuid, 0) + count
    if len(per_uuid) > sample_mod.MAX_INSTANCES:
        busiest = sorted(per_uuid.items(), key=lambda item: -item[1])
        per_uuid = dict(busiest[:sample_mod.MAX_INSTANCES])
    return {uuid: count / window_s for uuid, count in per_uuid.items()}


def _merge_histogram_maps(readings, field):
    merged = {}
    for reading in readings:
        value = getattr(reading, field, None) or {}
        if not isinstance(value, dict):
            LOG.warning('Probe reading %(field)s from %(source)s is %(type)s, '
                        'expected a dict of histograms; ignored',
                        {'field': field, 'source': reading.source,
                         'type': type(value).__name__})
            continue
        for key, item in value.items():
            if not isinstance(item, hist.LatencyHistogram):
                LOG.warning('Dropping %(field)s[%(key)r] from a %(source)s '
                            'reading: not a LatencyHistogram',
                            {'field': field, 'key': key,
                             'source': reading.source})
                continue
            before = merged.get(key)
            merged[key] = item if before is None else before.merged(item)
    return merged


def sched_exec_readings(readings):
    """DRM scheduler execution as a reading of ``gpu_exec``, or ``[]``.

    A driver that emits dma_fence events (virtio-gpu, msm, nouveau) has its
    jobs timed by the fence reading already; those of the other drivers'
    jobs (``gpu_sched_exec`` keys ``(driver label, tgid)``) are added, per
    device and per submitting process.
    """
    fenced = {str(label) for label, item in _merge_histogram_maps(
        readings, 'gpu_exec_by_device').items() if item.count}
    total, by_device, by_pid = None, {}, {}
    for reading in readings:
        executed = getattr(reading, 'gpu_sched_exec', None) or {}
        if not isinstance(executed, dict):
            continue
        for key, item in executed.items():
            if not (isinstance(key, tuple) and len(key) == 2
                    and isinstance(item, hist.LatencyHistogram)):
                LOG.warning('Dropping gpu_sched_exec[%(key)r] from a '
                            '%(source)s reading: expected (driver, tgid): '
                            'LatencyHistogram',
                            {'key': key, 'source': reading.source})
                continue
            label, tgid = key
            if str(label) in fenced or not item.count:
                continue
            for table, name in ((by_device, str(label)), (by_pid, tgid)):
                before = table.get(name)
                table[name] = item if before is None else before.merged(item)
            total = item if total is None else total.merged(item)
    if total is None:
        return []
    return [probe_base.ProbeReading(source=EBPF, gpu_exec=total,
                                    gpu_exec_by_device=by_device,
                                    gpu_exec_by_pid=by_pid)]


def _busiest(histograms, limit):
    """At most ``limit`` entries, those with the most events."""
    if len(histograms) <= limit:
        return histograms
    ranked = sorted(histograms.items(), key=lambda item: -item[1].count)
    return dict(ranked[:limit])


def gpu_fields(readings, attribution, latency):
    """The sample's GPU fields besides the latency histograms.

    :param readings: list of ProbeReading.
    :param attribution: ``{qemu pid: instance uuid}``.
    :param latency: the published latency histograms (``_latency``); its
        ``gpu_cmd`` is filled with ``gpu_submit``'s when no reading set it.
    :returns: ``{HostSample field: value}``.
    """
    fields = {'gpu_nvidia_rm': merge_histograms(readings, 'gpu_nvidia_rm')}
    if latency.get('gpu_cmd') is None:
        latency['gpu_cmd'] = latency.get('gpu_submit')
    by_device = _merge_histogram_maps(readings, 'gpu_exec_by_device')
    fields['gpu_exec_by_device'] = _busiest(
        {str(k): v for k, v in by_device.items()},
        sample_mod.MAX_GPU_DEVICES)
    per_uuid = {}
    for pid, item in _merge_histogram_maps(readings,
                                           'gpu_exec_by_pid').items():
        uuid = attribution.get(pid)
        if uuid:
            before = per_uuid.get(uuid)
            per_uuid[uuid] = item if before is None else before.merged(item)
    fields['gpu_exec_by_instance'] = _busiest(per_uuid,
                                              sample_mod.MAX_INSTANCES)
    busy = {}
    for reading in readings:
        for vf, value in (reading.gpu_busy_by_vf or {}).items():
            if (isinstance(value, (int, float)) and not isinstance(
                    value, bool) and 0.0 <= value <= 100.0):
                busy[str(vf)] = float(value) / 100.0
            else:
                LOG.warning('Dropping gpu_busy_by_vf[%(vf)r] = %(value)r '
                            'from a %(source)s reading: expected 0-100',
                            {'vf': vf, 'value': value,
                             'source': reading.source})
    fields['gpu_busy'] = busy
    declared = {name for reading in readings
                for name in (reading.gpu_observed or ())
                if name in vocabulary.GPU_SIGNALS}
    # A GPU metric is observable when a probe declared it or it has events;
    # otherwise the sample says so and GPU SLOs cannot be checked here.
    fields['observable'] = {
        metric: False for metric in vocabulary.GPU_METRICS
        if vocabulary.canonical_metric(metric) not in declared
        and metric not in declared
        and not (latency[metric] is not None and latency[metric].count)}
    return fields


def _decayed(history, key, histogram, window_s):
    if history is None:
        return histogram, (window_s if histogram is not None else None)
    return history.update(key, histogram, window_s)


def _latency(readings, window, history):
    """Per latency metric: published histogram, source, effective window."""
    values, sources, windows = {}, {}, {}
    for metric in vocabulary.LATENCY_METRICS:
        histogram, source = _merge_with_source(readings, metric)
        histogram, effective = _decayed(history, metric, histogram, window)
        values[metric] = histogram
        sources[metric] = source
        if histogram is not None:
            windows[metric] = effective
    return values, sources, windows


def _devices(readings, window, history, max_devices):
    current = device_histograms(readings)
    if history is not None:
        known = {key[1] for key in history.keys()
                 if isinstance(key, tuple) and key[0] == 'io_by_device'}
        empty = hist.LatencyHistogram(())
        for name in sorted(known | set(current)):
            merged, _w = history.update(('io_by_device', name),
                                        current.get(name, empty), window)
            if merged.count:
                current[name] = merged
            else:  # aged out (or the device is gone)
                history.forget(('io_by_device', name))
                current.pop(name, None)
    return top_devices(current, max_devices)


def _published_sources(sources, latency, source):
    """The per-metric sources a sample states: those its defaults miss.

    A latency metric defaults to the sample's ``source`` when it has a
    histogram and to ``none`` otherwise; rates are always stated.
    """
    stated = {}
    for name, value in sources.items():
        if name in latency:
            default = source if latency[name] is not None else NONE
            if value == default:
                continue
        stated[name] = value
    return stated


def build_sample(host, readings, window_s, attribution=None, timestamp=None,
                 collector_version='unknown', history=None, min_events=None,
                 max_devices=DEFAULT_MAX_DEVICES):
    """Build the host sample of one window.

    :param host: compute host name.
    :param readings: list of
        :class:`~multimodal_virt.collector.probes.base.ProbeReading`.
    :param window_s: seconds the readings cover (> 0).
    :param attribution: ``{qemu pid: instance uuid}``.
    :param timestamp: end of the window (default: now).
    :param collector_version: version string put in the sample.
    :param history: a
        :class:`~multimodal_virt.collector.sample_quality.DecayedHistograms`
        kept across windows, or ``None`` to publish this window alone.
    :param min_events: ``{percentile: minimum count}`` published with the
        sample (see :meth:`HostSample.sufficient`).
    :param max_devices: devices in ``io_by_device`` besides ``other``.
    :returns: a validated :class:`~multimodal_virt.metrics.sample.HostSample`.
    :raises InvalidSample: if ``window_s`` or ``host`` is invalid.
    """
    window = hist.finite_non_negative('window_s', window_s, allow_none=False)
    if window <= 0:
        raise exception.InvalidSample('window_s must be > 0, got %r'
                                      % (window_s,))
    readings = list(readings)
    readings += sched_exec_readings(readings)
    exits_total, exits_by_pid = _sum_counts(readings, 'vm_exits_by_pid',
                                            VM_EXIT_EVENT_MARKERS)
    if not exits_by_pid:
        # A probe may count exits by reason only.
        reason_total, _reasons = _sum_counts(readings, 'vm_exits_by_reason',
                                             VM_EXIT_EVENT_MARKERS)
        exits_total = reason_total if exits_total is None else max(
            exits_total, reason_total or 0)
    irq_total, _irqs = _sum_counts(readings, 'irq_counts', IRQ_EVENT_MARKERS)
    latency, sources, windows = _latency(readings, window, history)
    sources['vm_exit_rate'] = _source_of(_preferred(
        readings, lambda r: bool(r.vm_exits_by_pid or r.vm_exits_by_reason)
        or _has_event(r, VM_EXIT_EVENT_MARKERS)))
    sources['irq_rate'] = _source_of(_preferred(
        readings, lambda r: bool(r.irq_counts)
        or _has_event(r, IRQ_EVENT_MARKERS)))
    events = sorted({event for reading in readings
                     for event in (reading.events or ())
                     if isinstance(event, str)})
    source = EBPF if any(r.source == EBPF for r in readings) else PROCFS
    gpu = gpu_fields(readings, attribution or {}, latency)
    if latency['gpu_cmd'] is latency.get('gpu_submit'):
        sources['gpu_cmd'] = sources.get('gpu_submit', NONE)
    return sample_mod.HostSample(
        host=host,
        timestamp=time.time() if timestamp is None else timestamp,
        window_s=window,
        source=source,
        collector_version=collector_version,
        device_io=_devices(readings, window, history, max_devices),
        dropped=dropped_events(readings),
        metric_sources=_published_sources(sources, latency, source),
        min_events=dict(min_events or {}),
        effective_window_s=windows,
        vm_exit_rate=None if exits_total is None else exits_total / window,
        irq_rate=None if irq_total is None else irq_total / window,
        vm_exits_by_instance=instance_rates(exits_by_pid, attribution or {},
                                            window),
        events=tuple(events),
        **gpu, **latency)
