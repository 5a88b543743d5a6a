#!/usr/bin/env python3
"""Benchmark LatencyFilter+LatencyWeigher against Nova's Metrics pair.

Builds N real ``nova.scheduler.host_manager.HostState`` objects, publishes
one sample per host to a real file store, and times full scheduling passes
through Nova's own filter and weight handlers:

* ours: LatencyFilter + LatencyWeigher (each reading the store through its
  own SnapshotProvider, as Nova instantiates them separately);
* Nova's: MetricsFilter + MetricsWeigher with two metrics per host
  (``cpu.percent`` and ``cpu.iowait.percent``), the same two-signal blend.

Three figures for ours: a warm pass (snapshot cached: what most passes
pay), a refresh pass whose store read finds every sample unchanged (the
file store's stat cache), and a cold refresh pass where every sample
changed since the last read (full parse + validation + vectorised scoring).
The amortised figure assumes the configured refresh interval and the given
scheduling rate. Ratios are ours / Nova's; the last line is the 10,000-host
amortised ratio. Not a test: no assertions, just numbers.

Usage: tools/bench_scheduler.py [--hosts 1000 10000] [--passes 20]
"""

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid

from oslo_config import cfg
from oslo_utils import timeutils

from nova import config as nova_config  # noqa: F401 (registers Nova opts)
from nova import objects
from nova.scheduler import filters as nova_filters
from nova.scheduler.filters import metrics_filter
from nova.scheduler import host_manager
from nova.scheduler import weights as nova_weights
from nova.scheduler.weights import metrics as metrics_weigher

from multimodal_virt import conf as mmv_conf
from multimodal_virt.metrics import histogram
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt.scheduler import latency_filter
from multimodal_virt.scheduler import latency_weigher

CONF = cfg.CONF


def build_host_states(count, rng):
    """Real HostState objects carrying Nova monitor metrics."""
    cell = str(uuid.uuid4())
    now = timeutils.utcnow(with_timezone=True)
    hosts = []
    for i in range(count):
        name = 'compute-%05d' % i
        state = host_manager.HostState(name, name, cell)
        state.num_instances = rng.randint(0, 20)
        state.metrics = objects.MonitorMetricList(objects=[
            objects.MonitorMetric(name='cpu.percent',
                                  value=rng.randint(0, 100),
                                  source='bench', timestamp=now),
            objects.MonitorMetric(name='cpu.iowait.percent',
                                  value=rng.randint(0, 100),
                                  source='bench', timestamp=now),
        ])
        hosts.append(state)
    return hosts


def make_sample(host, rng, timestamp):
    def hist(center):
        values = [max(1, int(rng.gauss(center, center / 4)))
                  for _ in range(64)]
        return histogram.LatencyHistogram.from_values(values)
    return sample_mod.HostSample(
        host=host, timestamp=timestamp, window_s=10.0, source='ebpf',
        collector_version='bench', io=hist(rng.choice((80, 250, 1000))),
        gpu_cmd=hist(rng.choice((40, 150, 900))), vm_exit_rate=1200.0,
        irq_rate=9000.0)


def publish(directory, hosts, rng):
    """Write every host's sample like FileStore does, minus the fsync."""
    stamp = time.time()
    for state in hosts:
        payload = make_sample(state.host, rng, stamp).to_json()
        tmp = os.path.join(directory, '.%s.tmp' % state.host)
        with open(tmp, 'wb') as handle:
            handle.write(payload)
        os.replace(tmp, os.path.join(directory, state.host + '.json'))


def request_spec():
    objects.register_all()
    return objects.RequestSpec(flavor=objects.Flavor(
        name='gpu.video', flavorid='gpu.video',
        extra_specs={'multimodal_virt:io_p99_us': '100000'}))


def run_pass(filt, weigher, hosts, spec):
    filtered = nova_filters.HostFilterHandler().get_filtered_objects(
        [filt], hosts, spec)
    weighed = nova_weights.HostWeightHandler().get_weighed_objects(
        [weigher], filtered, spec)
    return weighed


