"""One value per scheduling request, for as long as the request lives.

Nova calls a filter's ``host_passes`` and builds weights once per candidate
node, passing the same ``RequestSpec`` each time; what depends only on the
request (its parsed SLOs, the snapshot it is judged against) is computed
once and kept weakly, so it goes away with the request.
"""

import threading
import weakref

_MISSING = object()


class RequestMemo(object):
    """Remembers a value per request object.

    The request asked last is answered without a lock or a weak-dictionary
    lookup: Nova asks for all the nodes of one request in a row. A request
    that cannot be weakly referenced gets a fresh value every time.
    """

    def __init__(self):
        self._values = weakref.WeakKeyDictionary()
        self._last = None
        self._lock = threading.Lock()

    def get(self, request, compute):
        """The value remembered for ``request``, computed on first use.

        :param compute: callable taking the request; it may return
            ``None``, which is remembered like any other value. Passed per
            call, so the memo holds no reference to its owner.
        """
        last = self._last
        if last is not None and last[0]() is request:
            return last[1]
        try:
            ref = weakref.ref(request)
        except TypeError:
            return compute(request)
        with self._lock:
            value = self._values.get(request, _MISSING)
            if value is _MISSING:
                value = compute(request)
                self._values[request] = value
            self._last = (ref, value)
        return value

    def __len__(self):
        return len(self._values)
