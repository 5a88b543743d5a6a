"""The refresher under eventlet's monkey patching and in native threads.

nova-scheduler 34 runs in native threading mode by default, and under
eventlet when ``OS_NOVA_DISABLE_EVENTLET_PATCHING`` (or
``[DEFAULT] concurrency_backend``) says so. Each mode gets a fresh process
that starts the way nova-scheduler does (``nova.monkey_patch.patch``).
"""

import json
import os
import subprocess
import sys

from tests import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class RefresherModesTest(base.TestCase):

    def _run(self, disable_eventlet):
        env = dict(os.environ,
                   OS_NOVA_DISABLE_EVENTLET_PATCHING=disable_eventlet)
        done = subprocess.run(
            [sys.executable, '-m',
             'tests.functional.scheduler.refresher_scenario'],
            cwd=TOP, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(0, done.returncode, done.stderr[-3000:])
        return json.loads(done.stdout.strip().splitlines()[-1])

    def _check(self, result, native):
        self.assertEqual(native, result.pop('native_threads'))
        self.assertEqual({'first_refresh': True, 'read_started': True,
                          'request_got_snapshot_during_read': True,
                          'refreshes_while_down': True,
                          'kept_while_down': True,
                          'stale_after_horizon': True}, result)

    def test_native_threads(self):
        self._check(self._run('1'), native=True)

    def test_eventlet(self):
        self._check(self._run('0'), native=False)
