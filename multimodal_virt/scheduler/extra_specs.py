"""Nova API validators for our flavor extra specs.

Loaded by Nova through the ``nova.api.extra_spec_validators`` entry point,
so ``openstack flavor set --property multimodal_virt:io_p99_us=abc`` (or a
misspelt key in the ``multimodal_virt`` namespace) is refused by the API.
"""

from nova.api.validation.extra_specs import base

from multimodal_virt.metrics import vocabulary
from multimodal_virt.scheduler import slo

EXTRA_SPEC_VALIDATORS = [
    base.ExtraSpecValidator(
        name=vocabulary.SLO_KEY_FORMAT,
        description=(
            'Latency SLO enforced by the multimodal-virt LatencyFilter: '
            'hosts whose live {metric} latency {percentile} (from eBPF '
            'histograms) is above the value are not chosen.'),
        value={
            'type': int,
            'min': 1,
            'max': slo.MAX_LIMIT_US,
            'description': 'Latency limit in microseconds.',
        },
        parameters=[
            {
                'name': 'metric',
                'pattern': '|'.join(vocabulary.LATENCY_METRICS),
                'description': '; '.join(
                    '%s: %s' % (metric, vocabulary.METRIC_DESCRIPTIONS[metric])
                    for metric in vocabulary.LATENCY_METRICS),
            },
            {
                'name': 'percentile',
                'pattern': '|'.join(vocabulary.PERCENTILE_NAMES),
                'description': 'Latency percentile.',
            },
        ],
    ),
]


def register():
    """Return our validators (called by Nova's validator loader)."""
    return EXTRA_SPEC_VALIDATORS
