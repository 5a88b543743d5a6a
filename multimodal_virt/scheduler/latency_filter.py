"""LatencyFilter: refuse hosts whose live latency is over the flavor's SLO.

Enable it in nova.conf on the scheduler::

    [filter_scheduler]
    available_filters = nova.scheduler.filters.all_filters
    available_filters = multimodal_virt.scheduler.latency_filter.LatencyFilter
    enabled_filters = ComputeFilter,...,LatencyFilter

Flavors ask for SLOs with ``multimodal_virt:<metric>_<percentile>_us``
extra specs (see :mod:`multimodal_virt.scheduler.slo`). Only those flavors
are filtered: a flavor without latency SLOs passes every host, whatever the
samples say. For SLO flavors, a host whose sample is stale is rejected when
``[multimodal_virt_scheduler] stale_policy = reject``; a host with no
sample passes (its latency is unknown, and a missing store must not stop
boots). Rebuilds are not filtered (``RUN_ON_REBUILD = False``, honoured by
Nova's filter loop), so a server whose host has since gone over its SLO can
still be rebuilt in place.
"""

from nova.scheduler import filters
from oslo_config import cfg
from oslo_log import log as logging

from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt import ratelimit
from multimodal_virt.scheduler import node as node_mod
from multimodal_virt.scheduler import provider as provider_mod
from multimodal_virt.scheduler import request_memo
from multimodal_virt.scheduler import slo as slo_mod

LOG = logging.getLogger(__name__)


class LatencyFilter(filters.BaseHostFilter):
    """Pass hosts that meet the flavor's latency SLOs.

    :param conf: ``ConfigOpts`` to read (Nova's global CONF by default).
    :param provider: a :class:`SnapshotProvider` (tests inject one).
    """

    RUN_ON_REBUILD = False

    def __init__(self, conf=None, provider=None):
        super().__init__()
        self.conf = conf if conf is not None else cfg.CONF
        mmv_conf.register_opts(self.conf)
        self._provider = (provider or
                          provider_mod.SnapshotProvider.shared(self.conf))
        self._bad_spec_log = ratelimit.RateLimitedLog(LOG, interval=60.0)
        # Parsed once per request, not once per candidate host.
        self._slos_by_request = request_memo.RequestMemo()

    def host_passes(self, host_state, spec_obj):
        """Judge one host against the snapshot of this request."""
        slos = self._slos_by_request.get(spec_obj, self._requested_slos)
        if slos is None:
            return False
        if not slos:
            return True  # no latency SLO: nothing to enforce
        snapshot = self._provider.snapshot_for(spec_obj)
        return self._meets(host_state, snapshot, slos)

    def _requested_slos(self, spec_obj):
        flavor = getattr(spec_obj, 'flavor', None)
        extra_specs = getattr(flavor, 'extra_specs', None) or {}
        try:
            return slo_mod.from_extra_specs(extra_specs)
        except exception.InvalidExtraSpec as err:
            # The API validates these; a flavor that bypassed validation gets
            # no host rather than a silently ignored SLO.
            self._bad_spec_log.warning(
                getattr(flavor, 'flavorid', None),
                'Rejecting all hosts for flavor %(flavor)s: %(err)s',
                {'flavor': getattr(flavor, 'name', '?'), 'err': err})
            return None

    @staticmethod
    def _meets(host_state, snapshot, slos):
        _, row = node_mod.locate(snapshot, host_state)
        host = host_state.host
        nodename = getattr(host_state, 'nodename', None) or host
        if row is None:
            LOG.debug('%(host)s (%(node)s) passes latency SLOs unchecked: '
                      'no sample', {'host': host, 'node': nodename})
            return True
        if snapshot.stale[row] and snapshot.policy.stale_policy == 'reject':
            LOG.debug('%(host)s (%(node)s) rejected: latency sample is '
                      '%(age).0f s old, over stale_after=%(max).0f s and '
                      'stale_policy=reject',
                      {'host': host, 'node': nodename,
                       'age': snapshot.taken_at - snapshot.timestamps[row],
                       'max': snapshot.policy.stale_after})
            return False
        broken = slo_mod.violations(snapshot, row, slos)
        if broken:
            slo, measured = broken[0]
            if measured is None:
                LOG.debug('%(host)s (%(node)s) rejected: it cannot measure '
                          '%(metric)s, which the flavor SLO %(key)s needs '
                          '(gpu_slo_requires_measurement)',
                          {'host': host, 'node': nodename,
                           'metric': slo.metric, 'key': slo.key})
                return False
            LOG.debug('%(host)s (%(node)s) rejected: %(metric)s %(pct)s '
                      'latency %(value).0f us is over the flavor SLO '
                      '%(key)s=%(limit)d us',
                      {'host': host, 'node': nodename, 'metric': slo.metric,
                       'pct': slo.percentile, 'value': measured,
                       'key': slo.key, 'limit': slo.limit_us})
            return False
        return True
