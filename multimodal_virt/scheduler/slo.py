"""Latency SLOs requested by a flavor's extra specs.

``multimodal_virt:<metric>_<percentile>_us = <integer>``, where metric is
``gpu_cmd`` (GPU command-submission latency) or ``io`` (block I/O latency)
and percentile is ``p50``, ``p95`` or ``p99``. Example::

    openstack flavor set gpu.video \\
        --property multimodal_virt:gpu_cmd_p99_us=500 \\
        --property multimodal_virt:io_p99_us=2000
"""

import dataclasses

from multimodal_virt import exception
from multimodal_virt.metrics import vocabulary

MAX_LIMIT_US = 3600 * 10 ** 6


@dataclasses.dataclass(frozen=True)
class Slo:
    """One latency objective: ``metric``'s ``percentile`` <= ``limit_us``."""

    metric: str
    percentile: str
    limit_us: int

    @property
    def key(self):
        return vocabulary.slo_key(self.metric, self.percentile)


def parse_limit(key, value):
    """Parse an SLO value: a positive integer number of microseconds.

    :raises InvalidExtraSpec: naming the extra spec and what was expected.
    """
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) <= MAX_LIMIT_US:
        raise exception.InvalidExtraSpec(
            'extra spec %s=%r must be a whole number of microseconds '
            'between 1 and %d' % (key, value, MAX_LIMIT_US))
    return int(text)


def from_extra_specs(extra_specs):
    """Return the tuple of :class:`Slo` a flavor asks for.

    Keys of other namespaces are ignored; a malformed value of ours raises
    :class:`~multimodal_virt.exception.InvalidExtraSpec`.
    """
    slos = []
    for key, value in (extra_specs or {}).items():
        match = vocabulary.SLO_KEY_RE.match(key)
        if match:
            slos.append(Slo(match.group('metric'), match.group('percentile'),
                            parse_limit(key, value)))
    return tuple(sorted(slos, key=lambda s: s.key))


def violations(snapshot, row, slos):
    """The SLOs a host breaks, as the LatencyFilter judges them.

    A percentile the host has no events for cannot break an SLO.

    :param snapshot: a :class:`~.snapshot.LatencySnapshot`.
    :param row: the host's row in ``snapshot`` (``snapshot.row(host)``).
    :param slos: tuple of :class:`Slo`.
    :returns: list of ``(slo, measured µs)``.
    """
    broken = []
    for slo in slos:
        measured = snapshot.value(row, slo.metric, slo.percentile)
        if measured is not None and measured > slo.limit_us:
            broken.append((slo, measured))
    return broken
