"""``multimodal-virt-aggregator`` as operators run it, and Nova reading it.

* The real console script, serving: it publishes an aggregate of every
  sample in a real file store every interval, follows new samples,
  reloads on SIGHUP and exits 0 on SIGTERM; ``--once`` prints what it
  published; a store it cannot reach is one line and status 2.
* Nova 34's real scheduler (in-process, with Placement) with the default
  refresh worker: boots follow the aggregate even once every sample file
  is gone; an aggregate older than ``aggregate_max_age`` or signed with a
  key the scheduler does not hold is ignored (logged once) and the
  refresh reads every sample.
"""

import json
import os
import signal
import subprocess
import sys
import time

import fixtures
from oslo_config import cfg

from multimodal_virt.metrics import aggregate
from multimodal_virt.metrics import codec
from multimodal_virt.metrics import signing
from multimodal_virt.stores import file as file_store
from tests import base
from tests.functional.scheduler import base as sched_base
from tests.functional import requirements
from tests.functional import samples

DEADLINE = 60.0
BINARY = os.path.join(os.path.dirname(sys.executable),
                      'multimodal-virt-aggregator')


def write_config(path, stats_dir, interval=0.2, extra=''):
    with open(path, 'w') as handle:
        handle.write('[DEFAULT]\ndebug = true\n'
                     '[multimodal_virt_aggregator]\ninterval = %s\n'
                     '[multimodal_virt_store]\nfile_path = %s\n'
                     'signing_keys = %s\n%s'
                     % (interval, stats_dir, base.TEST_SIGNING_KEY, extra))


