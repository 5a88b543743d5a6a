"""Latency snapshots kept current by a background refresher.

A refresher thread reads the stats store in one batched call every
``refresh_interval`` seconds, builds a vectorised
:class:`~multimodal_virt.scheduler.snapshot.LatencySnapshot` and swaps it in
with one reference assignment. Scheduling requests only read that
reference: none of them waits on store I/O or holds a lock across it.

The thread is created with the ``threading`` module as the scheduler runs
it: a green thread when nova-scheduler runs under eventlet's monkey
patching, a native thread in Nova's native threading mode.

The refresh itself (reading, verifying and scoring every node's sample)
runs in a child process by default (``refresh_worker``, see
:mod:`~multimodal_virt.scheduler.refresh_worker`); nova-scheduler only turns
the arrays it answers into the snapshot. Where a refresh runs in this
process (the option off, the child failed, a store handed in), it hands
the interpreter over between chunks of its work (see :func:`_pace`), so
requests that arrive during a refresh are not delayed by more than one
chunk.

When the store fails, the last samples read are kept and the snapshot is
rebuilt from them, so they age into the staleness policy instead of
vanishing. A host whose sample disappears from the store (a memcached key
that expired) is remembered with its last sample for ``forget_after``
seconds, so a dead host stays stale instead of turning into a host with no
sample.

Nova instantiates the filter and the weigher separately; both ask
:meth:`SnapshotProvider.shared` for the provider of their config object, so
a scheduler process runs one refresher, and both plugins see the same
snapshot for a request (:meth:`SnapshotProvider.snapshot_for`).
"""

import threading
import time
import weakref

from oslo_log import log as logging

from multimodal_virt import ratelimit
from multimodal_virt.scheduler import refresh_worker
from multimodal_virt.scheduler import request_memo
from multimodal_virt.scheduler import snapshot as snapshot_mod
from multimodal_virt.scheduler import store_reader

LOG = logging.getLogger(__name__)

# Between two refreshes the loop always pauses, so a zero interval cannot
# spin and, under eventlet, other green threads always get to run.
_MIN_PAUSE = 0.01


