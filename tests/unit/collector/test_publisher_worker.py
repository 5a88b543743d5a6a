"""Each publisher on its own worker: a blocked one delays nothing else."""

import threading
import time

import fixtures

from multimodal_virt.collector.publishers import base as publisher_base
from multimodal_virt.collector.publishers import worker as worker_mod
from multimodal_virt.collector import service
from multimodal_virt.metrics import sample as sample_mod
from multimodal_virt import ratelimit
from tests import base
from tests.unit.collector import test_service


class BlockingPublisher(publisher_base.Publisher):
    """Blocks in publish() until released (a hung Placement)."""

    def __init__(self):
        super().__init__(None)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.samples = []

    def publish(self, sample):
        self.entered.set()
        self.release.wait(60)
        self.samples.append(sample)


def _sample(index):
    return sample_mod.HostSample(host='compute-1', timestamp=float(index),
                                 window_s=1.0, source='ebpf')


def _wait_for(predicate, deadline=10.0):
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError('condition not reached in %s s' % deadline)
        time.sleep(0.01)


class TestPublisherWorker(base.TestCase):

    def test_blocked_publisher_delays_no_other_and_gets_the_latest(self):
        self.flags('multimodal_virt_collector', host='compute-1',
                   attribution=False, publish_timeout=0.2)
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.service'))
        slow = BlockingPublisher()
        self.addCleanup(slow.release.set)
        store = test_service.FakePublisher()
        clock = base.FakeClock(10.0)
        collector = service.CollectorService(
            self.conf, probes=[], publishers=[('placement', slow),
                                              ('store', store)], clock=clock)
        collector.load_publishers()
        self.addCleanup(collector.stop)
        # Window 1: placement blocks; store publishes anyway.
        self.assertEqual(['store'], collector.publish(_sample(1), wait=0.5))
        self.assertTrue(slow.entered.wait(10))
        clock.now += 5.0  # placement now busy for 5 s, over its timeout
        for index in (2, 3, 4):
            self.assertEqual(['store'],
                             collector.publish(_sample(index), wait=0.5))
        self.assertEqual([1, 2, 3, 4], [s.timestamp for s in store.samples])
        self.assertIn('Publisher placement has been publishing for 5.0 s',
                      logs.output)
        self.assertEqual(1, logs.output.count('has been publishing'))
        # Released: placement finishes sample 1, then publishes only the
        # latest waiting sample (4), not the backlog.
        slow.release.set()
        workers = {w.name: w for w in collector._workers}
        self.assertTrue(workers['placement'].wait_idle(10))
        self.assertEqual([1.0, 4.0], [s.timestamp for s in slow.samples])
        self.assertEqual(2, workers['placement'].replaced)

    def test_loop_does_not_wait_for_publishers(self):
        slow = BlockingPublisher()
        self.addCleanup(slow.release.set)
        log = ratelimit.RateLimitedLog(worker_mod.LOG)
        worker = worker_mod.PublisherWorker('slow', slow, lambda: 1.0, log)
        self.addCleanup(worker.close, 1.0)
        worker.submit(_sample(1))
        self.assertTrue(slow.entered.wait(10))
        self.assertFalse(worker.idle())
        self.assertFalse(worker.wait_idle(0.05))
        slow.release.set()
        self.assertTrue(worker.wait_idle(10))
        self.assertEqual(1, worker.published)

    def test_failing_publisher_counted_and_logged(self):
        log = ratelimit.RateLimitedLog(worker_mod.LOG)
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.publishers.worker'))
        down = test_service.FakePublisher(fail=True)
        worker = worker_mod.PublisherWorker('store', down, lambda: 1.0, log)
        self.addCleanup(worker.close, 1.0)
        worker.submit(_sample(1))
        _wait_for(lambda: worker.failed == 1)
        self.assertIn('Publisher store failed: store is down', logs.output)
        self.assertTrue(worker.close(5.0))
