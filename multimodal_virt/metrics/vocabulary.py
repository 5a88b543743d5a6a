"""The one vocabulary: latency metric names, percentiles, SLO keys, staleness.

Every module that names a latency metric, a percentile, a flavor SLO key or
decides whether a sample is stale imports it from here: the collector, the
stats stores, the scheduler filter and weigher, the compute hook, the
analysis and the CLI.
"""

import re

#: Prefix of our flavor extra specs, option groups and entry points.
NAMESPACE = 'multimodal_virt'

#: Latency metrics a host sample carries, with what starts and stops the
#: clock. Order is the display order.
#:
#: ``gpu_cmd`` is a deprecated alias of ``gpu_submit``: the sample builder
#: fills it with the same histogram, so existing flavors and weights keep
#: working; new flavors should use ``gpu_submit`` or ``gpu_exec``.
LATENCY_METRICS = ('gpu_cmd', 'io', 'gpu_exec', 'gpu_submit', 'gpu_wait',
                   'gpu_queue')
METRIC_DESCRIPTIONS = {
    'gpu_cmd': 'deprecated alias of gpu_submit (same histogram)',
    'io': 'storage I/O: block request issue to completion',
    'gpu_exec': 'GPU job: dma_fence emitted (tracepoint dma_fence_emit, '
                'work handed to the GPU or host renderer) to signaled '
                '(dma_fence_signaled), kernel monotonic clock, per fence; '
                'for DRM GPU scheduler jobs of drivers that emit no fence '
                'event: run (drm_run_job) to done (drm_sched_process_job)',
    'gpu_submit': 'GPU command submission: entry to return of the '
                  'command-submission ioctls listed by exact number '
                  '(i915/xe exec, amdgpu CS, nouveau pushbuf/exec, '
                  'virtio-gpu execbuffer/transfers, msm submit); returns '
                  'once the work is queued',
    'gpu_wait': 'GPU wait: entry to return of the wait ioctls listed by '
                'exact number (syncobj waits, i915 GEM_WAIT, xe '
                'WAIT_USER_FENCE, amdgpu WAIT_CS/WAIT_FENCES, virtio-gpu '
                'WAIT, msm WAIT_FENCE); blocks until GPU work completes',
    'gpu_queue': 'GPU queue wait: a job of the DRM GPU scheduler queued on '
                 'its entity (tracepoint drm_sched_job, 6.17+ '
                 'drm_sched_job_queue, in the submitting process) to handed '
                 'to the hardware ring (drm_run_job / drm_sched_job_run), '
                 'kernel monotonic clock, per job; observable only where '
                 'the gpu-sched module is loaded',
}
METRIC_LABELS = {
    'gpu_cmd': 'GPU command submission (deprecated: gpu_submit)',
    'io': 'storage I/O',
    'gpu_exec': 'GPU job execution',
    'gpu_submit': 'GPU command submission',
    'gpu_wait': 'GPU wait',
    'gpu_queue': 'GPU queue wait',
}

#: Latency metrics measured on the GPU path: a flavor SLO on one of them
#: needs a host where that signal is observable (see
#: ``[multimodal_virt_scheduler] gpu_slo_requires_measurement``).
GPU_METRICS = ('gpu_cmd', 'gpu_exec', 'gpu_submit', 'gpu_wait', 'gpu_queue')

#: GPU signals a collector may declare observable on its host: the GPU
#: latency metrics and ``gpu_busy`` (engine busy per passthrough VF).
GPU_SIGNALS = GPU_METRICS + ('gpu_busy',)

#: Deprecated metric name -> the metric whose histogram it carries.
METRIC_ALIASES = {'gpu_cmd': 'gpu_submit'}

#: Default share of each latency metric in the weigher's blend. ``gpu_cmd``
#: carries gpu_submit's histogram, so it weighs 0 to avoid counting that
#: twice; ``gpu_wait`` measures how a program synchronises more than the
#: host, so it is informational unless an operator weighs it.
#: ``gpu_queue`` weighs 1.0: time a job waits behind other tenants' jobs
#: on a shared GPU is the contention placement can avoid, and it does not
#: overlap ``gpu_exec`` (queue wait ends where execution starts), so the
#: blend of the two is a job's latency from submission to completion.
DEFAULT_WEIGHTS = {'gpu_cmd': 0.0, 'io': 1.0, 'gpu_exec': 1.0,
                   'gpu_submit': 1.0, 'gpu_wait': 0.0, 'gpu_queue': 1.0}


def canonical_metric(metric):
    """The metric a (possibly deprecated) name stands for."""
    return METRIC_ALIASES.get(metric, metric)


#: Percentiles published and accepted in SLOs, with their fractions.
PERCENTILES = (('p50', 0.50), ('p95', 0.95), ('p99', 0.99))
PERCENTILE_NAMES = tuple(name for name, _ in PERCENTILES)
PERCENTILE_FRACTIONS = dict(PERCENTILES)

#: ``multimodal_virt:<metric>_<percentile>_us``, e.g.
#: ``multimodal_virt:io_p99_us``.
SLO_KEY_FORMAT = NAMESPACE + ':{metric}_{percentile}_us'
SLO_KEY_RE = re.compile(r'^%s:(?P<metric>%s)_(?P<percentile>%s)_us$' % (
    NAMESPACE, '|'.join(LATENCY_METRICS), '|'.join(PERCENTILE_NAMES)))


def slo_key(metric, percentile):
    """Return the flavor extra-spec key of an SLO on ``metric``."""
    return SLO_KEY_FORMAT.format(metric=metric, percentile=percentile)


def is_stale(timestamp, now, stale_after):
    """The stale rule: a sample older than ``stale_after`` seconds is stale.

    Works element-wise on numpy arrays of timestamps as well as on floats.

    :param timestamp: end of the sample's window (seconds since the epoch).
    :param now: the time of the judgement (seconds since the epoch).
    :param stale_after: ``[multimodal_virt_scheduler] stale_after``.
    """
    return (now - timestamp) > stale_after
