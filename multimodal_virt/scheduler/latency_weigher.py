"""LatencyWeigher: prefer hosts with low live GPU-command and I/O latency.

Enable it in nova.conf on the scheduler (``weight_classes`` replaces Nova's
default list, so keep Nova's weighers in it)::

    [filter_scheduler]
    weight_classes = nova.scheduler.weights.all_weighers
    weight_classes = multimodal_virt.scheduler.latency_weigher.LatencyWeigher

    [multimodal_virt_scheduler]
    percentile = p99
    gpu_cmd_weight = 1.0
    io_weight = 1.0
    weight_multiplier = 1.0

The raw weight is ``-(gpu_cmd_weight * gpu_pXX + io_weight * io_pXX +
boots_since_sample * herd_penalty)`` in microseconds; Nova normalises it
across the candidate hosts. The multiplier can be overridden per aggregate
with the ``multimodal_virt_latency_weight_multiplier`` metadata key.
"""

from nova.scheduler import utils
from nova.scheduler import weights
from oslo_config import cfg

from multimodal_virt import conf as mmv_conf
from multimodal_virt.scheduler import herd as herd_mod
from multimodal_virt.scheduler import provider as provider_mod

AGGREGATE_MULTIPLIER_KEY = 'multimodal_virt_latency_weight_multiplier'


class LatencyWeigher(weights.BaseHostWeigher):
    """Weigh hosts by blended latency percentiles plus a herd penalty.

    :param conf: ``ConfigOpts`` to read (Nova's global CONF by default).
    :param provider: a :class:`SnapshotProvider` (tests inject one).
    """

    def __init__(self, conf=None, provider=None):
        super().__init__()
        self.conf = conf if conf is not None else cfg.CONF
        mmv_conf.register_opts(self.conf)
        self._provider = (provider or
                          provider_mod.SnapshotProvider.shared(self.conf))
        self._herd = herd_mod.HerdGuard()

    def weight_multiplier(self, host_state):
        return utils.get_weight_multiplier(
            host_state, AGGREGATE_MULTIPLIER_KEY,
            self.conf.multimodal_virt_scheduler.weight_multiplier)

    def weigh_objects(self, weighed_obj_list, weight_properties):
        """Weigh every host against one snapshot read for this request."""
        snapshot = self._provider.snapshot()
        return [self._weigh(obj.obj, snapshot) for obj in weighed_obj_list]

    def _weigh_object(self, host_state, weight_properties):
        return self._weigh(host_state, self._provider.snapshot())

    def _weigh(self, host_state, snapshot):
        if not len(snapshot):
            return 0.0  # no metrics at all: do not influence placement
        host = host_state.host
        row = snapshot.row(host)
        since = (snapshot.timestamps[row] if row is not None
                 else snapshot.taken_at)
        boots = self._herd.boots_since_sample(
            host, since, getattr(host_state, 'num_instances', 0) or 0)
        return -(snapshot.base_score(host) + boots * snapshot.herd_penalty)
