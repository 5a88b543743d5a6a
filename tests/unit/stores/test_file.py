import dataclasses
import os
import stat
import subprocess
import sys
import time

import fixtures

from multimodal_virt import exception
from multimodal_virt.metrics import codec
from multimodal_virt.stores import file as file_store
from multimodal_virt.stores import loader
from tests import base
from tests.functional import samples


class FileStoreTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.path = self.useFixture(fixtures.TempDir()).path
        self.flags('multimodal_virt_store', driver='file',
                   file_path=self.path)
        self.store = loader.get_store(self.conf)

    def test_loaded_by_stevedore(self):
        self.assertIsInstance(self.store, file_store.FileStore)

    def test_no_signing_key_refuses_to_start(self):
        self.flags('multimodal_virt_store', signing_keys=[])
        err = self.assertRaises(exception.StoreError, loader.get_store,
                                self.conf)
        self.assertIn('signing_keys', str(err))
        self.flags('multimodal_virt_store', allow_unsigned=True)
        store = loader.get_store(self.conf)
        store.put(samples.host_sample('demo', io_us=50))
        self.assertEqual(['demo'], list(store.get_all()))

    def test_other_key_cannot_read_or_forge(self):
        self.store.put(samples.host_sample('a', io_us=50))
        self.flags('multimodal_virt_store',
                   signing_keys=['a-different-key-0123456789abcdef'])
        logger = self.useFixture(fixtures.FakeLogger())
        self.assertEqual({}, loader.get_store(self.conf).get_all())
        self.assertIn('unknown key', logger.output)

    def test_put_get_all_round_trip(self):
        published = {h: samples.host_sample(h, io_us=100 * i)
                     for i, h in enumerate(('a', 'b', 'c'), 1)}
        for s in published.values():
            self.store.put(s)
        self.assertEqual(published, self.store.get_all())
        self.assertEqual(published['b'], self.store.get('b'))

    def test_missing_directory_is_empty_not_an_error(self):
        self.flags('multimodal_virt_store',
                   file_path=os.path.join(self.path, 'absent'))
        self.assertEqual({}, loader.get_store(self.conf).get_all())

    def test_invalid_documents_skipped_with_reason(self):
        self.store.put(samples.host_sample('good', io_us=50))
        good = os.path.join(self.path, 'good' + file_store.SUFFIX)
        with open(good, 'rb') as handle:
            signed = handle.read()
        bad = {
            'nan': b'{"version": 1, "host": "nan", "timestamp": NaN}',
            'trunc': signed[:40],
            'other': signed,  # good's signed sample under another name
            'huge': b' ' * 70000,
        }
        for name, payload in bad.items():
            path = os.path.join(self.path, name + file_store.SUFFIX)
            with open(path, 'wb') as handle:
                handle.write(payload)
        logger = self.useFixture(fixtures.FakeLogger())
        self.assertEqual(['good'], list(self.store.get_all()))
        for host in bad:
            self.assertIn(host, logger.output)

    def test_unchanged_files_are_not_read_again(self):
        self.store.put(samples.host_sample('a', io_us=50))
        first = self.store.read_all()['a']
        self.assertIs(first, self.store.read_all()['a'])
        self.store.put(samples.host_sample('a', io_us=900))
        self.assertIsNot(first, self.store.read_all()['a'])

    def test_bulk_read_paces_every_chunk_and_keeps_every_entry(self):
        count = 2 * codec.PACE_EVERY + 3
        for index in range(count):
            self.store.put(samples.host_sample('h%04d' % index, io_us=50))
        os.symlink('/etc/passwd', os.path.join(self.path, 'evil.sample'))
        calls = []
        batch = self.store.read_batch(time.time(),
                                      pace=lambda: calls.append(1))
        self.assertEqual(count, len(batch))
        self.assertIn('h0000', batch.index)
        # Three chunks of reads and three of verification.
        self.assertEqual(6, len(calls))

    def test_directory_created_0755(self):
        path = os.path.join(self.path, 'new', 'stats')
        self.flags('multimodal_virt_store', file_path=path)
        old = os.umask(0)
        try:
            loader.get_store(self.conf).put(samples.host_sample('a'))
        finally:
            os.umask(old)
        self.assertEqual(0o755, stat.S_IMODE(os.stat(path).st_mode))

    def test_group_or_world_writable_directory_refused(self):
        self.store.put(samples.host_sample('a'))
        for mode in (0o775, 0o757, 0o777):
            os.chmod(self.path, mode)
            logger = self.useFixture(fixtures.FakeLogger())
            err = self.assertRaises(exception.StoreUnavailable,
                                    self.store.read_all)
            self.assertIn('writable', str(err))
            self.assertRaises(exception.StoreUnavailable, self.store.put,
                              samples.host_sample('b'))
            self.assertEqual('', logger.output)
        os.chmod(self.path, 0o755)
        self.assertEqual(['a'], list(self.store.get_all()))

    def test_symlink_fifo_and_directory_entries_skipped_others_kept(self):
        self.store.put(samples.host_sample('good', io_us=50))
        good = os.path.join(self.path, 'good' + file_store.SUFFIX)
        os.symlink(good, os.path.join(self.path, 'link' + file_store.SUFFIX))
        os.symlink('loop' + file_store.SUFFIX,
                   os.path.join(self.path, 'loop' + file_store.SUFFIX))
        os.mkfifo(os.path.join(self.path, 'fifo' + file_store.SUFFIX))
        os.mkdir(os.path.join(self.path, 'dir' + file_store.SUFFIX))
        logger = self.useFixture(fixtures.FakeLogger())
        self.assertEqual(['good'], list(self.store.read_all()))
        for name in ('link', 'loop', 'fifo', 'dir'):
            self.assertIn(name + file_store.SUFFIX, logger.output)
        self.assertEqual(4, len(logger.output.splitlines()))

    def test_bad_entry_logged_once_per_interval(self):
        self.store.put(samples.host_sample('good', io_us=50))
        os.mkfifo(os.path.join(self.path, 'fifo' + file_store.SUFFIX))
        logger = self.useFixture(fixtures.FakeLogger())
        for _ in range(5):
            self.assertEqual(['good'], list(self.store.read_all()))
        self.assertEqual(1, len(logger.output.splitlines()))

    def test_v1_files_ignored_with_upgrade_hint(self):
        with open(os.path.join(self.path, 'old.json'), 'wb') as handle:
            handle.write(b'{"version": 1}')
        logger = self.useFixture(fixtures.FakeLogger())
        self.assertEqual({}, self.store.read_all())
        self.assertIn('v1 sample', logger.output)

    def test_two_nodes_of_one_host_kept_apart(self):
        one = samples.host_sample('svc', io_us=50)
        two = dataclasses.replace(one, nodename='node-2', io=None)
        self.store.put(one)
        self.store.put(two)
        self.assertEqual({'svc', 'svc+node-2'}, set(self.store.get_all()))
        self.assertEqual(one, self.store.get('svc'))
        self.assertEqual(two, self.store.get('svc', 'node-2'))

    def test_delete(self):
        self.store.put(samples.host_sample('a'))
        self.store.delete('a')
        self.store.delete('a')
        self.assertEqual({}, self.store.get_all())

    def test_unwritable_directory_raises_store_unavailable(self):
        blocker = os.path.join(self.path, 'file')
        open(blocker, 'w').close()
        self.flags('multimodal_virt_store', file_path=blocker)
        store = loader.get_store(self.conf)
        self.assertRaises(exception.StoreUnavailable, store.put,
                          samples.host_sample('a'))
        self.assertRaises(exception.StoreUnavailable, store.get_all)

    def test_concurrent_readers_never_see_torn_documents(self):
        # A real writer process (as the collector is) replaces one host's
        # document 500 times while this process reads the directory. A
        # process, not a thread: under Nova's eventlet monkey patching a
        # thread doing file I/O never yields to the reader.
        script = (
            'import sys\n'
            'from oslo_config import cfg\n'
            'from multimodal_virt import conf\n'
            'from multimodal_virt.stores import file\n'
            'from tests.functional import samples\n'
            'c = cfg.ConfigOpts(); conf.register_opts(c); c([])\n'
            'c.set_override("signing_keys", [sys.argv[2]], '
            '"multimodal_virt_store")\n'
            'c.set_override("file_path", sys.argv[1], '
            '"multimodal_virt_store")\n'
            'store = file.FileStore(c)\n'
            'for i in range(500):\n'
            '    store.put(samples.host_sample("busy", io_us=i + 1))\n')
        writer = subprocess.Popen([sys.executable, '-c', script, self.path,
                                   base.TEST_SIGNING_KEY],
                                  cwd=os.getcwd())
        logger = self.useFixture(fixtures.FakeLogger())
        seen = set()
        while writer.poll() is None:
            sample = self.store.get_all().get('busy')
            if sample is not None:
                seen.add(sample.timestamp)
        self.assertEqual(0, writer.returncode)
        self.assertGreater(len(seen), 1)  # the reads overlapped the writes
        self.assertEqual('', logger.output)
        self.assertEqual([], [n for n in os.listdir(self.path)
                              if n.startswith('.')])

    def test_unknown_driver(self):
        self.assertRaises(exception.StoreError, loader.get_store, self.conf,
                          'nosuchdriver')
