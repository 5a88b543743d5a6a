"""Progress lines for the demo's long, otherwise silent steps."""

import threading
import time


class Phase:
    """Announce a step, tick while it runs, say how long it took.

    Used as a context manager around a step that prints nothing by itself
    (importing Nova, loading BPF programs, drawing the plot)::

        with Phase(progress, "loading Nova's scheduler"):
            scheduling.import_nova()

    prints ``loading Nova's scheduler ...``, then ``  ... still loading
    Nova's scheduler (2 s)`` every ``tick_s`` seconds from a background
    thread, and ``loading Nova's scheduler: done in 4.3 s`` (or ``failed
    after``) at the end.

    :param progress: callable taking one line of text.
    :param what: the step, as a lower-case phrase.
    :param tick_s: seconds between "still" lines.
    """

    def __init__(self, progress, what, tick_s=1.0):
        self.progress = progress
        self.what = what
        self.tick_s = tick_s
        self._done = threading.Event()
        self._thread = None
        self._start = None

    def _tick(self):
        while not self._done.wait(self.tick_s):
            self.progress('  ... still %s (%.0f s)' % (
                self.what, time.monotonic() - self._start))

    def __enter__(self):
        self._start = time.monotonic()
        self.progress('%s ...' % self.what)
        self._thread = threading.Thread(target=self._tick, daemon=True,
                                        name='mmv-demo-progress')
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._done.set()
        self._thread.join()
        elapsed = time.monotonic() - self._start
        self.progress('%s: %s %.1f s' % (
            self.what, 'failed after' if exc_type else 'done in', elapsed))
        return False
