"""Run the snapshot refresher the way a nova-scheduler process runs it.

``python -m tests.functional.scheduler.refresher_scenario`` applies Nova's
own concurrency choice first (``nova.monkey_patch.patch``, which reads
``OS_NOVA_DISABLE_EVENTLET_PATCHING`` like nova-scheduler does), then runs
a provider over a store whose read blocks until released, and prints what
happened as JSON. Used by ``test_refresher_modes`` in both modes.

It also times nothing but counts: how many requests a concurrent thread
served while one refresh of a few thousand signed samples ran on a real
file store (under eventlet, none without the refresher's pacing).
"""

from nova import monkey_patch; monkey_patch.patch(backend='threading')  # noqa

import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402

from multimodal_virt import conf as mmv_conf  # noqa: E402
from multimodal_virt import exception  # noqa: E402
from multimodal_virt.scheduler import provider as provider_mod  # noqa: E402
from multimodal_virt.stores import file as file_store  # noqa: E402
from tests import base  # noqa: E402
from tests.functional import samples  # noqa: E402
from tests.unit.scheduler import fakes  # noqa: E402


class SlowStore(fakes.MemoryStore):
    """A store whose reads wait until released, then may fail."""

    def __init__(self):
        super().__init__({'host1': samples.host_sample('host1', io_us=60)})
        self.reading = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.down = False
        self.reads = 0

    def get_all(self):
        self.reading.set()
        self.release.wait(30)
        self.reads += 1
        if self.down:
            raise exception.StoreUnavailable('store down')
        return dict(self.samples)


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Request(object):
    """Stands in for a RequestSpec."""


PACED_HOSTS = 3000


def _requests_during_refresh(worker=False):
    """Requests another thread served while one big refresh ran.

    :param worker: refresh in the refresh worker process (the store
        configured, as nova-scheduler has it) instead of in this process
        (a store handed in), and after a first refresh that started it.
    """
    conf = cfg.ConfigOpts()
    mmv_conf.register_opts(conf)
    conf([], project='multimodal-virt', default_config_files=[])
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        conf.set_override('file_path', directory, 'multimodal_virt_store')
        conf.set_override('signing_keys', [base.TEST_SIGNING_KEY],
                          'multimodal_virt_store')
        conf.set_override('max_hosts', PACED_HOSTS, 'multimodal_virt_store')
        conf.set_override('refresh_worker', worker,
                          'multimodal_virt_scheduler')
        store = file_store.FileStore(conf)

        def publish():
            for index in range(PACED_HOSTS):
                name = 'node-%05d' % index
                store.put(samples.host_sample(name, io_us=50 + index % 90))

        publish()
        if worker:
            provider = provider_mod.SnapshotProvider(conf)
            provider.refresh()
            publish()  # every sample new again: a cold refresh
        else:
            provider = provider_mod.SnapshotProvider(conf, store=store)
        done = threading.Event()
        served = [0]

        def serve():
            while not done.is_set():
                provider.snapshot_for(Request())
                served[0] += 1
                time.sleep(0)

        server = threading.Thread(target=serve)
        server.start()
        _wait_for(lambda: served[0] > 0)
        before = served[0]
        snapshot = provider.refresh()
        during = served[0] - before
        done.set()
        server.join(30)
        in_worker = provider._refresh_worker is not None
        provider.close()
    return {'rows': len(snapshot), 'served': during,
            'in_worker': in_worker}


def main():
    from nova import utils
    conf = cfg.ConfigOpts()
    mmv_conf.register_opts(conf)
    conf([], project='multimodal-virt', default_config_files=[])
    conf.set_override('refresh_interval', 0.05, 'multimodal_virt_scheduler')
    conf.set_override('stale_after', 1.0, 'multimodal_virt_scheduler')
    store = SlowStore()
    provider = provider_mod.SnapshotProvider(conf, store=store)
    provider.start()
    result = {'native_threads': utils.concurrency_mode_threading(),
              'first_refresh': _wait_for(lambda: len(provider.snapshot()))}
    # A read in flight: requests get the current snapshot without waiting.
    store.release.clear()
    store.reading.clear()
    result['read_started'] = _wait_for(store.reading.is_set)
    before = store.reads
    current = provider.snapshot_for(Request())
    result['request_got_snapshot_during_read'] = (
        len(current) == 1 and store.reads == before)
    store.release.set()
    # The store goes down: the last samples stay, then age into stale.
    store.down = True
    reads = store.reads
    result['refreshes_while_down'] = _wait_for(lambda: store.reads > reads + 3)
    snap = provider.snapshot()
    result['kept_while_down'] = snap.row('host1') is not None
    result['stale_after_horizon'] = _wait_for(
        lambda: provider.snapshot().stale[0], timeout=10)
    provider.close()
    paced = _requests_during_refresh()
    result['paced_refresh_rows'] = paced['rows'] == PACED_HOSTS
    # Under eventlet a request thread runs only when the refresh yields:
    # once per chunk of codec.PACE_EVERY entries, several times per step.
    result['requests_served_during_refresh'] = paced['served'] >= 10
    result['paced'] = paced
    # In the worker process the refresh's CPU work is not in this
    # interpreter at all: requests keep being served while it runs.
    offloaded = _requests_during_refresh(worker=True)
    result['worker_refresh_rows'] = (offloaded['rows'] == PACED_HOSTS
                                     and offloaded['in_worker'])
    result['requests_served_during_worker_refresh'] = (
        offloaded['served'] >= 10)
    result['paced']['worker'] = offloaded
    print(json.dumps(result))


if __name__ == '__main__':
    main()
