"""Snapshot refreshes computed in a child process of nova-scheduler.

A refresh reads, verifies and scores every compute node's sample: CPU work
that grows with the number of nodes. Run in nova-scheduler's own
interpreter it competes with scheduling requests for the GIL (native
threads) or the hub (eventlet), and its file and socket calls convoy
behind request threads. The provider therefore hands each refresh to one
long-lived child process (``python -m
multimodal_virt.scheduler.refresh_worker``) over a pipe and only turns the
arrays it sends back into a snapshot.

The child holds the store connection and the decoder's memory of each
node's last good sample across refreshes, exactly as the in-process path
does (:class:`~multimodal_virt.scheduler.store_reader.StoreReader`). Its
warnings (refused samples, an unreadable store) are sent back with each
answer and logged by nova-scheduler under their own logger names. It
exits when the pipe from nova-scheduler closes.

Frames, both ways: ``<QI`` (body length, JSON header length), the JSON
header, then the raw arrays the header lists. Only JSON and numeric
arrays cross the pipe; the store's signing keys are sent once, over the
pipe, never on a command line.
"""

import dataclasses
import importlib
import json
import logging as std_logging
import os
import signal
import struct
import subprocess
import sys
import time
import weakref

import numpy as np
from oslo_log import log as logging

from multimodal_virt.metrics import vocabulary

LOG = logging.getLogger(__name__)

_FRAME = struct.Struct('<QI')
#: Largest frame either side accepts (a 100,000-node answer is ~20 MB).
MAX_FRAME_BYTES = 1 << 30
_READ_CHUNK = 1 << 20


def _green_patcher():
    """eventlet's patcher when this process is monkey patched, else None.

    Only a process that imported eventlet can be patched by it, so this
    never imports eventlet itself.
    """
    patcher = sys.modules.get('eventlet.patcher')
    if patcher is not None and patcher.is_monkey_patched('thread'):
        return patcher
    return None


def _original(name):
    """The module ``name`` without eventlet's patches.

    The pipe is read and written with the unpatched calls, in a native
    thread under eventlet (see :func:`_call`): eventlet's hub never sees
    its fds, so a recycled fd number cannot confuse it.
    """
    patcher = _green_patcher()
    if patcher is None:
        return importlib.import_module(name)
    return patcher.original(name)


class WorkerFailed(Exception):
    """The refresh worker could not answer (start, crash, timeout)."""


def _send(fd, header, arrays=()):
    """Write one frame: ``header`` (a dict) and ``arrays`` (ndarrays)."""
    blobs = [np.ascontiguousarray(array).tobytes() for array in arrays]
    head = json.dumps(header, separators=(',', ':')).encode('utf-8')
    data = b''.join([_FRAME.pack(len(head) + sum(map(len, blobs)),
                                 len(head)), head] + blobs)
    write = _original('os').write
    view = memoryview(data)
    while view:
        view = view[write(fd, view):]


def _read_exact(fd, size, deadline):
    """Read ``size`` bytes; ``deadline`` (monotonic) or None for no limit."""
    readv, wait = _original('os').readv, _original('select').select
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not wait([fd], [], [], remaining)[0]:
                raise WorkerFailed('no answer within the refresh timeout')
        count = readv(fd, [view[done:done + _READ_CHUNK]])
        if not count:
            raise EOFError('pipe closed')
        done += count
    return buffer


def _receive(fd, deadline=None):
    """Read one frame: ``(header dict, body bytes after the header)``."""
    total, head_len = _FRAME.unpack(_read_exact(fd, _FRAME.size, deadline))
    if total > MAX_FRAME_BYTES or head_len > total:
        raise WorkerFailed('malformed frame (%d bytes, header %d)'
                           % (total, head_len))
    body = memoryview(_read_exact(fd, total, deadline))
    return json.loads(bytes(body[:head_len])), body[head_len:]


def _array_specs(arrays):
    """Names and dtypes of a :class:`SnapshotArrays`' arrays, in order."""
    specs = [('timestamps', '<f8'), ('stale', '|b1'), ('scores', '<f8')]
    specs += [('values/%s/%s' % key, '<f8') for key in arrays.values]
    specs += [('observable/%s' % metric, '|b1')
              for metric in arrays.observable]
    return specs


