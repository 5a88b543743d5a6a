"""One worker thread per publisher, so a slow one never delays the others.

The collection loop hands each sample to every worker and goes on at once.
A worker holds at most one waiting sample: while its publisher is busy, a
newer sample replaces the waiting one (a stats store wants the latest
figure, not a backlog). A publish that runs over ``timeout`` is logged
(rate-limited) when it ends, and a worker found still busy past its timeout
when the next sample arrives is logged as stuck. Python cannot kill a
thread: a hung publisher keeps its worker, never the collection loop or the
other publishers.
"""

import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class PublisherWorker:
    """Publish samples with one publisher on a dedicated daemon thread.

    :param name: the publisher's entry point name (for logs).
    :param publisher: a :class:`~.base.Publisher`.
    :param timeout: callable returning the current timeout in seconds
        (re-read at every publish: SIGHUP may change it).
    :param log: a :class:`~multimodal_virt.ratelimit.RateLimitedLog`.
    :param clock: monotonic clock.
    """

    def __init__(self, name, publisher, timeout, log, clock=time.monotonic):
        self.name = name
        self.publisher = publisher
        self._timeout = timeout
        self._log = log
        self._clock = clock
        self._cond = threading.Condition()
        self._pending = None
        self._busy_since = None
        self._closing = False
        self.published = 0
        self.failed = 0
        self.replaced = 0
        self._thread = threading.Thread(
            target=self._run, name='multimodal-virt-publisher-%s' % name,
            daemon=True)
        self._thread.start()

    def submit(self, sample):
        """Queue ``sample`` (replacing a waiting one); never blocks."""
        with self._cond:
            if self._pending is not None:
                self.replaced += 1
            self._pending = sample
            busy_for = (None if self._busy_since is None
                        else self._clock() - self._busy_since)
            self._cond.notify_all()
        if busy_for is not None and busy_for > self._timeout():
            self._log.error(('publisher-stuck', self.name),
                            'Publisher %(name)s has been publishing for '
                            '%(busy).1f s (publish_timeout %(timeout).1f s); '
                            'the newest sample waits for it, the other '
                            'publishers are not affected',
                            {'name': self.name, 'busy': busy_for,
                             'timeout': self._timeout()})

    def set_log(self, log):
        """Use another rate-limited log (after a reload)."""
        self._log = log

    def idle(self):
        """True when nothing is waiting or being published."""
        with self._cond:
            return self._pending is None and self._busy_since is None

    def wait_idle(self, timeout):
        """Wait until :meth:`idle` or ``timeout`` seconds; return idle()."""
        end = time.monotonic() + timeout  # real time, whatever the clock
        with self._cond:
            while self._pending is not None or self._busy_since is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def _run(self):
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                if self._pending is None:
                    return
                sample, self._pending = self._pending, None
                self._busy_since = self._clock()
            ok = self._publish(sample)
            with self._cond:
                took = self._clock() - self._busy_since
                self._busy_since = None
                if ok:
                    self.published += 1
                else:
                    self.failed += 1
                self._cond.notify_all()
            if took > self._timeout():
                self._log.warning(('publisher-slow', self.name),
                                  'Publisher %(name)s took %(took).1f s, over '
                                  'publish_timeout %(timeout).1f s',
                                  {'name': self.name, 'took': took,
                                   'timeout': self._timeout()})

    def _publish(self, sample):
        try:
            self.publisher.publish(sample)
        except Exception as err:
            self._log.error(('publish', self.name),
                            'Publisher %(name)s failed: %(err)s; collection '
                            'continues', {'name': self.name, 'err': err})
            return False
        LOG.debug('Sample of %(host)s published by %(name)s',
                  {'host': sample.host, 'name': self.name})
        return True

    def close(self, timeout):
        """Stop after the current publish; wait up to ``timeout`` seconds.

        A sample still waiting is dropped. :returns: True if the thread
        ended (a hung publisher leaves it running as a daemon).
        """
        with self._cond:
            self._closing = True
            self._pending = None
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()
