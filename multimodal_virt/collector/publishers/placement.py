"""Publish latency tiers as traits on the compute node resource provider.

Each window's GPU command and I/O latency (at ``tier_percentile``) maps to
one of three tiers, published as one ``CUSTOM_MULTIMODAL_VIRT_*_LAT_*``
trait per metric. The publisher:

* writes only when a tier changes (it remembers what it last wrote);
* adds and removes only its own six tier traits, keeping every other trait
  of the provider;
* updates with the provider generation and retries once on a 409
  generation conflict;
* keeps the current tier when a window has no events for a metric, and
  drops the metric's trait when the metric is not measured at all.

Operators enable it with ``[multimodal_virt_collector] publishers =
store,placement`` and keystoneauth options in ``[multimodal_virt_placement]``.
"""

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from oslo_log import log as logging

from multimodal_virt.collector.publishers import base
from multimodal_virt import exception
from multimodal_virt.metrics import vocabulary

LOG = logging.getLogger(__name__)

GROUP = 'multimodal_virt_placement'
MICROVERSION = '1.6'  # traits API
TIERS = ('LOW', 'MEDIUM', 'HIGH')
TRAIT_PREFIX = 'CUSTOM_MULTIMODAL_VIRT_'
#: metric -> (sample attribute, trait infix, threshold option prefix)
METRICS = {
    'gpu_cmd': ('gpu_cmd', 'GPU_CMD_LAT', 'gpu_cmd_latency'),
    'io': ('io', 'IO_LAT', 'io_latency'),
}
#: sentinel: leave the metric's trait as it is.
KEEP = object()


def trait_name(metric, tier):
    """Return the trait of ``metric`` at ``tier``."""
    return '%s%s_%s' % (TRAIT_PREFIX, METRICS[metric][1], tier)


def owned_traits(metric=None):
    """The tier traits this publisher owns (of one metric, or all)."""
    metrics = [metric] if metric else list(METRICS)
    return {trait_name(m, tier) for m in metrics for tier in TIERS}


def tier_for(value_us, low_max_us, medium_max_us):
    """Return ``LOW``, ``MEDIUM`` or ``HIGH`` for a latency.

    :param value_us: latency in microseconds.
    :param low_max_us: highest latency of the LOW tier.
    :param medium_max_us: highest latency of the MEDIUM tier.
    """
    if value_us <= low_max_us:
        return 'LOW'
    if value_us <= medium_max_us:
        return 'MEDIUM'
    return 'HIGH'


def desired_tiers(sample, options):
    """Per metric: the tier trait wanted, ``None`` (no trait) or KEEP.

    :param sample: a :class:`~multimodal_virt.metrics.sample.HostSample`.
    :param options: the ``[multimodal_virt_collector]`` group.
    """
    fraction = vocabulary.PERCENTILE_FRACTIONS[options.tier_percentile]
    wanted = {}
    for metric, (attribute, _infix, prefix) in METRICS.items():
        histogram = getattr(sample, attribute)
        if histogram is None:
            wanted[metric] = None
        elif histogram.count == 0:
            wanted[metric] = KEEP
        else:
            wanted[metric] = trait_name(metric, tier_for(
                histogram.percentile(fraction),
                getattr(options, prefix + '_low_max_us'),
                getattr(options, prefix + '_medium_max_us')))
    return wanted


def merge_traits(current, wanted):
    """Return the provider's new trait set.

    :param current: set of the provider's traits now.
    :param wanted: :func:`desired_tiers` output.
    :returns: ``current`` with only our own traits changed.
    """
    result = set(current)
    for metric, trait in wanted.items():
        if trait is KEEP:
            continue
        result -= owned_traits(metric)
        if trait is not None:
            result.add(trait)
    return result


def validate_thresholds(options):
    """:raises CollectorConfigError: unless low <= medium for each metric."""
    for _attribute, _infix, prefix in METRICS.values():
        low = getattr(options, prefix + '_low_max_us')
        medium = getattr(options, prefix + '_medium_max_us')
        if low > medium:
            raise exception.CollectorConfigError(
                '[multimodal_virt_collector] %s_low_max_us (%s) must not be '
                'above %s_medium_max_us (%s)' % (prefix, low, prefix, medium))


