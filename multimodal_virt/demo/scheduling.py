"""Rank hosts the way nova-scheduler does, in-process.

Real ``nova.scheduler.host_manager.HostState`` objects go through Nova's own
``HostFilterHandler`` (with our LatencyFilter) and ``HostWeightHandler``
(with our LatencyWeigher), with a ``RequestSpec`` whose flavor carries the
SLO extra specs, after Nova's extra spec validators accepted them. Both
plugins share one snapshot provider over the demo's store, as they do
inside a scheduler process. Nova is imported only when this runs.
"""

import dataclasses
import warnings

from oslo_utils import uuidutils

from multimodal_virt import exception

FLAVOR_NAME = 'demo.multimodal'


@dataclasses.dataclass(frozen=True)
class Ranking:
    """Nova's decision.

    :param weighed: ``[(host, normalised weight)]``, best first.
    :param hosts: every host given to the filters.
    :param snapshot: the ``LatencySnapshot`` both plugins read.
    :param extra_specs: the flavor's extra specs.
    """

    weighed: list
    hosts: list
    snapshot: object
    extra_specs: dict

    @property
    def chosen(self):
        return self.weighed[0][0] if self.weighed else None


def validate_extra_specs(extra_specs):
    """Check extra specs with Nova's validators (ours are loaded by entry
    point ``nova.api.extra_spec_validators``).

    :raises InvalidExtraSpec: naming the spec Nova refused.
    """
    from nova.api.validation.extra_specs import validators
    for key, value in sorted(extra_specs.items()):
        try:
            validators.validate(key, value)
        except Exception as err:  # webob HTTP errors carry the reason
            raise exception.InvalidExtraSpec(
                'flavor extra spec %s=%s refused by Nova: %s'
                % (key, value, getattr(err, 'explanation', err)))


def import_nova():
    """Import the Nova modules :func:`rank` uses (seconds on first call)."""
    with warnings.catch_warnings():
        # Nova's dependencies announce eventlet's deprecation on import;
        # nothing here runs on eventlet.
        warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
        from nova import objects  # noqa: F401
        from nova.scheduler import filters  # noqa: F401
        from nova.scheduler import host_manager  # noqa: F401
        from nova.scheduler import weights  # noqa: F401


def rank(conf, hosts, extra_specs, store):
    """Filter and weigh ``hosts`` through Nova's handlers.

    :param conf: ``ConfigOpts`` with the multimodal-virt groups.
    :param hosts: host names (compute hosts as Nova knows them).
    :param extra_specs: flavor extra specs (the SLOs).
    :param store: the stats store the plugins read.
    :returns: a :class:`Ranking`.
    """
    import_nova()
    from nova import objects
    from nova.scheduler import filters as nova_filters
    from nova.scheduler import host_manager
    from nova.scheduler import weights as nova_weights

    from multimodal_virt.scheduler import latency_filter
    from multimodal_virt.scheduler import latency_weigher
    from multimodal_virt.scheduler import provider as provider_mod

    objects.register_all()
    validate_extra_specs(extra_specs)
    provider = provider_mod.SnapshotProvider(conf, store=store)
    provider.refresh()  # one-shot: read the store now, no refresher
    latency = latency_filter.LatencyFilter(conf, provider=provider)
    weigher = latency_weigher.LatencyWeigher(conf, provider=provider)
    cell = uuidutils.generate_uuid()
    states = [host_manager.HostState(host, host, cell)
              for host in sorted(hosts)]
    spec = objects.RequestSpec(
        instance_uuid=uuidutils.generate_uuid(), num_instances=1,
        flavor=objects.Flavor(name=FLAVOR_NAME, flavorid=FLAVOR_NAME,
                              extra_specs=dict(extra_specs)))
    passed = nova_filters.HostFilterHandler().get_filtered_objects(
        [latency], states, spec) or []
    weighed = nova_weights.HostWeightHandler().get_weighed_objects(
        [weigher], passed, spec)
    return Ranking(weighed=[(w.obj.host, w.weight) for w in weighed],
                   hosts=[s.host for s in states],
                   snapshot=provider.snapshot(),
                   extra_specs=dict(extra_specs))