class AggregatorProcessTest(base.TestCase):
    """The installed console script, as devstack and kolla start it."""

    def setUp(self):
        super().setUp()
        requirements.require(self, os.access(BINARY, os.X_OK),
                             '%s is not installed' % BINARY)
        self.work = self.useFixture(fixtures.TempDir()).path
        self.stats = os.path.join(self.work, 'stats')
        self.config = os.path.join(self.work, 'aggregator.conf')
        self.log = os.path.join(self.work, 'aggregator.log')
        write_config(self.config, self.stats)
        conf = cfg.ConfigOpts()
        from multimodal_virt import conf as mmv_conf
        mmv_conf.register_opts(conf)
        conf([], default_config_files=[self.config])
        self.store = file_store.FileStore(conf)

    def _aggregate(self):
        created, batch = aggregate.decode(
            self.store.read_aggregate(), self.store.keyring, time.time(),
            self.store.max_aggregate_bytes, self.store.max_hosts)
        return created, batch

    def _log_text(self):
        try:
            with open(self.log) as handle:
                return handle.read()
        except OSError:
            return ''

    def _wait(self, process, done, what):
        end = time.monotonic() + DEADLINE
        while not done():
            if process.poll() is not None or time.monotonic() > end:
                self.fail('%s (rc=%s):\n%s' % (what, process.poll(),
                                               self._log_text()))
            time.sleep(0.05)

    def test_once_prints_what_it_published(self):
        self.store.put(samples.host_sample('a', io_us=100))
        self.store.put(samples.host_sample('b', io_us=900))
        out = subprocess.run([BINARY, '--config-file', self.config,
                              '--once'], capture_output=True, timeout=60,
                             check=True).stdout
        summary = json.loads(out)
        self.assertEqual(2, summary['nodes'])
        self.assertEqual(0, summary['rejected'])
        self.assertEqual(len(self.store.read_aggregate()), summary['bytes'])
        self.assertEqual(['a', 'b'], sorted(self._aggregate()[1].keys))

    def test_once_with_an_unreachable_store_is_one_line(self):
        write_config(self.config, self.stats,
                     extra='driver = memcached\nmemcached_servers = '
                           '127.0.0.1:9\nsocket_timeout = 0.2\n')
        result = subprocess.run([BINARY, '--config-file', self.config,
                                 '--once'], capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(2, result.returncode)
        self.assertEqual('', result.stdout)
        self.assertIn('multimodal-virt-aggregator:', result.stderr)
        self.assertIn('memcached', result.stderr)

    def test_serves_follows_samples_reloads_and_stops(self):
        self.store.put(samples.host_sample('a', io_us=100))
        process = subprocess.Popen(
            [BINARY, '--config-file', self.config, '--log-file', self.log],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        self._wait(process, lambda: os.path.exists(
            os.path.join(self.stats, file_store.AGGREGATE_NAME)),
            'no aggregate published')
        first, batch = self._aggregate()
        self.assertEqual(['a'], batch.keys)
        # A new node's sample is in a later aggregate, by itself.
        self.store.put(samples.host_sample('b', io_us=300))
        self._wait(process, lambda: sorted(self._aggregate()[1].keys) ==
                   ['a', 'b'], 'the new sample never reached the aggregate')
        self.assertGreater(self._aggregate()[0], first)
        # SIGHUP: the new interval applies, the process stays.
        write_config(self.config, self.stats, interval=0.1)
        process.send_signal(signal.SIGHUP)
        self._wait(process, lambda: 'reloading the configuration'
                   in self._log_text(), 'SIGHUP not handled')
        self.assertIsNone(process.poll())
        process.send_signal(signal.SIGTERM)
        self.assertEqual(0, process.wait(timeout=DEADLINE))
        self.assertIn('multimodal-virt-aggregator stopped', self._log_text())


class AggregatorSchedulingTest(sched_base.SchedulingTestBase):
    """Nova's scheduler ranks hosts from the aggregator's aggregate."""

    def setUp(self):
        super().setUp()
        work = self.useFixture(fixtures.TempDir()).path
        self.config = os.path.join(work, 'aggregator.conf')
        write_config(self.config, self.stats_dir)

    def _aggregate_once(self):
        subprocess.run([sys.executable, '-m', 'multimodal_virt.cmd.aggregator',
                        '--config-file', self.config, '--once'],
                       capture_output=True, timeout=60, check=True)

    def _remove_samples(self):
        for name in os.listdir(self.stats_dir):
            if name.endswith(file_store.SUFFIX):
                os.unlink(os.path.join(self.stats_dir, name))

    def test_boots_follow_the_aggregate(self):
        self._publish(host1=(1000, None, 0), host2=(60, None, 0),
                      host3=(4000, None, 0), host4=(250, None, 0))
        self._aggregate_once()
        # Only the aggregate holds the samples now.
        self._remove_samples()
        self.assertEqual('host2', self._boot())
        self.assertIn('Latency refreshes now read the aggregate',
                      self.stdlog.logger.output)
        # The next aggregate moves the ranking.
        self._publish(host1=(1000, None, 0), host2=(4000, None, 0),
                      host3=(4000, None, 0), host4=(30, None, 0))
        self._aggregate_once()
        self._remove_samples()
        self.assertEqual('host4', self._boot())

    def test_old_aggregate_is_ignored(self):
        self.flags(aggregate_max_age=1.0, group='multimodal_virt_store')
        self._publish(host1=(1000, None, 0), host2=(60, None, 0),
                      host3=(4000, None, 0), host4=(4000, None, 0))
        self._aggregate_once()
        # New samples, no new aggregate: past aggregate_max_age the
        # refresh reads them.
        self._publish(host1=(1000, None, 0), host2=(4000, None, 0),
                      host3=(30, None, 0), host4=(4000, None, 0))
        time.sleep(1.5)
        self.assertEqual('host3', self._boot())
        self.assertEqual(1, self.stdlog.logger.output.count(
            'Ignoring the aggregate'))
        self.assertIn('more than aggregate_max_age',
                      self.stdlog.logger.output)

    def test_forged_aggregate_is_ignored(self):
        self._publish(host1=(1000, None, 0), host2=(60, None, 0),
                      host3=(4000, None, 0), host4=(4000, None, 0))
        # Whoever writes the store without the key: host4 looks best.
        forged = codec.SampleBatch.from_samples({
            host: samples.host_sample(host, io_us=10 if host == 'host4'
                                      else 5000)
            for host in sched_base.SchedulingTestBase.hosts})
        self.store.write_aggregate(aggregate.encode(
            forged, signing.Keyring(['not-the-scheduler-key-0123']),
            time.time()))
        self.assertEqual('host2', self._boot())
        self.assertIn('Ignoring the aggregate', self.stdlog.logger.output)
        self.assertIn('signed with an unknown key',
                      self.stdlog.logger.output)
