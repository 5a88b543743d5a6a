"""Sample quality: decayed merge of windows and minimum event counts.

A quiet host completes a few dozen requests per window; the p99 of one
window is then its slowest request, and ranks flip with no change in load.
Two rules make a published percentile mean something:

* **Decayed merge.** The published histogram of a metric is the sum of
  every window's histogram, each weighted by ``0.5 ** (age / half_life)``
  (``age``: seconds from the end of that window to the end of the newest).
  Its *effective window* is the same weighted sum of window lengths, so a
  steady host with windows of ``w`` seconds settles at
  ``w / (1 - 0.5 ** (w / half_life))`` seconds. Weighted bucket counts are
  published rounded to integers (a bucket whose weight fell below one half
  is gone). ``half_life = 0`` publishes each window alone.
* **Minimum count.** A percentile of a histogram holding fewer than
  ``min_events[percentile]`` events is *insufficient*: it is published (the
  count and the minimum are in the sample) and the reader treats it as not
  measured, neutral for the host.

Pure logic: no BPF, no I/O.
"""

import math

from multimodal_virt.metrics import histogram as hist


class DecayedHistograms:
    """Exponentially decayed per-key histograms across windows.

    :param half_life_s: seconds after which a window's events weigh half;
        0 disables the merge.
    """

    def __init__(self, half_life_s):
        self.half_life_s = float(half_life_s)
        self._buckets = {}
        self._windows = {}

    def _factor(self, window_s):
        if self.half_life_s <= 0:
            return 0.0
        return 0.5 ** (window_s / self.half_life_s)

    def update(self, key, histogram, window_s):
        """Fold one window into ``key``; return the published histogram.

        :param key: metric name or any hashable (``('io', 'vda')``).
        :param histogram: the window's
            :class:`~multimodal_virt.metrics.histogram.LatencyHistogram`,
            or ``None`` when nothing measured it (the history still ages).
        :param window_s: length of the window in seconds (> 0).
        :returns: ``(histogram or None, effective window in seconds)``;
            ``None`` when ``histogram`` is ``None``.
        """
        if histogram is None and key not in self._buckets:
            return None, 0.0
        factor = self._factor(window_s)
        old = [value * factor for value in self._buckets.get(key, ())]
        effective = self._windows.get(key, 0.0) * factor
        if histogram is not None:
            size = max(len(old), len(histogram.buckets))
            old += [0.0] * (size - len(old))
            for index, count in enumerate(histogram.buckets):
                old[index] += count
            effective += window_s
        self._buckets[key] = old
        self._windows[key] = effective
        if histogram is None:
            return None, effective
        return rounded(old), effective

    def forget(self, key):
        """Drop the history of ``key`` (a device that is gone)."""
        self._buckets.pop(key, None)
        self._windows.pop(key, None)

    def keys(self):
        """Keys with a history."""
        return set(self._buckets)


def rounded(weights):
    """LatencyHistogram of weighted bucket counts rounded to integers."""
    counts = [int(math.floor(value + 0.5)) for value in weights]
    while counts and counts[-1] == 0:
        counts.pop()
    return hist.LatencyHistogram(tuple(counts))
