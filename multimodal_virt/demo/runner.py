"""The demo: collect on this host under load, rank with Nova, explain.

1. Start the collector (``CollectorService``) on this host: the eBPF probes
   where they start, the procfs fallback otherwise, and say which.
2. Run the multimodal workload (frames + sensor packets, real I/O) while the
   collector publishes ``intervals`` windows to a file store in the output
   directory.
3. Add the recorded remote hosts, then rank every host through Nova's own
   filter and weigher handlers with a flavor carrying SLO extra specs.
4. Report the status rows, the ranking with the chosen host, the analysis
   that explains it, and a PNG plot.
"""

import glob
import os
import secrets
import stat
import threading
import time

from oslo_log import log as logging

from multimodal_virt.analysis import bottleneck
from multimodal_virt.analysis import ranking as ranking_mod
from multimodal_virt.analysis import report
from multimodal_virt import exception
from multimodal_virt.demo import progress as progress_mod
from multimodal_virt.demo import recorded
from multimodal_virt.demo import scheduling
from multimodal_virt.demo import workload as workload_mod
from multimodal_virt.stores import loader

LOG = logging.getLogger(__name__)

KVM_NODE = '/dev/kvm'
JOIN_TIMEOUT = 30.0


def _char_devices(patterns):
    found = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                if stat.S_ISCHR(os.stat(path).st_mode):
                    found.append(path)
            except OSError:
                continue
    return found