def _encode_arrays(arrays):
    """Header fields and array list for one answer."""
    specs = _array_specs(arrays)
    columns = [arrays.timestamps, arrays.stale, arrays.scores]
    columns += list(arrays.values.values())
    columns += list(arrays.observable.values())
    header = {'keys': arrays.keys, 'arrays': specs,
              'neutral_score': arrays.neutral_score,
              'worst_score': arrays.worst_score,
              'rejected': {key: str(reason)
                           for key, reason in arrays.rejected.items()}}
    return header, [np.asarray(column, dtype) for column, (_, dtype)
                    in zip(columns, specs)]


def _decode_arrays(header, body):
    """The :class:`SnapshotArrays` of one answer (checked against ours)."""
    from multimodal_virt.scheduler import snapshot

    keys = header['keys']  # JSON strings: the child sends store keys
    if not isinstance(keys, list):
        raise WorkerFailed('answer has no list of keys')
    rows = len(keys)
    percentiles = set(vocabulary.PERCENTILE_NAMES)
    columns, offset = {}, 0
    for name, dtype in header['arrays']:
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype('<f8'), np.dtype('|b1')):
            raise WorkerFailed('unexpected array type %s' % dtype)
        end = offset + rows * dtype.itemsize
        if end > len(body):
            raise WorkerFailed('answer shorter than its header says')
        columns[name] = np.frombuffer(body, dtype, rows, offset)
        offset = end
    values, observable = {}, {}
    for name, column in columns.items():
        kind, _, rest = name.partition('/')
        if kind == 'values':
            metric, _, percentile = rest.partition('/')
            if (metric in vocabulary.LATENCY_METRICS
                    and percentile in percentiles):
                values[(metric, percentile)] = column
        elif kind == 'observable' and rest in vocabulary.GPU_METRICS:
            observable[rest] = column
    try:
        return snapshot.SnapshotArrays(
            keys=keys, timestamps=columns['timestamps'],
            stale=columns['stale'], scores=columns['scores'], values=values,
            observable=observable,
            neutral_score=float(header['neutral_score']),
            worst_score=float(header['worst_score']),
            rejected=dict(header['rejected']))
    except KeyError as err:
        raise WorkerFailed('answer lacks %s' % err)


def _call(func, *args):
    """Run a blocking pipe exchange without stalling nova-scheduler.

    Under eventlet it runs in a native thread (``eventlet.tpool``) and the
    calling green thread waits cooperatively; in native threading mode it
    runs here (the pipe calls release the GIL).
    """
    if _green_patcher() is not None:
        return importlib.import_module('eventlet.tpool').execute(func, *args)
    return func(*args)


class RefreshWorker(object):
    """nova-scheduler's side: starts the child and asks it for refreshes.

    :param store_options: ``{name: value}`` of ``[multimodal_virt_store]``
        (see :func:`~.store_reader.store_options`); a new set of options
        needs a new worker.
    :param timeout: seconds an answer may take before the child is killed.
    """

    def __init__(self, store_options, timeout):
        self.store_options = store_options
        self.timeout = timeout
        self._child = None
        self._finalizer = None

    def compute(self, now, policy, retain_s):
        """One refresh in the child: read, verify, decode and score.

        :param policy: a :class:`~.snapshot.ScoringPolicy`.
        :returns: a :class:`~.snapshot.SnapshotArrays`.
        :raises WorkerFailed: the child did not answer; it is stopped and
            the next call starts a new one.
        """
        request = {'now': now, 'retain_s': retain_s,
                   'policy': dataclasses.asdict(policy)}
        try:
            child = self._started()
            header, body = _call(child.exchange, request, self.timeout)
        except (OSError, EOFError, ValueError, WorkerFailed) as err:
            self.close()
            raise WorkerFailed(str(err) or type(err).__name__)
        for name, level, message in header.get('logs', ()):
            logging.getLogger(name).log(level, '%s', message)
        if 'error' in header:
            raise WorkerFailed(header['error'])
        return _decode_arrays(header, body)

    def _started(self):
        if self._child is not None and self._child.alive():
            return self._child
        self.close()
        self._child = _Child()
        # The child exits when its pipe closes: close it when this object
        # goes (without waiting: a finaliser may run in any thread).
        self._finalizer = weakref.finalize(self, self._child.stop, False)
        _call(self._child.send, {'store': self.store_options})
        LOG.info('Started the latency refresh worker (pid %d)',
                 self._child.pid)
        return self._child

    @property
    def pid(self):
        """The child's process id, ``None`` when none runs."""
        return None if self._child is None else self._child.pid

    def close(self):
        """Stop the child (the next refresh starts another)."""
        child, self._child = self._child, None
        if self._finalizer is not None:
            self._finalizer.detach()  # it would keep the stopped child
            self._finalizer = None
        if child is not None:
            child.stop()


