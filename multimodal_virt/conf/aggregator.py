"""Options for the stats aggregator (``[multimodal_virt_aggregator]``).

Imports nothing beyond oslo.config.
"""

from oslo_config import cfg

from multimodal_virt.conf import groups

GROUP = cfg.OptGroup(
    'multimodal_virt_aggregator',
    title='multimodal-virt aggregator',
    help='The stats aggregator service (multimodal-virt-aggregator), which '
         'verifies every compute node\'s sample once and publishes them as '
         'one signed aggregate for every nova-scheduler to read.')

OPTS = [
    cfg.FloatOpt('interval',
                 default=5.0,
                 min=0.1,
                 mutable=True,
                 help="""
Seconds from the start of one aggregation to the start of the next. Each
reads and verifies every sample in the store and publishes the aggregate.

Related options:

* ``[multimodal_virt_store] aggregate_max_age`` should be a few intervals.
"""),
]


def register_opts(conf):
    groups.register(conf, GROUP, OPTS)


def list_opts():
    return [(GROUP, OPTS)]
