"""atomic_write: the old file or the new one, never a half-written one."""

import os

import fixtures
import testtools

from multimodal_virt import fileutils


class AtomicWriteTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.dir, 'x.sample')

    def test_replaces_with_mode(self):
        fileutils.write_bytes(self.path, b'old')
        fileutils.write_bytes(self.path, b'new', mode=0o600)
        with open(self.path, 'rb') as handle:
            self.assertEqual(b'new', handle.read())
        self.assertEqual(0o600, os.stat(self.path).st_mode & 0o777)
        self.assertEqual(['x.sample'], os.listdir(self.dir))

    def test_failure_keeps_the_old_file_and_no_temporary(self):
        fileutils.write_bytes(self.path, b'old')

        def fill(tmp):
            with open(tmp, 'wb') as handle:
                handle.write(b'half')
            raise OSError('disk full')

        self.assertRaises(OSError, fileutils.atomic_write, self.path, fill)
        with open(self.path, 'rb') as handle:
            self.assertEqual(b'old', handle.read())
        self.assertEqual(['x.sample'], os.listdir(self.dir))
