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
        paced = result.pop('paced')
        self.assertEqual({'first_refresh': True, 'read_started': True,
                          'request_got_snapshot_during_read': True,
                          'refreshes_while_down': True,
                          'kept_while_down': True,
                          'stale_after_horizon': True,
                          'paced_refresh_rows': True,
                          'requests_served_during_refresh': True,
                          'worker_refresh_rows': True,
                          'requests_served_during_worker_refresh': True},
                         result, paced)

    def test_native_threads(self):
        self._check(self._run('1'), native=True)

    def test_eventlet(self):
        self._check(self._run('0'), native=False)

    def test_nova_scheduler_in_native_threads(self):
        # The test process itself runs Nova under eventlet (Nova's
        # functional base patches on import); this runs the store-outage
        # scenario through Nova's API, conductor and scheduler in native
        # threading mode, the nova-scheduler 34 default.
        test = ('tests.functional.scheduler.test_nova_scheduling_semantics.'
                'MemcachedSchedulingTest.'
                'test_store_down_keeps_last_ranking_until_stale')
        runner = (
            'import sys\n'
            'from testtools import run\n'
            'program = run.TestProgram(argv=["run", %r], exit=False,\n'
            '                          stdout=sys.stdout)\n'
            'from nova import utils\n'
            'print("native_threads=%%s" %% utils.concurrency_mode_threading())\n'
            'sys.exit(0 if program.result.wasSuccessful() else 1)\n' % test)
        env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1')
        done = subprocess.run(
            [sys.executable, '-c', runner],
            cwd=TOP, env=env, capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        self.assertEqual(0, done.returncode, output[-3000:])
        self.assertIn('native_threads=True', done.stdout)
        self.assertIn('Ran 1 test', output)
        self.assertNotIn('skip', output.lower().split('ran 1 test')[-1])
