"""Status rows: per-host latency, rates, score and rank as the weigher sees.

Scores come from :class:`~multimodal_virt.scheduler.snapshot.LatencySnapshot`
(the object the LatencyWeigher reads), never from a second implementation.
The weigher's raw weight is ``-(score + boots * herd_penalty)``; with no
boots since the last sample, a lower score ranks higher. Under
``stale_policy = reject`` the LatencyFilter drops stale hosts, so they get
no rank.
"""

import dataclasses

COLUMNS = (
    ('host', 'HOST'), ('source', 'SRC'), ('age', 'AGE'),
    ('gpu_exec_p50', 'EXEC p50'), ('gpu_exec_p99', 'EXEC p99'),
    ('gpu_submit_p50', 'SUBMIT p50'), ('gpu_submit_p99', 'SUBMIT p99'),
    ('gpu_queue_p99', 'QUEUE p99'),
    ('io_p50', 'IO p50'), ('io_p99', 'IO p99'),
    ('vm_exit_rate', 'EXITS/s'), ('irq_rate', 'IRQ/s'),
    ('score', 'SCORE'), ('rank', 'RANK'),
)


@dataclasses.dataclass(frozen=True)
class HostRow:
    """One line of ``multimodal-virt status`` (latencies in µs).

    GPU columns are ``gpu_exec`` (GPU job, dma_fence emit to signaled),
    ``gpu_submit`` (command-submission ioctls) and ``gpu_queue`` (DRM GPU
    scheduler queue wait, p99 only); the deprecated ``gpu_cmd`` carries
    gpu_submit's histogram and is not shown twice.
    """

    host: str
    source: str
    age_s: float
    stale: bool
    gpu_exec_p50: object
    gpu_exec_p99: object
    gpu_submit_p50: object
    gpu_submit_p99: object
    io_p50: object
    io_p99: object
    gpu_exec_events: int
    gpu_submit_events: int
    io_events: int
    vm_exit_rate: object
    irq_rate: object
    score_us: float
    rank: object
    events: tuple
    gpu_queue_p99: object = None
    gpu_queue_events: int = 0

    def to_dict(self):
        data = dataclasses.asdict(self)
        data['events'] = list(self.events)
        return data


def host_rows(samples, snapshot, now):
    """Build the ranked status rows.

    :param samples: ``{host: HostSample}`` from the store.
    :param snapshot: a ``LatencySnapshot`` of the same samples.
    :param now: current time (seconds since the epoch).
    :returns: list of :class:`HostRow`, best rank first, unranked (stale
        and rejected) hosts last.
    """
    reject_stale = snapshot.policy.stale_policy == 'reject'
    order = sorted(
        (host for host in samples
         if snapshot.row(host) is not None
         and not (reject_stale and snapshot.stale[snapshot.row(host)])),
        key=lambda host: (snapshot.base_score(host), host))
    ranks = {host: index + 1 for index, host in enumerate(order)}
    rows = []
    for host, sample in samples.items():
        row = snapshot.row(host)
        if row is None:
            continue
        rows.append(HostRow(
            host=host, source=sample.source, age_s=sample.age(now),
            stale=snapshot.stale[row],
            gpu_exec_p50=snapshot.value(row, 'gpu_exec', 'p50'),
            gpu_exec_p99=snapshot.value(row, 'gpu_exec', 'p99'),
            gpu_submit_p50=snapshot.value(row, 'gpu_submit', 'p50'),
            gpu_submit_p99=snapshot.value(row, 'gpu_submit', 'p99'),
            io_p50=snapshot.value(row, 'io', 'p50'),
            io_p99=snapshot.value(row, 'io', 'p99'),
            gpu_exec_events=_count(sample.gpu_exec),
            gpu_submit_events=_count(sample.gpu_submit),
            io_events=_count(sample.io),
            vm_exit_rate=sample.vm_exit_rate, irq_rate=sample.irq_rate,
            score_us=snapshot.base_score(host), rank=ranks.get(host),
            events=sample.events,
            gpu_queue_p99=snapshot.value(row, 'gpu_queue', 'p99'),
            gpu_queue_events=_count(sample.gpu_queue)))
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.host))


def _count(histogram):
    return histogram.count if histogram else 0


def _number(value, digits=0):
    if value is None:
        return '-'
    return '%.*f' % (digits, value)


def _age(row):
    text = '%.0fs' % row.age_s
    return text + ' STALE' if row.stale else text


def format_table(rows, percentile='p99'):
    """Render rows as a fixed-width text table.

    :param rows: list of :class:`HostRow`.
    :param percentile: the weigher's percentile, named in the footer.
    :returns: the table text, ending with a newline.
    """
    cells = [[title for _key, title in COLUMNS]]
    for row in rows:
        cells.append([
            row.host, row.source, _age(row),
            _number(row.gpu_exec_p50), _number(row.gpu_exec_p99),
            _number(row.gpu_submit_p50), _number(row.gpu_submit_p99),
            _number(row.gpu_queue_p99),
            _number(row.io_p50), _number(row.io_p99),
            _number(row.vm_exit_rate), _number(row.irq_rate),
            _number(row.score_us),
            'rejected' if row.rank is None else str(row.rank)])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = []
    for line in cells:
        lines.append('  '.join(
            cell.ljust(width) if i < 3 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths))).rstrip())
    lines.append('latencies in us; EXEC = GPU job (fence emit to signaled), '
                 'SUBMIT = GPU command submission, QUEUE = GPU queue wait '
                 '(DRM scheduler, queued to run); SCORE = weighted %s GPU + '
                 'I/O latency the LatencyWeigher ranks by (lower is better); '
                 'STALE samples are scored by stale_policy' % percentile)
    return '\n'.join(lines) + '\n'