class DemoRunner(object):
    """Runs the demo once.

    :param conf: parsed ``ConfigOpts`` (every multimodal-virt group); the
        runner overrides the store, collector and probe options it needs.
    :param output_dir: directory for the store, workload files and plot.
    :param intervals: collection windows to publish.
    :param interval_s: seconds per window.
    :param ebpf: try the eBPF probes (``False``: procfs only).
    :param host: name of this host in samples (default: hostname).
    :param plot: write ``demo.png``.
    :param progress: callable taking one line of progress text.
    :param workload_options: extra keyword arguments of
        :class:`~multimodal_virt.demo.workload.Workload`.
    """

    def __init__(self, conf, output_dir, intervals=5, interval_s=2.0,
                 ebpf=True, host=None, plot=True, progress=None,
                 workload_options=None):
        if intervals < 1 or not interval_s > 0:
            raise exception.DemoError(
                'need at least 1 interval of > 0 s, got %r x %r s'
                % (intervals, interval_s))
        self.conf = conf
        self.output_dir = os.path.abspath(output_dir)
        self.stats_dir = os.path.join(self.output_dir, 'stats')
        self.work_dir = os.path.join(self.output_dir, 'workload')
        self.intervals = int(intervals)
        self.interval_s = float(interval_s)
        self.ebpf = ebpf
        self.host = host
        self.plot = plot
        self.progress = progress or (lambda line: None)
        self.workload_options = dict(workload_options or {})

    # set-up ------------------------------------------------------------

    def _prepare_dirs(self):
        try:
            os.makedirs(self.stats_dir, exist_ok=True)
            os.makedirs(self.work_dir, exist_ok=True)
            for old in glob.glob(os.path.join(self.stats_dir, '*.sample')):
                os.unlink(old)  # samples of an earlier demo run
        except OSError as err:
            raise exception.DemoError(
                'cannot prepare the demo output directory %s: %s; choose '
                'another with --output-dir' % (self.output_dir, err))

    def _gpu_standin(self):
        """``/dev/kvm`` when no GPU node matches and eBPF is wanted."""
        probes = self.conf.multimodal_virt_probes
        gpus = _char_devices(probes.gpu_device_globs)
        if gpus:
            return None, 'GPU device nodes: %s' % ', '.join(gpus[:4])
        if self.ebpf and os.path.exists(KVM_NODE):
            self.conf.set_override('gpu_device_globs', [KVM_NODE],
                                   'multimodal_virt_probes')
            # The workload's KVM_GET_API_VERSION stands in for a submit
            # ioctl: list its number, as for a driver the table lacks.
            self.conf.set_override(
                'gpu_extra_ioctls', ['submit:0x%x:kvm_get_api_version'
                                     % workload_mod.KVM_GET_API_VERSION],
                'multimodal_virt_probes')
            return KVM_NODE, ('no GPU on this host: the workload\'s ioctls '
                              'on %s stand in for GPU command submission'
                              % KVM_NODE)
        return None, 'no GPU device node: no GPU command latency here'

    def _configure(self):
        conf = self.conf
        conf.set_override('driver', 'file', 'multimodal_virt_store')
        conf.set_override('file_path', self.stats_dir,
                          'multimodal_virt_store')
        if not conf.multimodal_virt_store.signing_keys:
            # The embedded demo writes and reads its own private store in
            # one process: a key made for this run signs every sample.
            conf.set_override('signing_keys', [secrets.token_hex(32)],
                              'multimodal_virt_store')
        if self.host:
            conf.set_override('host', self.host, 'multimodal_virt_collector')
        conf.set_override('interval', self.interval_s,
                          'multimodal_virt_collector')
        conf.set_override('publishers', ['store'],
                          'multimodal_virt_collector')
        # No guests in the demo: skip libvirt lookups of qemu pids.
        conf.set_override('attribution', False, 'multimodal_virt_collector')
        if not self.ebpf:
            conf.set_override('probes', ['procfs'],
                              'multimodal_virt_collector')
            conf.set_override('fallback_probes', [],
                              'multimodal_virt_collector')
        # One snapshot for the whole ranking and its explanation.
        conf.set_override('refresh_interval', 3600.0,
                          'multimodal_virt_scheduler')

    # collection --------------------------------------------------------

    def _collect(self, collector, workload):
        with progress_mod.Phase(self.progress,
                                'starting probes (compiling and loading BPF '
                                'programs where allowed)'):
            names = collector.start_probes()
            collector.load_publishers()
        fallback = set(self.conf.multimodal_virt_collector.fallback_probes)
        mode = 'ebpf' if any(n not in fallback and n != 'procfs'
                             for n in names) else 'procfs'
        self.progress('collector on %s: %s (%s)' % (
            collector.host, 'eBPF probes' if mode == 'ebpf'
            else 'procfs fallback, eBPF unavailable or disabled',
            ', '.join(names)))
        result = {}
        thread = threading.Thread(
            target=self._run_workload, args=(workload, result),
            name='mmv-demo-workload', daemon=True)
        start = time.monotonic()
        thread.start()
        samples = []
        try:
            for index in range(1, self.intervals + 1):
                delay = start + index * self.interval_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sample = collector.run_once()
                if sample is None:
                    self.progress('collecting %d/%d intervals via %s: no '
                                  'sample built' % (index, self.intervals,
                                                    mode))
                    continue
                samples.append(sample)
                self.progress(
                    'collecting %d/%d intervals via %s (%s): %d I/O, %d '
                    'GPU-command events, io p99 %s us' % (
                        index, self.intervals, mode, ', '.join(names),
                        sample.io.count if sample.io else 0,
                        sample.gpu_cmd.count if sample.gpu_cmd else 0,
                        '%.0f' % sample.io.percentile(0.99)
                        if sample.io and sample.io.count else '-'))
        finally:
            workload.stop()
            thread.join(JOIN_TIMEOUT)
        if 'error' in result:
            raise result['error']
        if not samples:
            raise exception.DemoError(
                'the collector built no sample in %d interval(s) of %.1f s; '
                'see the probe errors above' % (self.intervals,
                                                self.interval_s))
        return mode, names, samples

    @staticmethod
    def _run_workload(workload, result):
        try:
            result['stats'] = workload.run()
        except exception.MultimodalVirtError as err:
            result['error'] = err

    # the whole demo ----------------------------------------------------

    def run(self):
        """Run the demo.

        :returns: the result as plain JSON types (see :func:`to_text`).
        :raises DemoError: when a step cannot run, saying which.
        """
        self._prepare_dirs()
        self._configure()
        standin, gpu_note = self._gpu_standin()
        self.progress(gpu_note)
        options = dict(self.workload_options)
        options.setdefault('command_node', standin)
        workload = workload_mod.Workload(
            self.work_dir, self.intervals * self.interval_s + 1.0, **options)
        self.progress(
            'workload: %.0f fps x %d KiB frames + %.0f Hz sensor packets '
            'for %.0f s in %s' % (workload.fps, workload.frame_bytes // 1024,
                                  workload.sensor_hz, workload.duration_s,
                                  self.work_dir))
        with progress_mod.Phase(self.progress, 'loading the collector'):
            from multimodal_virt.collector import service
            collector = service.CollectorService(self.conf)
        try:
            mode, probes, local_samples = self._collect(collector, workload)
        finally:
            collector.stop()
        local = local_samples[-1]

        store = loader.get_store(self.conf)
        try:
            remote = recorded.load(time.time())
            for sample in remote:
                store.put(sample)
            self.progress('published %s (%d windows) and %d recorded hosts '
                          'to the file store %s'
                          % (local.host, len(local_samples), len(remote),
                             self.stats_dir))
            samples = store.get_all()
            thresholds = bottleneck.Thresholds.from_conf(
                self.conf.multimodal_virt_analysis)
            extra_specs = thresholds.slo_extra_specs()
            with progress_mod.Phase(self.progress,
                                    "loading Nova's scheduler code"):
                scheduling.import_nova()
            self.progress('ranking %d hosts through Nova\'s '
                          'HostFilterHandler and HostWeightHandler ...'
                          % len(samples))
            decision = scheduling.rank(self.conf, sorted(samples),
                                       extra_specs, store)
        finally:
            store.close()
        return self._result(mode, probes, local, local_samples, workload,
                            samples, decision, thresholds)

    def _result(self, mode, probes, local, local_samples, workload, samples,
                decision, thresholds):
        snapshot = decision.snapshot
        now = snapshot.taken_at
        rows = report.host_rows(samples, snapshot, now)
        findings = bottleneck.analyze_all(
            samples, thresholds, now,
            self.conf.multimodal_virt_scheduler.stale_after)
        placements = ranking_mod.explain(
            decision.weighed, decision.hosts, snapshot,
            _slos(decision.extra_specs), findings)
        plot_path = None
        if self.plot:
            plot_path = os.path.join(self.output_dir, 'demo.png')
            with progress_mod.Phase(self.progress, 'drawing %s' % plot_path):
                from multimodal_virt.analysis import plot
                plot.render(rows, samples, plot_path,
                            title='multimodal-virt demo: %s and %d recorded '
                                  'hosts' % (local.host, len(samples) - 1))
        return {
            'output_dir': self.output_dir,
            'store': self.stats_dir,
            'collector': {'host': local.host, 'mode': mode,
                          'probes': list(probes),
                          'windows': len(local_samples),
                          'interval_s': self.interval_s},
            'workload': workload.stats.to_dict(),
            'local_sample': local.to_dict(),
            'percentile': thresholds.percentile,
            'flavor': {'name': scheduling.FLAVOR_NAME,
                       'extra_specs': decision.extra_specs},
            'status': [row.to_dict() for row in rows],
            'ranking': [p.to_dict() for p in placements],
            'chosen': decision.chosen,
            'analysis': {host: f.to_dict(thresholds.percentile)
                         for host, f in findings.items()},
            'plot': plot_path,
        }


def _slos(extra_specs):
    from multimodal_virt.scheduler import slo
    return slo.from_extra_specs(extra_specs)
