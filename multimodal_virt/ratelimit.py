"""Rate-limited logging for warnings that could repeat per host per request."""

import time


class RateLimitedLog(object):
    """Emit a message for a given key at most once per ``interval`` seconds.

    :param logger: an oslo.log (or stdlib) logger.
    :param interval: minimum seconds between two messages with one key.
    :param clock: monotonic clock, injectable for tests.
    """

    MAX_KEYS = 10000

    def __init__(self, logger, interval=60.0, clock=time.monotonic):
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last = {}

    def _due(self, key):
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return False
        if len(self._last) >= self.MAX_KEYS:
            self._last.clear()  # bounded memory whatever the key churn
        self._last[key] = now
        return True

    def warning(self, key, msg, *args):
        """Log ``msg % args`` at WARNING unless ``key`` logged recently."""
        if self._due(key):
            self._logger.warning(msg, *args)
            return True
        return False

    def error(self, key, msg, *args):
        """Log ``msg % args`` at ERROR unless ``key`` logged recently."""
        if self._due(key):
            self._logger.error(msg, *args)
            return True
        return False