def timed(func, passes):
    samples = []
    for _ in range(passes):
        gc.collect()
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def memory_of(build):
    """Bytes allocated (and kept) by ``build()``."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = build()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, 'filename'))
    del kept
    return size


def bench(count, passes, rate, rng):
    hosts = build_host_states(count, rng)
    spec = request_spec()
    with tempfile.TemporaryDirectory(prefix='mmv-bench-') as directory:
        CONF.set_override('file_path', directory, 'multimodal_virt_store')
        publish(directory, hosts, rng)

        nova_pair = (metrics_filter.MetricsFilter(),
                     metrics_weigher.MetricsWeigher())
        ours = (latency_filter.LatencyFilter(CONF),
                latency_weigher.LatencyWeigher(CONF))
        run_pass(*ours, hosts, spec)  # first read, parse everything
        best = run_pass(*ours, hosts, spec)[0].obj.host

        def refresh():
            ours[0]._provider.refresh()  # both plugins share the provider

        def ours_refresh_unchanged():
            refresh()
            run_pass(*ours, hosts, spec)

        def ours_refresh_cold():
            publish(directory, hosts, rng)  # not timed separately: see below
            refresh()
            start = time.perf_counter()
            run_pass(*ours, hosts, spec)
            return time.perf_counter() - start

        t_nova = timed(lambda: run_pass(*nova_pair, hosts, spec), passes)
        t_warm = timed(lambda: run_pass(*ours, hosts, spec), passes)
        t_unchanged = timed(ours_refresh_unchanged, max(3, passes // 4))
        t_cold = statistics.median(ours_refresh_cold()
                                   for _ in range(max(3, passes // 4)))

        interval = CONF.multimodal_virt_scheduler.refresh_interval
        passes_per_refresh = max(1.0, rate * interval)
        amortised = t_warm + (t_cold - t_warm) / passes_per_refresh

        def our_state():
            from multimodal_virt.stores import file as file_store
            from multimodal_virt.scheduler import snapshot
            store = file_store.FileStore(CONF)
            samples = store.get_all()
            policy = snapshot.ScoringPolicy.from_conf(
                CONF.multimodal_virt_scheduler)
            return store, snapshot.LatencySnapshot(samples, policy,
                                                   time.time())

        our_bytes = memory_of(our_state)
        nova_bytes = memory_of(lambda: build_host_states(count, rng)) - \
            memory_of(lambda: [host_manager.HostState('h%d' % i, 'h', 'c')
                               for i in range(count)])
    return {
        'hosts': count, 'best': best, 'nova': t_nova, 'warm': t_warm,
        'unchanged': t_unchanged, 'cold': t_cold, 'amortised': amortised,
        'rate': rate, 'interval': interval,
        'our_bytes_per_host': our_bytes / count,
        'nova_bytes_per_host': nova_bytes / count,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--hosts', type=int, nargs='+', default=[1000, 10000])
    parser.add_argument('--passes', type=int, default=20)
    parser.add_argument('--rate', type=float, default=10.0,
                        help='scheduling passes per second assumed for the '
                             'amortised figure (default 10/s)')
    parser.add_argument('--seed', type=int, default=42)
    args = parser.parse_args(argv)

    mmv_conf.register_opts(CONF)
    CONF([], project='nova', default_config_files=[])
    CONF.set_override('weight_setting',
                      ['cpu.percent=-1.0', 'cpu.iowait.percent=-1.0'],
                      'metrics')
    CONF.set_override('driver', 'file', 'multimodal_virt_store')
    objects.register_all()
    rng = random.Random(args.seed)

    results = [bench(n, args.passes, args.rate, rng) for n in args.hosts]
    ms = 1000.0
    print('%8s %10s %10s %12s %10s %11s %8s %8s' % (
        'hosts', 'nova ms', 'warm ms', 'unchanged ms', 'cold ms',
        'amortised ms', 'B/host', 'novaB/h'))
    for r in results:
        print('%8d %10.2f %10.2f %12.2f %10.2f %11.2f %8.0f %8.0f' % (
            r['hosts'], r['nova'] * ms, r['warm'] * ms, r['unchanged'] * ms,
            r['cold'] * ms, r['amortised'] * ms, r['our_bytes_per_host'],
            r['nova_bytes_per_host']))
    print('(amortised: one cold refresh every %.0f s at %.0f passes/s)'
          % (results[0]['interval'], results[0]['rate']))
    for r in results:
        print('ratio ours/nova at %d hosts: warm %.3f, refresh-unchanged '
              '%.3f, cold-refresh %.3f, amortised %.3f' % (
                  r['hosts'], r['warm'] / r['nova'],
                  r['unchanged'] / r['nova'], r['cold'] / r['nova'],
                  r['amortised'] / r['nova']))
    last = results[-1]
    print('ratio (ours/nova, %d hosts, amortised per pass incl. store read):'
          ' %.3f' % (last['hosts'], last['amortised'] / last['nova']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
