"""LatencyFilter: refuse hosts whose live latency is over the flavor's SLO.

Enable it in nova.conf on the scheduler::

    [filter_scheduler]
    available_filters = nova.scheduler.filters.all_filters
    available_filters = multimodal_virt.scheduler.latency_filter.LatencyFilter
    enabled_filters = ComputeFilter,...,LatencyFilter

Flavors ask for SLOs with ``multimodal_virt:<gpu_cmd|io>_<p50|p95|p99>_us``
extra specs (see :mod:`multimodal_virt.scheduler.slo`). Hosts with a stale
sample are rejected when ``[multimodal_virt_scheduler] stale_policy =
reject``; hosts with no sample pass (their latency is unknown, and a
missing store must not stop boots).
"""

from nova.scheduler import filters
from oslo_config import cfg
from oslo_log import log as logging

from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt import ratelimit
from multimodal_virt.scheduler import provider as provider_mod
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

    def filter_all(self, filter_obj_list, spec_obj):
        """Filter all hosts against one snapshot read for this request."""
        snapshot = self._provider.snapshot()
        slos = self._requested_slos(spec_obj)
        for host_state in filter_obj_list:
            if self._passes(host_state, snapshot, slos):
                yield host_state

    def host_passes(self, host_state, spec_obj):
        return self._passes(host_state, self._provider.snapshot(),
                            self._requested_slos(spec_obj))

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

    def _passes(self, host_state, snapshot, slos):
        host = host_state.host
        if slos is None:
            return False
        row = snapshot.row(host)
        if row is None:
            if slos:
                LOG.debug('%(host)s passes latency SLOs unchecked: no sample',
                          {'host': host})
            return True
        if snapshot.stale[row] and snapshot.policy.stale_policy == 'reject':
            LOG.debug('%(host)s rejected: latency sample is %(age).0f s old, '
                      'over stale_after=%(max).0f s and stale_policy=reject',
                      {'host': host,
                       'age': snapshot.taken_at - snapshot.timestamps[row],
                       'max': snapshot.policy.stale_after})
            return False
        broken = slo_mod.violations(snapshot, row, slos)
        if broken:
            slo, measured = broken[0]
            if measured is None:
                LOG.debug('%(host)s rejected: it cannot measure %(metric)s, '
                          'which the flavor SLO %(key)s needs '
                          '(gpu_slo_requires_measurement)',
                          {'host': host, 'metric': slo.metric,
                           'key': slo.key})
                return False
            LOG.debug('%(host)s rejected: %(metric)s %(pct)s latency '
                      '%(value).0f us is over the flavor SLO %(key)s='
                      '%(limit)d us',
                      {'host': host, 'metric': slo.metric,
                       'pct': slo.percentile, 'value': measured,
                       'key': slo.key, 'limit': slo.limit_us})
            return False
        return True
