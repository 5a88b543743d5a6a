import json
import os

import fixtures

from tests import base
from tests.unit.cli import fakes


class AnalyzeTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.store = os.path.join(self.tmp, 'stats')
        self.hosts = fakes.fill_store(self, self.conf, self.store)

    def test_unknown_host_lists_known_hosts_exit_2(self):
        rc, out, err = fakes.run_cli(self, 'analyze', 'nosuchhost',
                                     '--store-dir', self.store)
        self.assertEqual(2, rc)
        self.assertEqual('', out)
        self.assertIn("host 'nosuchhost' has no sample", err)
        for host in self.hosts:
            self.assertIn(host, err)

    def test_json_all_hosts(self):
        rc, out, _err = fakes.run_cli(self, 'analyze', '--store-dir',
                                      self.store, '--format', 'json')
        self.assertEqual(0, rc)
        data = {h['host']: h for h in json.loads(out)['hosts']}
        self.assertEqual(set(self.hosts), set(data))
        self.assertEqual(('bottleneck', 'gpu_submit'),
                         (data['gpu-busy']['verdict'],
                          data['gpu-busy']['dominant']))
        self.assertEqual('io', data['disk-slow']['dominant'])
        self.assertEqual('healthy', data['fast']['verdict'])
        self.assertEqual('stale', data['gone']['verdict'])

    def test_thresholds_come_from_config(self):
        config = os.path.join(self.tmp, 'mmv.conf')
        with open(config, 'w') as handle:
            handle.write('[multimodal_virt_analysis]\n'
                         'io_threshold_us = 50\n')
        rc, out, _err = fakes.run_cli(self, '--config-file', config,
                                      'analyze', 'fast', '--store-dir',
                                      self.store, '--format', 'json')
        self.assertEqual(0, rc)
        host, = json.loads(out)['hosts']
        self.assertEqual(('bottleneck', 'io'),
                         (host['verdict'], host['dominant']))

    def test_text_for_one_host_shows_artefacts(self):
        rc, out, _err = fakes.run_cli(self, 'analyze', 'disk-slow',
                                      '--store-dir', self.store)
        self.assertEqual(0, rc)
        self.assertTrue(out.startswith('== disk-slow: BOTTLENECK =='))
        self.assertIn('dominant path: storage I/O p99', out)
        self.assertIn('flavor property: multimodal_virt:disk_iothreads=2',
                      out)
        self.assertIn('flavor property: multimodal_virt:io_p99_us=10000',
                      out)
        self.assertNotIn('== fast', out)
