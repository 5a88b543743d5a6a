"""Explain a scheduling decision made by Nova's filter and weigher handlers.

Nova decides; this module only says why, from the same snapshot the
LatencyFilter and LatencyWeigher read: which flavor SLO a rejected host
broke, and how far each passing host's blended score is from the chosen
one, with the dominating path from the bottleneck analysis.
"""

import dataclasses

from multimodal_virt.analysis import bottleneck
from multimodal_virt.scheduler import slo as slo_mod


@dataclasses.dataclass(frozen=True)
class Placement:
    """One host's outcome.

    :param host: host name.
    :param rank: 1 for the chosen host; ``None`` if filtered out.
    :param weight: Nova's normalised weight (``None`` if filtered out).
    :param score_us: the snapshot's blended score (µs) for the host.
    :param explanation: one sentence.
    """

    host: str
    rank: object
    weight: object
    score_us: object
    explanation: str

    def to_dict(self):
        return dataclasses.asdict(self)


def slo_violations(snapshot, host, slos):
    """Flavor SLOs ``host`` breaks in ``snapshot`` (as the filter checks).

    :param snapshot: a ``LatencySnapshot``.
    :param host: host name.
    :param slos: tuple of :class:`~multimodal_virt.scheduler.slo.Slo`.
    :returns: list of ``(slo, measured µs)``.
    """
    row = snapshot.row(host)
    if row is None:
        return []
    return slo_mod.violations(snapshot, row, slos)


def _rejection(snapshot, host, slos, finding):
    row = snapshot.row(host)
    reasons = [('%s not measurable here, %s needs it' % (slo.metric, slo.key)
                if measured is None else
                '%s %s %.0f us > %s=%d' % (slo.metric, slo.percentile,
                                           measured, slo.key, slo.limit_us))
               for slo, measured in slo_violations(snapshot, host, slos)]
    if row is not None and snapshot.stale[row] and \
            snapshot.policy.stale_policy == 'reject':
        reasons.append('sample %.0f s old, stale_policy=reject'
                       % (snapshot.taken_at - snapshot.timestamps[row]))
    if not reasons:
        return 'rejected by the filters (no latency SLO broken)'
    text = 'rejected by LatencyFilter: ' + '; '.join(reasons)
    if finding is not None and finding.dominant:
        text += ' (dominant path: %s)' % bottleneck.LABELS[finding.dominant]
    return text


def _passed(snapshot, host, rank, best_score, finding):
    score = snapshot.base_score(host)
    row = snapshot.row(host)
    if row is None:
        text = ('no sample: scored as %s by missing_policy'
                % snapshot.policy.missing_policy)
    elif snapshot.stale[row]:
        text = ('sample %.0f s old, so stale_policy=%s scores it %.0f us '
                '(the %s)' % (snapshot.taken_at - snapshot.timestamps[row],
                              snapshot.policy.stale_policy, score,
                              'worst fresh score'
                              if snapshot.policy.stale_policy == 'penalize'
                              else 'median fresh score'))
    else:
        text = 'blended %s score %.0f us' % (snapshot.policy.percentile,
                                             score)
    if rank == 1:
        fresh = row is not None and not snapshot.stale[row]
        text = ('chosen: lowest ' if fresh else 'chosen: ') + text
    else:
        text += ', %.0f us worse than the chosen host' % (score - best_score)
    if finding is not None and finding.dominant and row is not None:
        over = any(p.over for p in finding.pressures)
        share = 'dominant path' if over else 'largest share'
        text += '; %s, %s: %s' % (finding.verdict, share,
                                  bottleneck.LABELS[finding.dominant])
    return text


def explain(weighed, all_hosts, snapshot, slos, findings):
    """Explain Nova's ranking.

    :param weighed: ``[(host, weight)]`` in Nova's order (best first), as
        ``HostWeightHandler.get_weighed_objects`` returned them.
    :param all_hosts: every host given to the filters.
    :param snapshot: the ``LatencySnapshot`` the plugins read.
    :param slos: the flavor's SLOs.
    :param findings: ``{host: Finding}`` (may lack hosts).
    :returns: list of :class:`Placement`, ranked hosts first.
    """
    result = []
    best_score = snapshot.base_score(weighed[0][0]) if weighed else 0.0
    for rank, (host, weight) in enumerate(weighed, 1):
        result.append(Placement(
            host=host, rank=rank, weight=weight,
            score_us=snapshot.base_score(host),
            explanation=_passed(snapshot, host, rank, best_score,
                                findings.get(host))))
    passed = {host for host, _weight in weighed}
    for host in sorted(set(all_hosts) - passed):
        result.append(Placement(
            host=host, rank=None, weight=None,
            score_us=(snapshot.base_score(host)
                      if snapshot.row(host) is not None else None),
            explanation=_rejection(snapshot, host, slos,
                                   findings.get(host))))
    return result
