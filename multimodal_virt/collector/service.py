"""The collector service: probes in, host samples out, every interval.

Lifecycle (an ``oslo.service`` service, so ``oslo_service.service.launch``
runs it and turns SIGTERM into :meth:`CollectorService.stop`):

1. ``start()`` loads the configured probes through stevedore. A probe that
   fails to load or whose ``start()`` raises is reported and skipped; the
   others keep running. When any configured probe could not start, the
   fallback probes (``procfs``) start too and fill the gaps (eBPF readings
   are preferred metric by metric).
2. Every ``interval`` a worker thread reads and resets every probe, maps
   qemu pids to instances, builds the host sample (decayed merge of the
   windows, see :mod:`~multimodal_virt.collector.sample_quality`) and hands
   it to every publisher's own worker thread without waiting for it (see
   :mod:`~multimodal_virt.collector.publishers.worker`). A failing probe
   read or publisher is logged (rate-limited) and the loop goes on.
3. ``reset()`` (SIGHUP, see :mod:`multimodal_virt.cmd.collector`) re-reads
   the configuration files and applies the mutable options (log level,
   interval, history, minimum counts, timeouts) without restarting.
4. ``stop()`` ends the loop, then stops (detaches) every probe and closes
   publishers; it is safe to call twice.
"""

import socket
import threading
import time

from oslo_log import log as logging
from oslo_service.backend import base as service_base
from stevedore import named

from multimodal_virt.collector import attribution as attribution_mod
from multimodal_virt.collector.publishers import worker as worker_mod
from multimodal_virt.collector import sample_builder
from multimodal_virt.collector import sample_quality
from multimodal_virt import exception
from multimodal_virt.metrics import vocabulary
from multimodal_virt import ratelimit
from multimodal_virt import version

LOG = logging.getLogger(__name__)

PROBE_NAMESPACE = 'multimodal_virt.probes'
PUBLISHER_NAMESPACE = 'multimodal_virt.publishers'
STOP_TIMEOUT = 30.0


def load_plugins(namespace, names, conf, what):
    """Instantiate the named plugins; report and skip the broken ones.

    :param namespace: stevedore entry point namespace.
    :param names: plugin names, in the order wanted.
    :param conf: ``ConfigOpts`` passed to each plugin's constructor.
    :param what: ``probe`` or ``publisher``, for log lines.
    :returns: list of ``(name, plugin object)``.
    """
    failed = []

    def on_load_failure(manager, entrypoint, err):
        failed.append(entrypoint.name)
        LOG.error('Cannot load %(what)s %(name)s (%(ep)s): %(err)s; '
                  'continuing without it',
                  {'what': what, 'name': entrypoint.name,
                   'ep': entrypoint.value, 'err': err})

    def on_missing(missing):
        missing = set(missing) - set(failed)
        if not missing:
            return
        LOG.error('Unknown %(what)s name(s) %(names)s: no such entry point '
                  'in %(ns)s; continuing without them',
                  {'what': what, 'names': ', '.join(sorted(missing)),
                   'ns': namespace})

    manager = named.NamedExtensionManager(
        namespace, names=list(names), invoke_on_load=True,
        invoke_args=(conf,), name_order=True,
        on_load_failure_callback=on_load_failure,
        on_missing_entrypoints_callback=on_missing)
    return [(ext.name, ext.obj) for ext in manager.extensions]


def collector_host(conf):
    """The host name samples are published under."""
    return conf.multimodal_virt_collector.host or socket.gethostname()


def describe_probes(conf):
    """Return ``[(name, description)]`` of the enabled probes (no start)."""
    options = conf.multimodal_virt_collector
    names = list(options.probes) + [n for n in options.fallback_probes
                                    if n not in options.probes]
    result = []
    for name, probe in load_plugins(PROBE_NAMESPACE, names, conf, 'probe'):
        try:
            result.append((name, probe.describe()))
        except Exception as err:
            result.append((name, 'cannot describe: %s' % err))
    return result


