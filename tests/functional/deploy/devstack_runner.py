"""Run the devstack plugin's phases for one host in a real bash.

devstack's helper functions are stood in by ``devstack_functions.sh``
(INI edits through devstack-tools' ``dsconf``; setup_develop,
install_package, run_process and restart_service recorded); the plugin's
own scripts and the real ``multimodal-virt`` command of this checkout run
unchanged. ``Host.start`` then runs a recorded ``run_process`` command
as devstack's systemd unit would (``ExecStart`` is the command line, the
unit's user the stack user unless the plugin names another; ``stop``
sends the SIGTERM that ``systemctl stop`` sends).
"""

import os
import shlex
import signal
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    'devstack_functions.sh')
BIN = os.path.dirname(sys.executable)
SERVICE_HOST = '192.0.2.10'
# Debian 12's memcached.conf, abridged: one -l line, loopback only.
DEBIAN_MEMCACHED_CONF = """# memcached default config file
-d
logfile /var/log/memcached.log
-m 64
-p 11211
-u memcache
-l 127.0.0.1
-P /var/run/memcached/memcached.pid
"""


class Host:
    """One devstack host: its nova.conf, state directories and services.

    :param tmp: a private directory for this host.
    :param services: devstack's ENABLED_SERVICES for the host.
    :param nova_conf: initial text of nova.conf.
    :param env: more environment (settings overrides).
    """

    def __init__(self, tmp, services, nova_conf='[DEFAULT]\n', **env):
        self.tmp = tmp
        os.makedirs(tmp, exist_ok=True)
        self.nova_conf = os.path.join(tmp, 'nova.conf')
        with open(self.nova_conf, 'w') as handle:
            handle.write(nova_conf)
        self.record = os.path.join(tmp, 'record.tsv')
        self.mmv_conf = os.path.join(tmp, 'etc-mmv', 'multimodal-virt.conf')
        self.provider_dir = os.path.join(tmp, 'provider_config')
        self.env = {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'HOME': tmp, 'DEST': tmp,
            'DATA_DIR': os.path.join(tmp, 'data'),
            'STACK_USER': subprocess.run(
                ['id', '-un'], capture_output=True, text=True,
                check=True).stdout.strip(),
            'SERVICE_HOST': SERVICE_HOST,
            'SERVICE_PASSWORD': 'secretservice',
            'ENABLED_SERVICES': services,
            'NOVA_CONF': self.nova_conf, 'NOVA_CONF_DIR': tmp,
            'MMV_DIR': TOP, 'MMV_HOSTNAME': 'compute1',
            'MMV_CONF_DIR': os.path.dirname(self.mmv_conf),
            'MMV_NOVA_VIRT_DIR': os.path.join(tmp, 'nova-virt'),
            'PYTHON': sys.executable,
            'MMV_TEST_RECORD': self.record, 'MMV_TEST_BIN': BIN,
        }
        os.makedirs(self.env['MMV_NOVA_VIRT_DIR'], exist_ok=True)
        # Never the machine's own /etc/memcached.conf.
        self.memcached_conf = os.path.join(tmp, 'memcached.conf')
        with open(self.memcached_conf, 'w') as handle:
            handle.write(DEBIAN_MEMCACHED_CONF)
        self.env['MMV_MEMCACHED_CONF'] = self.memcached_conf
        self.env.update(env)

    def phases(self, *phases, **env):
        """Source settings and run ``plugin.sh`` for each phase.

        :returns: the finished ``subprocess.CompletedProcess``.
        :raises AssertionError: when the script fails (with its output).
        """
        script = ['set -o errexit -o nounset -o pipefail',
                  'source %s' % STUB,
                  'source %s/devstack/settings' % TOP]
        for phase in phases:
            script.append('source %s/devstack/plugin.sh %s' % (TOP, phase))
        result = subprocess.run(
            ['bash', '-c', '\n'.join(script)], cwd=self.tmp,
            env=dict(self.env, **env), capture_output=True, text=True,
            check=False, timeout=180)
        if result.returncode:
            raise AssertionError('devstack phases %s failed (%d):\n%s%s'
                                 % (phases, result.returncode,
                                    result.stdout, result.stderr))
        return result

    def start(self, service):
        """Start the command the plugin gave ``run_process`` for ``service``.

        Its output (stdout and stderr) goes to ``<tmp>/<service>.log``, as
        the unit's would go to the journal.

        :returns: the ``subprocess.Popen``.
        :raises AssertionError: when the plugin did not run the service,
            or wants it run as another user than the stack user.
        """
        runs = [r for r in self.recorded()
                if r[0] == 'run_process' and r[1] == service]
        if len(runs) != 1:
            raise AssertionError('run_process %s recorded %d times'
                                 % (service, len(runs)))
        _, _, command, _group, user = runs[0]
        if user not in ('', self.env['STACK_USER']):
            raise AssertionError('%s runs as %s, not the stack user %s'
                                 % (service, user, self.env['STACK_USER']))
        with open(self.log(service), 'w') as log:
            return subprocess.Popen(
                shlex.split(command), cwd=self.tmp, stdout=log,
                stderr=subprocess.STDOUT,
                env={'PATH': self.env['PATH'], 'HOME': self.tmp})

    def log(self, service):
        """Path of the output of a service :meth:`start` started."""
        return os.path.join(self.tmp, '%s.log' % service)

    @staticmethod
    def stop(process, timeout=30):
        """SIGTERM, as ``systemctl stop``; killed if it still runs after
        ``timeout`` seconds.

        :returns: the exit status, ``None`` when it had to be killed.
        """
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    def recorded(self):
        """The recorded calls, as lists of fields."""
        if not os.path.exists(self.record):
            return []
        with open(self.record) as handle:
            return [line.rstrip('\n').split('\t') for line in handle]
