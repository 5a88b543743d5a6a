"""Herd guard: boots placed on a host since its last sample count against it.

Between two samples the scheduler is blind to the load its own placements
add, so a burst of boots would all pick the one "best" host. Nova's
``HostState.consume_from_request`` increments ``num_instances`` for each
placement; counting that growth since the host's newest sample gives the
boots that sample has not seen yet (the approach of Koordinator's and
Crane's load-aware schedulers for pods assigned since the last metric
update).
"""

import threading


class HerdGuard(object):
    """Tracks ``num_instances`` growth per host since its latest sample.

    :param max_hosts: bound on tracked hosts; the table is cleared past it.
    """

    def __init__(self, max_hosts=100000):
        self._max_hosts = max_hosts
        self._baselines = {}
        self._lock = threading.Lock()

    def boots_since_sample(self, host, sample_timestamp, num_instances):
        """Return how many instances ``host`` gained since its sample.

        :param host: host name.
        :param sample_timestamp: timestamp of the host's current sample (or
            of the snapshot, for hosts without one); a new value resets the
            count.
        :param num_instances: ``HostState.num_instances`` now.
        :returns: a non-negative integer.
        """
        with self._lock:
            baseline = self._baselines.get(host)
            if baseline is None or baseline[0] != sample_timestamp:
                if len(self._baselines) >= self._max_hosts:
                    self._baselines.clear()
                self._baselines[host] = (sample_timestamp, num_instances)
                return 0
            return max(0, num_instances - baseline[1])