class SnapshotProvider(object):
    """Holds the current :class:`LatencySnapshot` and refreshes it.

    :param conf: ``ConfigOpts`` with the multimodal-virt groups registered.
    :param store: a store to use instead of loading ``[..._store] driver``.
    :param clock: wall clock (sample ages), injectable for tests.
    """

    # Weak: a provider lives as long as a plugin holds it; the registry
    # only lets the filter and the weigher of one process find each other.
    _shared = weakref.WeakValueDictionary()
    _shared_lock = threading.Lock()

    def __init__(self, conf, store=None, clock=time.time):
        self.conf = conf
        self._store_fixed = store is not None
        self._reader = store_reader.StoreReader(conf, store)
        self._refresh_worker = None
        self._worker_lock = threading.Lock()
        self._closed = False
        self._clock = clock
        self._snapshot = None
        self._per_request = request_memo.RequestMemo()
        self._start_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._wakeup = None
        self._warn = ratelimit.RateLimitedLog(LOG, interval=60.0)

    @classmethod
    def shared(cls, conf):
        """Return the process-wide provider for ``conf`` with its refresher.

        The refresher starts here, when Nova loads the plugins, so the first
        snapshot is usually ready before the first scheduling request.
        """
        with cls._shared_lock:
            provider = cls._shared.get(id(conf))
            if provider is None or provider.conf is not conf:
                provider = cls(conf)
                cls._shared[id(conf)] = provider
        provider.start()
        return provider

    @property
    def _options(self):
        return self.conf.multimodal_virt_scheduler

    def _policy(self):
        return snapshot_mod.ScoringPolicy.from_conf(self._options)

    def snapshot(self):
        """Return the current snapshot; never reads the store.

        Before the first refresh completes this is an empty snapshot: no
        latency data, so every host passes and weighs the same.
        """
        current = self._snapshot
        if current is None:
            return snapshot_mod.LatencySnapshot({}, self._policy(),
                                                self._clock())
        return current

    def snapshot_for(self, request):
        """The snapshot one scheduling request sees, for all of its hosts.

        :param request: the request's ``RequestSpec`` (any weak-referable
            object that lives as long as the request).
        :returns: the snapshot current when the request first asked; the
            filter and the weigher of that request get the same one.
        """
        return self._per_request.get(request, self._first_snapshot)

    def _first_snapshot(self, request):
        """What a request gets the first time it asks: the current one."""
        return self.snapshot()

    def refresh(self):
        """Read the store once and swap in a new snapshot.

        The refresher's job; one-shot commands (the demo) call it directly.
        Never raises: a failing store keeps the last samples, which age.

        :returns: the new snapshot.
        """
        with self._refresh_lock:
            try:
                fresh = self._read_and_build(self._clock())
            except Exception as err:  # a bug in building: keep serving
                self._warn.warning(
                    'build', 'Latency snapshot not rebuilt, scheduling with '
                    'the previous one: %(err)s', {'err': err})
                return self.snapshot()
            self._snapshot = fresh
        return fresh

    def _read_and_build(self, now):
        """One store read and one snapshot build: the only store I/O.

        The store verifies and decodes the refresh in bulk; a node whose
        sample vanished or was refused keeps its last good one for
        ``forget_after`` seconds (at least ``stale_after``), so a dead host
        stays stale instead of passing as a node with no sample. With
        ``refresh_worker`` on, a child process does the reading and
        scoring and this process only keeps the result; if the child
        fails, this refresh runs here.
        """
        policy = self._policy()
        retain_s = store_reader.retain_seconds(self.conf)
        if (self._options.refresh_worker and not self._store_fixed
                and not self._closed):
            try:
                arrays = self._worker().compute(now, policy, retain_s)
                return snapshot_mod.LatencySnapshot(arrays, policy, now,
                                                    pace=_pace)
            except refresh_worker.WorkerFailed as err:
                if self._closed:  # stopped with its provider meanwhile
                    return self.snapshot()
                self._warn.warning(
                    'worker', 'Latency refresh worker failed, reading the '
                    'store in nova-scheduler this time: %(err)s',
                    {'err': err})
        batch = self._reader.read(now, retain_s, pace=_pace)
        return snapshot_mod.LatencySnapshot(batch, policy, now, pace=_pace)

    def _worker(self):
        """The refresh worker for the current store options.

        :raises WorkerFailed: once the provider is closed.
        """
        options = store_reader.store_options(self.conf)
        with self._worker_lock:
            if self._closed:
                raise refresh_worker.WorkerFailed('the provider is closed')
            worker = self._refresh_worker
            if worker is None or worker.store_options != options:
                if worker is not None:
                    worker.close()
                worker = refresh_worker.RefreshWorker(
                    options, self._options.refresh_timeout)
                self._refresh_worker = worker
            worker.timeout = self._options.refresh_timeout
            return worker

    def start(self):
        """Start the background refresher (idempotent)."""
        with self._start_lock:
            if self._wakeup is not None:
                return
            with self._worker_lock:
                self._closed = False
            self._wakeup = threading.Event()
            thread = threading.Thread(
                target=_refresh_loop, args=(weakref.ref(self), self._wakeup),
                name='multimodal-virt-snapshot-refresher', daemon=True)
            # The thread holds the provider weakly: when the plugins drop it,
            # the thread wakes and ends.
            weakref.finalize(self, self._wakeup.set)
            thread.start()

    def close(self):
        """Stop the refresher (it ends at its next wake-up) and the worker."""
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.set()
        with self._worker_lock:
            self._closed = True
            worker, self._refresh_worker = self._refresh_worker, None
        if worker is not None:
            worker.close()


def _pace():
    """Let scheduling requests run between chunks of a refresh.

    A refresh is CPU work (verifying and decoding every sample) that would
    otherwise hold the interpreter for its whole length: in native
    threading mode a request thread would share the GIL with it, under
    eventlet no request would run at all. Sleeping 0 s releases the GIL
    (native threads) or yields to the hub (eventlet) at every chunk, so a
    request waits for at most one chunk of a refresh.
    """
    time.sleep(0)


def _refresh_loop(provider_ref, wakeup):
    """Refresh every ``refresh_interval`` while the provider lives."""
    while True:
        provider = provider_ref()
        if provider is None or provider._wakeup is not wakeup:
            return
        started = time.monotonic()
        try:
            provider.refresh()
        except Exception:  # refresh() logs store errors; this is a bug
            LOG.exception('Latency snapshot refresh failed')
        interval = provider._options.refresh_interval
        del provider
        elapsed = time.monotonic() - started
        wakeup.wait(max(interval - elapsed, _MIN_PAUSE))
