"""Recorded remote hosts for the demo (``recorded_hosts.json``).

The file holds valid ``HostSample`` documents and a ``recorded_at`` time.
At demo time each sample keeps its histograms and rates and gets a new
timestamp ``now - (recorded_at - timestamp)``, so fresh hosts are fresh
and the deliberately stale one stays exactly as old as it was recorded.
"""

import dataclasses
import json
import os

from multimodal_virt import exception
from multimodal_virt.metrics import sample as sample_mod

DEFAULT_PATH = os.path.join(os.path.dirname(__file__), 'recorded_hosts.json')


def load(now, path=DEFAULT_PATH):
    """Return the recorded samples re-timed to ``now``.

    :param now: demo time (seconds since the epoch).
    :param path: recorded hosts JSON file.
    :returns: list of :class:`~multimodal_virt.metrics.sample.HostSample`.
    :raises DemoError: naming the file and what is wrong with it.
    """
    try:
        with open(path, 'rb') as handle:
            document = json.load(handle)
    except (OSError, ValueError) as err:
        raise exception.DemoError('cannot read recorded hosts %s: %s'
                                  % (path, err))
    if not isinstance(document, dict) or not isinstance(
            document.get('hosts'), list) or not isinstance(
            document.get('recorded_at'), (int, float)):
        raise exception.DemoError(
            'recorded hosts %s: expected an object with "recorded_at" '
            '(seconds) and a "hosts" list of samples' % path)
    recorded_at = float(document['recorded_at'])
    samples = []
    for index, data in enumerate(document['hosts']):
        try:
            sample = sample_mod.HostSample.from_dict(data)
        except exception.InvalidSample as err:
            raise exception.DemoError('recorded hosts %s, entry %d: %s'
                                      % (path, index, err))
        age = max(0.0, recorded_at - sample.timestamp)
        samples.append(dataclasses.replace(sample, timestamp=now - age))
    return samples