class PlacementPublisher(base.Publisher):
    """``placement`` publisher: latency-tier traits on the compute node RP.

    :param conf: ``ConfigOpts`` with ``[multimodal_virt_collector]`` and
        ``[multimodal_virt_placement]`` registered.
    :param host: resource provider name; default
        ``[multimodal_virt_placement] resource_provider_name``, else the
        sample's host.
    """

    name = 'placement'

    def __init__(self, conf, host=None):
        super().__init__(conf)
        self.options = conf.multimodal_virt_collector
        validate_thresholds(self.options)
        self.provider_name = (host or
                              conf.multimodal_virt_placement
                              .resource_provider_name)
        self._adapter = None
        self._provider_uuid = None
        self._written = None  # {metric: trait or None} last in Placement
        self._known_traits = set()

    @property
    def adapter(self):
        """keystoneauth adapter built from ``[multimodal_virt_placement]``."""
        if self._adapter is None:
            auth = ks_loading.load_auth_from_conf_options(self.conf, GROUP)
            session = ks_loading.load_session_from_conf_options(
                self.conf, GROUP, auth=auth)
            self._adapter = ks_loading.load_adapter_from_conf_options(
                self.conf, GROUP, session=session, auth=auth,
                default_microversion=MICROVERSION, raise_exc=False)
        return self._adapter

    def _request(self, method, url, **kwargs):
        try:
            return self.adapter.request(url, method, **kwargs)
        except ks_exc.ClientException as err:
            raise exception.PublishError('Placement %s %s failed: %s'
                                         % (method, url, err))

    @staticmethod
    def _error(response, what):
        return exception.PublishError(
            '%s: Placement answered HTTP %s: %s'
            % (what, response.status_code, response.text[:300]))

    def provider_uuid(self, name):
        """Find (and cache) the UUID of the provider called ``name``."""
        if self._provider_uuid is None:
            response = self._request('GET', '/resource_providers',
                                     params={'name': name})
            if response.status_code != 200:
                raise self._error(response, 'listing provider %s' % name)
            providers = response.json().get('resource_providers', [])
            if not providers:
                raise exception.PublishError(
                    'no resource provider named %r in Placement; set '
                    '[multimodal_virt_placement] resource_provider_name to '
                    'the hypervisor hostname' % name)
            self._provider_uuid = providers[0]['uuid']
        return self._provider_uuid

    def _ensure_traits(self, traits):
        for trait in sorted(set(traits) - self._known_traits):
            response = self._request('PUT', '/traits/%s' % trait)
            if response.status_code not in (201, 204):
                raise self._error(response, 'creating trait %s' % trait)
            self._known_traits.add(trait)

    def _get_traits(self, uuid):
        response = self._request(
            'GET', '/resource_providers/%s/traits' % uuid)
        if response.status_code == 404:
            self._provider_uuid = None  # deleted or re-created: look again
        if response.status_code != 200:
            raise self._error(response, 'reading traits of %s' % uuid)
        body = response.json()
        return set(body['traits']), body['resource_provider_generation']

    def _unchanged(self, wanted):
        if self._written is None:
            return False
        return all(trait is KEEP or self._written.get(metric) == trait
                   for metric, trait in wanted.items())

    def publish(self, sample):
        """Update the tier traits if a tier changed.

        :returns: ``True`` if Placement was written.
        :raises PublishError: when Placement is unreachable or refuses.
        """
        wanted = desired_tiers(sample, self.options)
        if self._unchanged(wanted):
            return False
        uuid = self.provider_uuid(self.provider_name or sample.host)
        for attempt in (1, 2):
            current, generation = self._get_traits(uuid)
            new = merge_traits(current, wanted)
            if new != current:
                self._ensure_traits(new - current)
                response = self._request(
                    'PUT', '/resource_providers/%s/traits' % uuid,
                    json={'traits': sorted(new),
                          'resource_provider_generation': generation})
                if response.status_code == 409 and attempt == 1:
                    LOG.info('Provider %s changed while setting latency '
                             'tiers (generation conflict); retrying', uuid)
                    continue
                if response.status_code != 200:
                    raise self._error(response, 'updating traits of %s'
                                      % uuid)
                LOG.info('Latency tier traits of %(uuid)s: %(traits)s',
                         {'uuid': uuid,
                          'traits': sorted(new & owned_traits()) or 'none'})
            self._written = {metric: next(iter(new & owned_traits(metric)),
                                          None)
                             for metric in METRICS}
            return new != current
