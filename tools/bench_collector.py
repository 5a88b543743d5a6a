#!/usr/bin/env python3
"""Benchmark the eBPF collector against a direct-I/O workload.

Runs a direct-I/O write workload (``dd oflag=direct``) in three modes: no
tracing (baseline), with the collector's probes attached and collecting
every interval (in a child process, like the service), and with a bpftrace
one-liner doing the same block latency histogram (the peer). Every round
runs each tracer beside a baseline run of its own (baseline first in even
rounds, second in odd ones), so a throughput ratio compares two runs
seconds apart; on a shared machine whose load drifts, the median of these
paired ratios is the figure (the spread and the ratio of the medians are
printed beside it). Reports, per mode, the median throughput, the
in-kernel cost per I/O from ``kernel.bpf_stats_enabled`` (run_time_ns /
I/Os of the block programs), and the tracer's own CPU share per interval.
Ratios are printed last.

Then the in-kernel cost per GPU event (``--gpu-events``, 0 to skip), from
BPF statistics (run_time_ns / run_cnt, turned on with BPF_ENABLE_STATS),
the median over 5 batches of events:

* fence: the gpu_fence emit and signaled code (both run for every fence;
  nothing runs on dma_fence_destroy), driven with BPF_PROG_TEST_RUN through its raw_tp
  programs (no DRM driver emits fences here), the in-flight table at its
  production size. No bpftrace peer: bpftrace 0.17 has no rawtracepoint probes, its
  tracepoint programs cannot be test-run, and nothing fires dma_fence here.
* submit: the gpu_ioctl enter/exit programs on real KVM_GET_API_VERSION
  ioctls listed as a submit number, beside bpftrace timing the same ioctl
  number on the same tracepoints. Each runs on every ioctl() of the host
  (the filter) and a listed ioctl pays one enter and one exit run.

Target: <= 500 ns in kernel per fence and per submit.

Needs root, the host prepared by tools/setup-host.sh, and bpftrace.

    sudo .venv/bin/python tools/bench_collector.py --rounds 5 --count 4000
    sudo .venv/bin/python tools/bench_collector.py --rounds 0 \\
        --gpu-events 20000
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BPFTRACE_PROGRAM = (
    'tracepoint:block:block_rq_issue '
    '{ @start[args->dev, args->sector] = nsecs; } '
    'tracepoint:block:block_rq_complete '
    '/@start[args->dev, args->sector]/ '
    '{ @usecs = hist((nsecs - @start[args->dev, args->sector]) / 1000); '
    'delete(@start[args->dev, args->sector]); } '
    'interval:s:%d { print(@usecs); clear(@usecs); }')

STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled'

KVM_GET_API_VERSION = 0xAE00
BPFTRACE_SUBMIT = (
    'tracepoint:syscalls:sys_enter_ioctl /args->cmd == %d/ '
    '{ @start[tid] = nsecs; } '
    'tracepoint:syscalls:sys_exit_ioctl /@start[tid]/ '
    '{ @usecs = hist((nsecs - @start[tid]) / 1000); delete(@start[tid]); }'
    % KVM_GET_API_VERSION)


def agent(args):
    """Child mode: start the probes, collect every interval until SIGTERM."""
    from oslo_config import cfg

    from multimodal_virt import conf as mmv_conf
    from multimodal_virt.collector.bpf import probe as bpf_probe
    from stevedore import named

    conf = cfg.ConfigOpts()
    mmv_conf.register_opts(conf)
    conf([], project='multimodal-virt', default_config_files=[])
    if args.build_dir:
        conf.set_override('bpf_build_dir', args.build_dir,
                          'multimodal_virt_libbpf')
    names = args.probes.split(',')
    manager = named.NamedExtensionManager(
        bpf_probe.NAMESPACE, names, invoke_on_load=True, invoke_args=(conf,),
        name_order=True)
    probes = []
    for ext in manager:
        try:
            ext.obj.start()
            probes.append(ext.obj)
        except Exception as err:  # report and keep the others running
            print('probe %s failed: %s' % (ext.name, err), file=sys.stderr)
    running = [True]

    def stop(signum, frame):
        running[0] = False
    signal.signal(signal.SIGTERM, stop)
    ids = [i for p in probes if p.name == 'block_io'
           for i in p.loaded.prog_ids()]
    print(json.dumps({'block_prog_ids': ids}), flush=True)
    while running[0]:
        time.sleep(args.interval)
        for probe in probes:
            probe.collect()
    for probe in probes:
        probe.stop()
    return 0


def cpu_seconds(pid):
    """CPU time of all threads of a process, in seconds (schedstat, ns)."""
    total = 0
    task_dir = '/proc/%d/task' % pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, 'schedstat')) as handle:
                total += int(handle.read().split()[0])
        except OSError:
            continue  # thread exited
    return total / 1e9


def prog_stats(ids):
    """Sum of run_time_ns and run_cnt over BPF program ids (bpftool)."""
    total_ns = total_cnt = 0
    for prog_id in ids:
        info = json.loads(subprocess.run(
            ['bpftool', '-j', 'prog', 'show', 'id', str(prog_id)],
            capture_output=True, text=True, check=True).stdout)
        total_ns += info.get('run_time_ns', 0)
        total_cnt += info.get('run_cnt', 0)
    return total_ns, total_cnt


def all_prog_ids():
    out = json.loads(subprocess.run(['bpftool', '-j', 'prog', 'show'],
                                    capture_output=True, text=True,
                                    check=True).stdout)
    return {p['id']: p for p in out}


def workload(path, count, block, duration=0.0):
    """Write ``count`` blocks with O_DIRECT, again until ``duration`` s.

    :returns: ``(bytes per second, writes issued)``.
    """
    start = time.monotonic()
    writes = 0
    while True:
        subprocess.run(['dd', 'if=/dev/zero', 'of=' + path, 'bs=%d' % block,
                        'count=%d' % count, 'oflag=direct', 'conv=notrunc'],
                       check=True, capture_output=True)
        writes += count
        elapsed = time.monotonic() - start
        if elapsed >= duration:
            return writes * block / elapsed, writes


class Tracer(object):
    """A tracer child process (collector agent or bpftrace)."""

    def __init__(self, argv, ready, find_ids):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.ids = find_ids(self.proc, ready)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_collector(args):
    def find_ids(proc, ready):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError('collector agent failed: %s'
                               % proc.stderr.read())
        return json.loads(line)['block_prog_ids']
    argv = [sys.executable, os.path.abspath(__file__), '--agent',
            '--probes', args.probes, '--interval', str(args.interval)]
    if args.build_dir:
        argv += ['--build-dir', args.build_dir]
    return Tracer(argv, None, find_ids)


def start_bpftrace(args):
    def find_ids(proc, before):
        line = proc.stdout.readline()  # "Attaching N probes..."
        if not line.startswith('Attaching'):
            raise RuntimeError('bpftrace failed: %s %s'
                               % (line, proc.stderr.read()))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            new = {i: p for i, p in all_prog_ids().items()
                   if i not in before and 'block' in p.get('name', '')
                   and p.get('type') == 'tracepoint'}
            if len(new) >= 2:
                return sorted(new)
            time.sleep(0.1)
        raise RuntimeError('bpftrace programs not found')
    before = set(all_prog_ids())
    argv = [shutil.which('bpftrace'), '-e',
            BPFTRACE_PROGRAM % max(1, int(args.interval))]
    tracer = Tracer.__new__(Tracer)
    tracer.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    # Drain bpftrace's histogram output so it never blocks on a full pipe.
    tracer.ids = find_ids(tracer.proc, before)
    tracer.proc.stdout = _drain(tracer.proc.stdout)
    return tracer


def _drain(stream):
    import threading
    thread = threading.Thread(target=lambda: [None for _ in stream],
                              daemon=True)
    thread.start()
    return stream


def run_mode(mode, args, path):
    """One measured run; returns a dict of figures."""
    tracer = None
    if mode == 'collector':
        tracer = start_collector(args)
        tracer.proc.stdout = _drain(tracer.proc.stdout)
    elif mode == 'bpftrace':
        tracer = start_bpftrace(args)
    try:
        time.sleep(args.settle)
        stats0 = prog_stats(tracer.ids) if tracer else (0, 0)
        cpu0 = cpu_seconds(tracer.proc.pid) if tracer else 0.0
        wall0 = time.monotonic()
        throughput, writes = workload(path, args.count, args.block,
                                      args.duration)
        wall = time.monotonic() - wall0
        cpu = (cpu_seconds(tracer.proc.pid) - cpu0) if tracer else 0.0
        stats1 = prog_stats(tracer.ids) if tracer else (0, 0)
    finally:
        if tracer:
            tracer.stop()
    run_ns = stats1[0] - stats0[0]
    # Both block programs run once per I/O (issue, complete): count I/Os
    # from run_cnt, which includes I/O by other processes in the window.
    ios = (stats1[1] - stats0[1]) / 2.0
    return {
        'throughput': throughput,
        'writes': writes,
        'ios_traced': ios if tracer else None,
        'ns_per_io': run_ns / ios if tracer and ios else None,
        'cpu_share': cpu / wall if tracer else None,
        'cpu_ms_per_interval': (cpu / (wall / args.interval) * 1000
                                if tracer else None),
    }


def _conf(build_dir, **overrides):
    from oslo_config import cfg

    from multimodal_virt import conf as mmv_conf
    conf = cfg.ConfigOpts()
    mmv_conf.register_opts(conf)
    conf([], project='multimodal-virt', default_config_files=[])
    if build_dir:
        conf.set_override('bpf_build_dir', build_dir,
                          'multimodal_virt_libbpf')
    for name, value in overrides.items():
        conf.set_override(name, value, 'multimodal_virt_probes')
    return conf


def _per_run(before, after):
    runs = after[1] - before[1]
    return ((after[0] - before[0]) / runs if runs else None), runs


#: Batches the GPU events are split into; each program's figure is the
#: median of its per-batch ns per run, so a batch disturbed by another
#: tenant of the machine does not move it.
BATCHES = 5


def _batched(stats, work, events):
    """Per program: (median over batches of ns per run, total runs).

    :param stats: callable returning ``[(run_time_ns, run_cnt), ...]``,
        one pair per program.
    :param work: callable(n) producing ``n`` events.
    :param events: events in all.
    """
    per_batch = []
    totals = None
    size = max(1, events // BATCHES)
    done = 0
    while done < events:
        count = min(size, events - done)
        before = stats()
        work(count)
        after = stats()
        figures = [_per_run(b, a) for b, a in zip(before, after)]
        per_batch.append([ns for ns, _runs in figures])
        runs = [r for _ns, r in figures]
        totals = runs if totals is None else [t + r for t, r in
                                              zip(totals, runs)]
        done += count
    return [(median([batch[i] for batch in per_batch]), totals[i])
            for i in range(len(totals))]


#: Synthetic fence pointers: kernel direct-map addresses a slab of
#: 192-byte objects (struct dma_fence plus a driver's fields) would hand out.
FENCE_BASE = 0xffff888100000000
FENCE_STRIDE = 192


def fence_cost(args):
    """ns per fence of gpu_fence (emit + signaled), by test runs.

    The in-flight table has its production size
    (``fence_inflight_max_entries``); signaled gets the fence's stamp
    (``CLOCK_MONOTONIC``) as the production program reads it from the
    fence; emit reads the clock itself, as in production.
    """
    from multimodal_virt.collector.bpf import backend as bpf_backend
    from multimodal_virt.collector.probes import gpu_fence

    conf = _conf(args.build_dir)
    settings, max_entries = gpu_fence.synth_settings(
        conf.multimodal_virt_probes.fence_inflight_max_entries)
    max_entries['hist'] = conf.multimodal_virt_probes.max_gpu_fence_keys
    loaded = bpf_backend.LibbpfBackend(conf.multimodal_virt_libbpf).load(
        gpu_fence.SYNTH_SPEC, settings, max_entries)
    try:
        names = ('mmv_fence_emit_synth', 'mmv_fence_signaled_synth')
        fences = iter(range(args.gpu_events))

        def work(count):
            for _ in range(count):
                fence = FENCE_BASE + next(fences) * FENCE_STRIDE
                loaded.test_run(names[0], [fence, 0, 0xffffffffc0de0000])
                # Production reads the stamp the kernel put on the fence
                # (CLOCK_MONOTONIC): the synthetic signal gets one too.
                loaded.test_run(names[1], [fence, time.monotonic_ns(), 0])
        ((emit, emit_runs), (signal_, signal_runs)) = _batched(
            lambda: [loaded.run_stats(n) for n in names], work,
            args.gpu_events)
        counted = sum(sum(slots) for slots in loaded.read('hist').values())
    finally:
        loaded.close()
    return {'emit_ns': emit, 'signaled_ns': signal_,
            'per_fence_ns': (emit or 0) + (signal_ or 0),
            'runs': min(emit_runs, signal_runs), 'counted': counted}


def _ioctls(count):
    import fcntl
    fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(count):
            fcntl.ioctl(fd, KVM_GET_API_VERSION)
    finally:
        os.close(fd)


def submit_cost_ours(args):
    """ns per enter and exit run of gpu_ioctl on listed ioctls."""
    from multimodal_virt.collector.probes import gpu_ioctl

    conf = _conf(args.build_dir, gpu_device_globs=['/dev/kvm'],
                 gpu_extra_ioctls=['submit:0x%x' % KVM_GET_API_VERSION],
                 backend='libbpf')
    probe = gpu_ioctl.GpuIoctlProbe(conf)
    probe.start()
    try:
        names = ('mmv_sys_enter_ioctl', 'mmv_sys_exit_ioctl')
        ((enter, enter_runs), (exit_, _)) = _batched(
            lambda: [probe.loaded.run_stats(n) for n in names], _ioctls,
            args.gpu_events)
        counted = probe.collect().gpu_submit.count
    finally:
        probe.stop()
    return {'enter_ns': enter, 'exit_ns': exit_,
            'per_submit_ns': (enter or 0) + (exit_ or 0),
            'runs': enter_runs, 'counted': counted}


def submit_cost_bpftrace(args):
    """The same figures for bpftrace timing the same ioctl number."""
    before_ids = set(all_prog_ids())
    proc = subprocess.Popen([shutil.which('bpftrace'), '-e',
                             BPFTRACE_SUBMIT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith('Attaching'):
            raise RuntimeError('bpftrace failed: %s %s'
                               % (line, proc.stderr.read()))
        ids = {}
        deadline = time.monotonic() + 10
        while len(ids) < 2 and time.monotonic() < deadline:
            ids = {i: p for i, p in all_prog_ids().items()
                   if i not in before_ids and 'ioctl' in p.get('name', '')}
            time.sleep(0.1)
        enter = [i for i, p in ids.items() if 'enter' in p['name']]
        exit_ = [i for i, p in ids.items() if 'exit' in p['name']]
        if not enter or not exit_:
            raise RuntimeError('bpftrace ioctl programs not found: %s' % ids)
        ((enter_ns, runs), (exit_ns, _)) = _batched(
            lambda: [prog_stats(enter), prog_stats(exit_)], _ioctls,
            args.gpu_events)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    return {'enter_ns': enter_ns, 'exit_ns': exit_ns,
            'per_submit_ns': (enter_ns or 0) + (exit_ns or 0), 'runs': runs}


def gpu_event_costs(args):
    """In-kernel cost per GPU event; prints a table, returns the figures."""
    from multimodal_virt.collector.bpf import libbpf

    stats_fd = libbpf.enable_stats()
    try:
        figures = {'fence': fence_cost(args),
                   'submit': submit_cost_ours(args)}
        if shutil.which('bpftrace'):
            figures['submit_bpftrace'] = submit_cost_bpftrace(args)
    finally:
        os.close(stats_fd)

    def fmt(value):
        return '-' if value is None else '%.0f' % value
    fence, ours = figures['fence'], figures['submit']
    peer = figures.get('submit_bpftrace')
    print('GPU events: %d per kind; in-kernel ns per event (run_time_ns / '
          'run_cnt), target <= 500' % args.gpu_events)
    print('%-28s %10s %12s %8s' % ('event', 'ours ns', 'bpftrace ns',
                                   'ratio'))
    print('%-28s %10s %12s %8s' % ('fence (emit + signaled)',
                                   fmt(fence['per_fence_ns']), 'n/a', '-'))
    ratio = (ours['per_submit_ns'] / peer['per_submit_ns']
             if peer and peer['per_submit_ns'] else None)
    print('%-28s %10s %12s %8s' % (
        'submit ioctl (enter + exit)', fmt(ours['per_submit_ns']),
        fmt(peer['per_submit_ns']) if peer else '-',
        '%.2f' % ratio if ratio else '-'))
    print('  fence: emit %s ns, signaled %s ns over %d test runs each; %d '
          'of %d fences counted' % (
              fmt(fence['emit_ns']), fmt(fence['signaled_ns']),
              fence['runs'], fence['counted'],
              args.gpu_events))
    print('  submit (ours): enter %s ns over %d runs (every ioctl on the '
          'host), exit %s ns; %d of %d listed ioctls counted' % (
              fmt(ours['enter_ns']), ours['runs'], fmt(ours['exit_ns']),
              ours['counted'], args.gpu_events))
    if peer:
        print('  submit (bpftrace): enter %s ns over %d runs, exit %s ns' % (
            fmt(peer['enter_ns']), peer['runs'], fmt(peer['exit_ns'])))
    return figures


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--count', type=int, default=2000,
                        help='direct writes per dd invocation')
    parser.add_argument('--block', type=int, default=4096)
    parser.add_argument('--duration', type=float, default=5.0,
                        help='seconds per run (dd repeated); several '
                             'intervals, so the CPU share is measured')
    parser.add_argument('--interval', type=float, default=1.0,
                        help='collection interval, seconds')
    parser.add_argument('--settle', type=float, default=0.5,
                        help='seconds between attach and workload')
    parser.add_argument('--probes', default='block_io,gpu_ioctl,kvm_exit,irq')
    parser.add_argument('--build-dir')
    parser.add_argument('--dir', default='/var/tmp',
                        help='directory for the workload file (real disk)')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--gpu-events', type=int, default=20000,
                        help='fences and submit ioctls for the per-event '
                             'cost (0: skip)')
    parser.add_argument('--agent', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agent:
        return agent(args)
    if os.geteuid() != 0:
        parser.error('run as root (BPF and kernel.bpf_stats_enabled)')
    gpu = gpu_event_costs(args) if args.gpu_events else None
    if args.rounds <= 0:
        if args.json:
            with open(args.json, 'w') as handle:
                json.dump({'gpu_events': gpu}, handle, indent=2)
        return 0
    modes = ['baseline', 'collector']
    if shutil.which('bpftrace'):
        modes.append('bpftrace')
    with open(STATS_SYSCTL) as handle:
        old_stats = handle.read().strip()
    results = {mode: [] for mode in modes}
    tracers = modes[1:]
    paired = {mode: [] for mode in tracers}
    workdir = tempfile.mkdtemp(prefix='mmv-bench-', dir=args.dir)
    path = os.path.join(workdir, 'direct.bin')
    try:
        with open(STATS_SYSCTL, 'w') as handle:
            handle.write('1')
        workload(path, args.count, args.block)  # warm-up, allocates file
        for index in range(args.rounds):
            for mode in tracers[index % len(tracers):] + \
                    tracers[:index % len(tracers)]:
                # A baseline run right beside every tracer run, first in
                # one round and second in the next: each ratio compares
                # two runs seconds apart, so drift in the shared machine's
                # load cancels out (their median is printed last).
                pair = (('baseline', mode) if index % 2 == 0
                        else (mode, 'baseline'))
                for which in pair:
                    results[which].append(run_mode(which, args, path))
                paired[mode].append(results[mode][-1]['throughput'] /
                                    results['baseline'][-1]['throughput'])
    finally:
        with open(STATS_SYSCTL, 'w') as handle:
            handle.write(old_stats)
        shutil.rmtree(workdir, ignore_errors=True)

    summary = {}
    print('%-10s %14s %12s %10s %16s' % ('mode', 'MB/s (median)',
                                         'ns per I/O', 'CPU %',
                                         'CPU ms/interval'))
    for mode in modes:
        figures = {key: median([r[key] for r in results[mode]])
                   for key in results[mode][0]}
        summary[mode] = figures

        def fmt(value, spec):
            return '-' if value is None else spec % value
        print('%-10s %14s %12s %10s %16s' % (
            mode, fmt(figures['throughput'] / 1e6, '%.2f'),
            fmt(figures['ns_per_io'], '%.0f'),
            fmt(figures['cpu_share'] and figures['cpu_share'] * 100, '%.2f'),
            fmt(figures['cpu_ms_per_interval'], '%.2f')))
    base = summary['baseline']['throughput']
    ratios = {'%s/baseline' % mode: median(paired[mode]) for mode in tracers}
    print('runs: %d rounds x %.0f s of direct writes of %d bytes, '
          'interval %.1f s; each tracer run paired with a baseline run' % (
              args.rounds, args.duration, args.block, args.interval))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'modes': summary, 'ratios': ratios,
                       'paired_ratios': paired, 'runs': results,
                       'gpu_events': gpu}, handle, indent=2)
    print('throughput ratios: median of the paired per-round ratios '
          '[lowest, highest]; ratio of the medians (target collector >= '
          '0.99; in-kernel target <= 1000 ns per I/O):')
    for mode in tracers:
        print('  throughput %s/baseline: %.3f [%.3f, %.3f]; medians %.3f' % (
            mode, ratios['%s/baseline' % mode], min(paired[mode]),
            max(paired[mode]), summary[mode]['throughput'] / base))
    return 0


if __name__ == '__main__':
    sys.exit(main())
