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
LATENCY_METRICS = ('gpu_cmd', 'io')
METRIC_DESCRIPTIONS = {
    'gpu_cmd': 'GPU command submission: ioctl() entry to return on a GPU '
               'device node',
    'io': 'storage I/O: block request issue to completion',
}
METRIC_LABELS = {
    'gpu_cmd': 'GPU command submission',
    'io': 'storage I/O',
}

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