class _Child(object):
    """One child process and the two pipes to it (raw, blocking fds)."""

    def __init__(self):
        request_r, self._request_w = os.pipe()
        self._answer_r, answer_w = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, '-m', __name__], stdin=request_r,
                stdout=answer_w, close_fds=True)
        except OSError as err:
            for fd in (self._request_w, self._answer_r):
                os.close(fd)
            raise WorkerFailed('cannot start the refresh worker: %s' % err)
        finally:
            os.close(request_r)
            os.close(answer_w)
        self.pid = self._process.pid
        self._closed = False
        # Held while a thread uses the fds: they are closed only by a
        # thread holding it, so a number is never reused under a reader.
        # A native lock: taken by eventlet's native pool threads.
        self._busy = _original('_thread').allocate_lock()

    def alive(self):
        return not self._closed and self._process.poll() is None

    def send(self, message):
        with self._busy:
            self._check_open()
            _send(self._request_w, message)

    def exchange(self, request, timeout):
        """Send one request, read its answer within ``timeout`` seconds."""
        with self._busy:
            self._check_open()
            try:
                _send(self._request_w, request)
                return _receive(self._answer_r, time.monotonic() + timeout)
            finally:
                if self._closed:  # stopped meanwhile (killed): our turn
                    self._close_fds()

    def _check_open(self):
        if self._closed:
            self._close_fds()
            raise WorkerFailed('the refresh worker was stopped')

    def _close_fds(self):
        for fd in (self._request_w, self._answer_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._request_w = self._answer_r = -1

    def stop(self, wait=True):
        """Close the pipes; with ``wait``, reap the child (killed if it
        lingers). While another thread is in an exchange the child is
        killed instead, and that thread closes the pipes when it sees it.
        """
        self._closed = True
        if self._busy.acquire(blocking=False):
            try:
                if self._request_w >= 0:
                    self._close_fds()
            finally:
                self._busy.release()
        else:
            self._process.kill()
        if not wait:
            return
        try:
            self._process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class _Forward(std_logging.Handler):
    """Keeps the child's log records to send with the next answer."""

    def __init__(self):
        super().__init__(std_logging.INFO)
        self.records = []

    def emit(self, record):
        if len(self.records) < 1000:
            self.records.append((record.name, record.levelno,
                                 self.format(record)))


def _serve(in_fd, out_fd):
    """The child's loop: one answer per request until the pipe closes."""
    from oslo_config import cfg

    from multimodal_virt import conf as mmv_conf
    from multimodal_virt.scheduler import snapshot
    from multimodal_virt.scheduler import store_reader

    forward = _Forward()
    forward.setFormatter(std_logging.Formatter('%(message)s'))
    root = std_logging.getLogger()
    root.addHandler(forward)
    root.setLevel(std_logging.INFO)
    reader = None
    while True:
        try:
            request, _ = _receive(in_fd)
        except (EOFError, WorkerFailed, ValueError):
            return
        if 'store' in request:
            conf = cfg.ConfigOpts()
            mmv_conf.register_opts(conf)
            conf([], project='multimodal-virt', default_config_files=[])
            for name, value in request['store'].items():
                conf.set_override(name, value, 'multimodal_virt_store')
            reader = store_reader.StoreReader(conf)
            continue
        try:
            now = float(request['now'])
            policy = snapshot.ScoringPolicy(**request['policy'])
            batch = reader.read(now, float(request['retain_s']))
            header, arrays = _encode_arrays(
                snapshot.compute(batch, policy, now))
        except Exception as err:  # a bug: say it, keep serving
            header, arrays = {'error': '%s: %s' % (type(err).__name__,
                                                   err)}, []
        header['logs'], forward.records = forward.records, []
        _send(out_fd, header, arrays)


def main():
    """Entry point of the child: frames on stdin, answers on stdout."""
    # Ctrl-C on a foreground nova-scheduler reaches its whole process
    # group: the child ends when its parent does (its pipe closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out_fd = os.dup(1)
    os.dup2(2, 1)  # a stray print can never corrupt the answers
    _serve(0, out_fd)


if __name__ == '__main__':
    main()
