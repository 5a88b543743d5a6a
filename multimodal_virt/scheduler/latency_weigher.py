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
    # Nova's default weighers add up to about 9 (RAM, disk, CPU, I/O ops,
    # PCI, hypervisor version, metrics, soft (anti-)affinity): at 1.0 the
    # latency ranking is outvoted by free RAM and CPU.
    weight_multiplier = 10.0

The raw weight of a compute node is ``-(gpu_cmd_weight * gpu_pXX +
io_weight * io_pXX + boots_since_sample * herd_penalty)`` in microseconds;
Nova normalises it across the candidate nodes. The multiplier can be
overridden per aggregate with the
``multimodal_virt_latency_weight_multiplier`` metadata key. Each node is
weighed by its own sample (see :mod:`multimodal_virt.scheduler.node`).
"""

import math

from nova.scheduler import utils
from nova.scheduler import weights
from oslo_config import cfg

from multimodal_virt import conf as mmv_conf
from multimodal_virt.scheduler import herd as herd_mod
from multimodal_virt.scheduler import node as node_mod
from multimodal_virt.scheduler import provider as provider_mod

AGGREGATE_MULTIPLIER_KEY = 'multimodal_virt_latency_weight_multiplier'


class LatencyWeigher(weights.BaseHostWeigher):
    """Weigh nodes by blended latency percentiles plus a herd penalty.

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
        self._multiplier = None

    def weight_multiplier(self, host_state):
        default = self._multiplier
        if default is None:
            default = self.conf.multimodal_virt_scheduler.weight_multiplier
        if not getattr(host_state, 'aggregates', None):
            return default  # no aggregate can override it
        return utils.get_weight_multiplier(
            host_state, AGGREGATE_MULTIPLIER_KEY, default)

    def weigh_objects(self, weighed_obj_list, weight_properties):
        """Weigh every node against the snapshot of this request."""
        # Nova asks weight_multiplier() per node right after this call;
        # read the option once per request, not once per node.
        self._multiplier = (
            self.conf.multimodal_virt_scheduler.weight_multiplier)
        snapshot = self._provider.snapshot_for(weight_properties)
        if not len(snapshot):
            # No metrics at all: do not influence placement.
            return [0.0] * len(weighed_obj_list)
        # Nodes without a sample count their boots over windows of
        # stale_after seconds, so their count neither grows forever nor
        # resets at every refresh.
        window = snapshot.policy.stale_after
        no_sample_since = math.floor(snapshot.taken_at / window) * window
        # Parallel lists of floats, strings and existing states: no
        # container per node for the garbage collector to count.
        states, keys, base, since = [], [], [], []
        scores, timestamps = snapshot.scores, snapshot.timestamps
        missing = snapshot.missing_score()
        locate = node_mod.locate
        for weighed in weighed_obj_list:
            state = weighed.obj
            key, row = locate(snapshot, state)
            states.append(state)
            keys.append(key)
            if row is None:
                base.append(missing)
                since.append(no_sample_since)
            else:
                base.append(scores[row])
                since.append(timestamps[row])
        return self._herd.weigh(weight_properties, states, keys, base, since,
                                self._herd.penalty(snapshot, snapshot.policy))

    def _weigh_object(self, host_state, weight_properties):
        wrapped = weights.WeighedHost(host_state, 0.0)
        return self.weigh_objects([wrapped], weight_properties)[0]
