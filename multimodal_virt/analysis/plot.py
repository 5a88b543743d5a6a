"""Per-host latency plots (``multimodal-virt status --plot FILE.png``).

matplotlib is imported inside :func:`render`, with the non-interactive Agg
backend, so nothing else in the package pays for it or needs a display.
"""

from multimodal_virt import exception
from multimodal_virt.metrics import histogram as hist
from multimodal_virt.metrics import vocabulary

#: Every latency metric but the deprecated aliases (``gpu_cmd`` would draw
#: gpu_submit's histogram twice).
METRICS = tuple((m, vocabulary.METRIC_LABELS[m])
                for m in vocabulary.LATENCY_METRICS
                if m not in vocabulary.METRIC_ALIASES)


def _label(row):
    rank = 'rejected' if row.rank is None else '#%d' % row.rank
    return '%s %s%s' % (rank, row.host, ' (stale)' if row.stale else '')


def _percentile_bars(axis, rows, samples, metric, title):
    import numpy as np

    positions = np.arange(len(rows))
    width = 0.27
    for offset, (name, fraction) in enumerate(vocabulary.PERCENTILES):
        values = []
        for row in rows:
            histogram = getattr(samples[row.host], metric)
            value = histogram.percentile(fraction) if histogram else None
            values.append(np.nan if value is None else value)
        axis.bar(positions + (offset - 1) * width, values, width, label=name)
    axis.set_yscale('log')
    axis.set_xticks(positions)
    axis.set_xticklabels([_label(r) for r in rows], rotation=25, ha='right',
                         fontsize=8)
    axis.set_ylabel('latency (us, log scale)')
    axis.set_title('%s percentiles' % title)
    axis.grid(axis='y', which='major', alpha=0.3)
    axis.legend(fontsize=8)


def _histograms(axis, rows, samples, metric, title):
    plotted = 0
    for row in rows:
        histogram = getattr(samples[row.host], metric)
        if not histogram or not histogram.count:
            continue
        total = float(histogram.count)
        lows = [hist.bucket_bounds(i)[0] or 1.0
                for i in range(len(histogram.buckets))]
        shares = [100.0 * c / total for c in histogram.buckets]
        lows.append(hist.bucket_bounds(len(histogram.buckets))[0])
        shares.append(0.0)
        axis.step(lows, shares, where='post',
                  label='%s (n=%d)' % (_label(row), histogram.count),
                  linestyle='--' if row.stale else '-')
        plotted += 1
    axis.set_xscale('log', base=2)
    axis.set_xlabel('latency bucket lower bound (us, log2)')
    axis.set_ylabel('% of events')
    axis.set_title('%s latency histograms' % title)
    axis.grid(alpha=0.3)
    if plotted:
        axis.legend(fontsize=7)
    else:
        axis.text(0.5, 0.5, 'no events', ha='center', va='center',
                  transform=axis.transAxes)


def render(rows, samples, path, title='multimodal-virt host latency'):
    """Draw percentiles and histograms of every host into a PNG.

    :param rows: status rows (:class:`~.report.HostRow`), in display order.
    :param samples: ``{host: HostSample}`` the rows were built from.
    :param path: output PNG path.
    :param title: figure title.
    :returns: ``path``.
    :raises MultimodalVirtError: if matplotlib is missing or the file
        cannot be written.
    """
    try:
        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot
    except ImportError as err:
        raise exception.MultimodalVirtError(
            'plotting needs matplotlib (pip install matplotlib): %s' % err)
    figure, axes = pyplot.subplots(2, len(METRICS),
                                   figsize=(7 * len(METRICS), 9),
                                   squeeze=False)
    try:
        for column, (metric, label) in enumerate(METRICS):
            _percentile_bars(axes[0][column], rows, samples, metric, label)
            _histograms(axes[1][column], rows, samples, metric, label)
        figure.suptitle(title)
        figure.tight_layout()
        try:
            figure.savefig(path, dpi=100)
        except OSError as err:
            raise exception.MultimodalVirtError(
                'cannot write plot %s: %s' % (path, err))
    finally:
        pyplot.close(figure)
    return path
