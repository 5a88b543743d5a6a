"""Unit tests of qemu pid to instance UUID attribution (fake /proc tree)."""

import os

import fixtures

from multimodal_virt.collector import attribution
from tests import base

UUID_A = 'aaaaaaaa-0000-4000-8000-000000000001'
UUID_B = 'bbbbbbbb-0000-4000-8000-000000000002'


class FakeDomain(object):
    def __init__(self, name, uuid, active=True):
        self._name, self._uuid, self._active = name, uuid, active

    def name(self):
        return self._name

    def UUIDString(self):
        return self._uuid

    def isActive(self):
        return self._active


class FakeConnection(object):
    def __init__(self, domains):
        self.domains = domains
        self.calls = 0
        self.closed = False

    def listAllDomains(self):
        self.calls += 1
        return self.domains

    def close(self):
        self.closed = True


class TestUuidFromCmdline(base.TestCase):

    def test_finds_uuid(self):
        raw = b'/usr/bin/qemu-system-x86_64\0-name\0guest=i-1\0-uuid\0' \
              + UUID_A.upper().encode() + b'\0-m\x00512\0'
        self.assertEqual(UUID_A, attribution.uuid_from_cmdline(raw))

    def test_no_or_bad_uuid(self):
        self.assertIsNone(attribution.uuid_from_cmdline(b'bash\0-c\0ls\0'))
        self.assertIsNone(attribution.uuid_from_cmdline(
            b'qemu\0-uuid\0not-a-uuid\0'))
        self.assertIsNone(attribution.uuid_from_cmdline(b'qemu\0-uuid'))
        self.assertIsNone(attribution.uuid_from_cmdline(b''))


class TestAttributor(base.TestCase):

    def setUp(self):
        super().setUp()
        root = self.useFixture(fixtures.TempDir()).path
        self.proc = os.path.join(root, 'proc')
        self.run = os.path.join(root, 'run')
        os.makedirs(self.run)
        self.clock = base.FakeClock(100.0)

    def _process(self, pid, cmdline, tgid=None, start=1234):
        path = os.path.join(self.proc, str(pid))
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, 'cmdline'), 'wb') as handle:
            handle.write(cmdline)
        with open(os.path.join(path, 'status'), 'w') as handle:
            handle.write('Name:\tqemu\nTgid:\t%d\nPid:\t%d\n'
                         % (tgid or pid, pid))
        fields = ['S'] + ['0'] * 18 + [str(start)] + ['0'] * 10
        with open(os.path.join(path, 'stat'), 'w') as handle:
            handle.write('%d (qemu) kvm) %s\n' % (pid, ' '.join(fields)))

    def _pidfile(self, name, pid):
        with open(os.path.join(self.run, name + '.pid'), 'w') as handle:
            handle.write('%d\n' % pid)

    def _attributor(self, conn=None, uri='qemu:///system'):
        def connect(requested):
            self.assertEqual(uri, requested)
            if conn is None:
                raise OSError('libvirtd is not running')
            return conn
        return attribution.Attributor(uri=uri, ttl=10.0, proc_root=self.proc,
                                      run_dir=self.run, connect=connect,
                                      clock=self.clock)

    def test_libvirt_pidfiles(self):
        conn = FakeConnection([FakeDomain('instance-1', UUID_A.upper()),
                               FakeDomain('instance-2', UUID_B,
                                          active=False)])
        self._pidfile('instance-1', 4242)
        self._pidfile('instance-2', 4343)
        attributor = self._attributor(conn)
        self.assertEqual({4242: UUID_A}, attributor.resolve([4242, 4343]))

    def test_libvirt_snapshot_cached_per_interval(self):
        conn = FakeConnection([FakeDomain('instance-1', UUID_A)])
        self._pidfile('instance-1', 4242)
        attributor = self._attributor(conn)
        attributor.resolve([4242])
        attributor.resolve([4242])
        self.assertEqual(1, conn.calls)
        self.clock.now += 10.0
        attributor.resolve([4242])
        self.assertEqual(2, conn.calls)
        attributor.close()
        self.assertTrue(conn.closed)

    def test_cmdline_fallback_when_libvirt_is_down(self):
        self._process(500, b'qemu-system-x86_64\0-uuid\0%s\0'
                      % UUID_B.encode())
        self._process(501, b'sshd\0')
        attributor = self._attributor(conn=None)
        self.assertEqual({500: UUID_B},
                         attributor.resolve([500, 501, 999999]))

    def test_thread_ids_map_to_their_process(self):
        self._process(600, b'qemu\0-uuid\0%s\0' % UUID_A.encode())
        self._process(601, b'qemu\0-uuid\0%s\0' % UUID_A.encode(), tgid=600)
        conn = FakeConnection([FakeDomain('instance-1', UUID_A)])
        self._pidfile('instance-1', 600)
        self.assertEqual({601: UUID_A, 600: UUID_A},
                         self._attributor(conn).resolve([600, 601]))

    def test_recycled_pid_is_not_attributed_to_the_old_vm(self):
        self._process(700, b'qemu\0-uuid\0%s\0' % UUID_A.encode(), start=1)
        attributor = self._attributor(conn=None, uri=None)
        self.assertEqual({700: UUID_A}, attributor.resolve([700]))
        self._process(700, b'python3\0', start=2)
        self.assertEqual({}, attributor.resolve([700]))

    def test_invalid_pids_are_ignored(self):
        attributor = self._attributor(conn=None, uri=None)
        self.assertEqual({}, attributor.resolve([0, -1, 'x', True, None]))

    def test_unsafe_domain_names_do_not_escape_run_dir(self):
        conn = FakeConnection([FakeDomain('../etc/x', UUID_A),
                               FakeDomain('.hidden', UUID_B)])
        outside = os.path.join(os.path.dirname(self.run), 'etc')
        os.makedirs(outside)
        with open(os.path.join(outside, 'x.pid'), 'w') as handle:
            handle.write('4242\n')
        self._pidfile('.hidden', 4343)
        self.assertEqual({}, self._attributor(conn).resolve([4242, 4343]))

    def test_cmdline_cache_is_bounded(self):
        self.useFixture(fixtures.MonkeyPatch(
            'multimodal_virt.collector.attribution.MAX_CACHED_PIDS', 3))
        for pid in range(800, 806):
            self._process(pid, b'sleep\0')
        attributor = self._attributor(conn=None, uri=None)
        attributor.resolve(range(800, 806))
        self.assertEqual(3, len(attributor._cmdline_cache))
