"""Fixtures that start real services for functional tests."""

import shutil
import socket
import subprocess
import time

import fixtures


def free_port():
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class MemcachedFixture(fixtures.Fixture):
    """A real memcached on a private loopback port, killed on cleanup."""

    def __init__(self, binary=None, port=None, extra_args=()):
        super().__init__()
        self.binary = binary or shutil.which('memcached')
        self.port = port
        self.extra_args = list(extra_args)

    @property
    def server(self):
        return '127.0.0.1:%d' % self.port

    def _setUp(self):
        if not self.binary:
            raise RuntimeError('memcached is not installed '
                               '(tools/setup-host.sh installs it)')
        self.port = self.port or free_port()
        process = subprocess.Popen(
            [self.binary, '-u', 'nobody', '-l', '127.0.0.1',
             '-p', str(self.port), '-U', '0', '-m', '16'] + self.extra_args,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.process = process
        self.addCleanup(self.stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), 0.2).close()
                return
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError('memcached exited: %s'
                                       % process.stderr.read())
                time.sleep(0.05)
        raise RuntimeError('memcached did not listen on %s' % self.server)

    def stop(self):
        """Kill memcached now (a store outage); safe to call twice."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