class CollectorService(service_base.ServiceBase):
    """Periodic collection and publishing on one compute host.

    :param conf: ``ConfigOpts`` with every multimodal-virt group registered.
    :param probes: ``[(name, Probe)]`` to use instead of loading
        ``[multimodal_virt_collector] probes`` (tests).
    :param fallback_probes: ``[(name, Probe)]`` instead of loading
        ``fallback_probes``.
    :param publishers: ``[(name, Publisher)]`` instead of loading
        ``publishers``.
    :param attributor: an :class:`~.attribution.Attributor`, or ``None`` to
        build one when ``attribution`` is enabled.
    :param clock: monotonic clock.
    """

    def __init__(self, conf, probes=None, fallback_probes=None,
                 publishers=None, attributor=None, clock=time.monotonic):
        self.conf = conf
        self.options = conf.multimodal_virt_collector
        self.host = collector_host(conf)
        self._probe_plugins = probes
        self._fallback_plugins = fallback_probes
        self._publisher_plugins = publishers
        self._attributor = attributor
        self._clock = clock
        self.probes = []
        self.publishers = []
        self._window_start = None
        self._stop_event = threading.Event()
        self._thread = None
        self._lock = threading.Lock()
        self._stopped = False
        self._log = ratelimit.RateLimitedLog(
            LOG, interval=self.options.publish_error_log_interval)
        self.history = sample_quality.DecayedHistograms(
            self.options.history_half_life)
        self._workers = []

    # probes ------------------------------------------------------------

    def _start_each(self, plugins):
        started = []
        for name, probe in plugins:
            try:
                probe.start()
            except Exception as err:
                LOG.error('Probe %(name)s failed to start: %(err)s; the '
                          'other probes keep running',
                          {'name': name, 'err': err})
                self._safe_stop(name, probe)
                continue
            LOG.info('Probe %s started', name)
            started.append((name, probe))
        return started

    def start_probes(self):
        """Load and start probes, with the procfs fallback.

        :returns: names of the running probes.
        :raises ProbeError: if no probe at all could start.
        """
        options = self.options
        plugins = self._probe_plugins
        wanted = [name for name, _p in plugins or ()]
        if plugins is None:
            wanted = list(options.probes)
            plugins = load_plugins(PROBE_NAMESPACE, wanted, self.conf,
                                   'probe')
        self.probes = self._start_each(plugins)
        running = {name for name, _p in self.probes}
        missing = [name for name in wanted if name not in running]
        if missing:
            # The fallback fills the gaps: the sample builder prefers eBPF
            # readings metric by metric, so procfs only supplies what the
            # missing eBPF probes would have measured.
            fallback = self._fallback_plugins
            if fallback is None:
                fallback = load_plugins(
                    PROBE_NAMESPACE,
                    [n for n in options.fallback_probes if n not in running],
                    self.conf, 'probe')
            if fallback:
                LOG.warning('Probe(s) %(missing)s did not start; adding '
                            'fallback probes %(fallback)s',
                            {'missing': ', '.join(missing),
                             'fallback': ', '.join(n for n, _p in fallback)})
            self.probes.extend(self._start_each(
                [(n, p) for n, p in fallback if n not in running]))
        if not self.probes:
            raise exception.ProbeError(
                'no probe could start (tried %s and fallback %s)'
                % (', '.join(options.probes) or 'none',
                   ', '.join(options.fallback_probes) or 'none'))
        self._window_start = self._clock()
        return [name for name, _p in self.probes]

    def _safe_stop(self, name, probe):
        try:
            probe.stop()
        except Exception as err:
            LOG.error('Probe %(name)s failed to stop cleanly: %(err)s',
                      {'name': name, 'err': err})

    def load_publishers(self):
        """Load the configured publishers (or the injected ones)."""
        plugins = self._publisher_plugins
        if plugins is None:
            plugins = load_plugins(PUBLISHER_NAMESPACE,
                                   self.options.publishers, self.conf,
                                   'publisher')
        self.publishers = list(plugins)
        self._workers = [
            worker_mod.PublisherWorker(
                name, publisher,
                timeout=lambda: self.options.publish_timeout, log=self._log,
                clock=self._clock)
            for name, publisher in self.publishers]
        if not self.publishers:
            LOG.warning('No publisher is configured or loadable: samples '
                        'are built but go nowhere')
        return [name for name, _p in self.publishers]

    @property
    def attributor(self):
        """The pid to instance resolver (``None`` if disabled)."""
        if self._attributor is None and self.options.attribution:
            self._attributor = attribution_mod.Attributor(
                uri=self.options.libvirt_uri, ttl=self.options.interval)
        return self._attributor

    # one window --------------------------------------------------------

    def _read_probes(self):
        readings = []
        for name, probe in self.probes:
            try:
                readings.append(probe.collect())
            except Exception as err:
                self._log.error(('collect', name),
                                'Probe %(name)s failed to collect: %(err)s',
                                {'name': name, 'err': err})
        return readings

    def _attribute(self, readings):
        pids = {pid for reading in readings
                for pid in (reading.vm_exits_by_pid or {})}
        if not pids or self.attributor is None:
            return {}
        try:
            return self.attributor.resolve(pids)
        except Exception as err:
            self._log.error('attribution', 'Per-VM attribution failed: '
                            '%s', err)
            return {}

    def collect(self):
        """Read every probe and build the sample of the window just ended.

        :returns: a :class:`~multimodal_virt.metrics.sample.HostSample`, or
            ``None`` when no probe produced a reading.
        """
        readings = self._read_probes()
        now = self._clock()
        window = now - (self._window_start or now)
        self._window_start = now
        if not readings or window <= 0:
            return None
        return sample_builder.build_sample(
            self.host, readings, window,
            attribution=self._attribute(readings),
            collector_version=version.version_string(),
            history=self.history, min_events=self.min_events(),
            max_devices=self.options.published_devices)

    def min_events(self):
        """``{percentile: minimum count}`` from the ``min_events`` option.

        Unknown percentile names are logged (rate-limited) and ignored.
        """
        wanted = dict(self.options.min_events or {})
        unknown = sorted(set(wanted) - set(vocabulary.PERCENTILE_NAMES))
        if unknown:
            self._log.warning('min_events', '[multimodal_virt_collector] '
                              'min_events names unknown percentile(s) '
                              '%(names)s (known: %(known)s); ignored',
                              {'names': ', '.join(unknown),
                               'known': ', '.join(
                                   vocabulary.PERCENTILE_NAMES)})
        return {name: int(count) for name, count in wanted.items()
                if name in vocabulary.PERCENTILE_NAMES}

    def publish(self, sample, wait=None):
        """Hand ``sample`` to every publisher's worker; failures are logged.

        :param wait: seconds to wait for the publishers to finish (``None``:
            ``publish_timeout``; 0: do not wait, as the periodic loop does).
        :returns: names of the publishers that published it within ``wait``.
        """
        before = {}
        for worker in self._workers:
            before[worker.name] = worker.published
            worker.submit(sample)
        if wait is None:
            wait = self.options.publish_timeout
        end = time.monotonic() + wait
        done = []
        for worker in self._workers:
            if (wait > 0
                    and worker.wait_idle(max(0.0, end - time.monotonic()))
                    and worker.published > before[worker.name]):
                done.append(worker.name)
        return done

    def run_once(self, wait=None):
        """Collect one window and publish it; never raises.

        :param wait: see :meth:`publish`.
        :returns: the sample, or ``None``.
        """
        try:
            sample = self.collect()
        except Exception as err:
            self._log.error('build', 'Building the host sample failed: '
                            '%s', err)
            return None
        if sample is not None:
            done = self.publish(sample, wait=wait)
            LOG.debug('Sample of %(host)s (%(source)s, %(window).2f s) '
                      'handed to %(all)s; published by %(done)s',
                      {'host': sample.host, 'source': sample.source,
                       'window': sample.window_s,
                       'all': ', '.join(n for n, _p in self.publishers)
                       or 'nothing',
                       'done': ', '.join(done) or 'none yet'})
        return sample

    # oslo.service ------------------------------------------------------

    def start(self):
        """Start probes and publishers, then the periodic worker thread."""
        self.start_probes()
        self.load_publishers()
        self._thread = threading.Thread(target=self._loop,
                                        name='multimodal-virt-collector',
                                        daemon=True)
        self._thread.start()

    def _loop(self):
        deadline = self._clock() + self.options.interval
        while not self._stop_event.wait(max(0.0, deadline - self._clock())):
            self.run_once(wait=0)
            interval = self.options.interval  # SIGHUP may change it
            deadline += interval
            now = self._clock()
            if deadline <= now or deadline > now + interval:
                deadline = now + interval  # behind, or interval shortened

    def stop(self, graceful=False):
        """Stop the loop, detach every probe, close publishers (idempotent).

        :param graceful: accepted for oslo.service; stopping is always
            graceful (the current window finishes).
        """
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT)
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            for name, probe in self.probes:
                self._safe_stop(name, probe)
            for worker in self._workers:
                if not worker.close(self.options.publish_timeout):
                    LOG.warning('Publisher %s is still busy; leaving it '
                                'behind', worker.name)
            for name, publisher in self.publishers:
                try:
                    publisher.close()
                except Exception as err:
                    LOG.warning('Closing publisher %(name)s failed: %(err)s',
                                {'name': name, 'err': err})
            if self._attributor is not None:
                self._attributor.close()
        LOG.info('Collector stopped; %d probe(s) detached', len(self.probes))

    def wait(self):
        """Block until :meth:`stop` ended the loop."""
        self._stop_event.wait()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT)

    def reset(self):
        """SIGHUP: re-read the config files and apply mutable options.

        Runs on a short-lived thread (a signal handler must not block):
        ``mutate_config_files`` re-reads the files and calls the mutate
        hooks, oslo.log's among them, which applies ``debug`` (the log
        level) and ``log_config_append``. The collector re-reads ``interval``,
        ``history_half_life``, ``min_events``, ``published_devices``,
        ``publish_timeout`` and ``publish_error_log_interval`` at every
        window. Probes and publishers keep running; options that need a
        restart (probes, publishers, host) are logged when they changed.
        """
        thread = threading.Thread(target=self.reload,
                                  name='multimodal-virt-collector-reload',
                                  daemon=True)
        thread.start()
        return thread

    def reload(self):
        """Re-read the configuration files (see :meth:`reset`)."""
        try:
            changed = self.conf.mutate_config_files()
        except Exception as err:
            LOG.error('Reloading the configuration failed: %s; keeping '
                      'the current settings', err)
            return
        self.history.half_life_s = float(self.options.history_half_life)
        self._log = ratelimit.RateLimitedLog(
            LOG, interval=self.options.publish_error_log_interval)
        for worker in self._workers:
            worker.set_log(self._log)
        LOG.info('Configuration reloaded (SIGHUP); changed mutable '
                 'options: %s', ', '.join(
                     sorted('%s.%s' % (group or 'DEFAULT', name)
                            for group, name in (changed or {})))
                 or 'none')
