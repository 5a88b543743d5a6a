import json
import os

import fixtures

from tests import base
from tests.unit.cli import fakes


class StatusTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.store = os.path.join(self.tmp, 'stats')
        self.hosts = fakes.fill_store(self, self.conf, self.store)

    def test_table(self):
        rc, out, _err = fakes.run_cli(self, 'status', '--store-dir',
                                      self.store)
        self.assertEqual(0, rc)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith('HOST'))
        body = [line.split()[0] for line in lines[1:5]]
        self.assertEqual('fast', body[0])
        self.assertEqual(set(self.hosts), set(body))
        gone = [line for line in lines if line.startswith('gone')][0]
        self.assertIn('STALE', gone)

    def test_json_ranks_by_the_weigher_score(self):
        rc, out, _err = fakes.run_cli(self, 'status', '--store-dir',
                                      self.store, '--format', 'json')
        self.assertEqual(0, rc)
        data = json.loads(out)
        self.assertEqual('file store %s' % self.store, data['store'])
        self.assertEqual('p99', data['percentile'])
        hosts = data['hosts']
        self.assertEqual([1, 2, 3, 4], [h['rank'] for h in hosts])
        scores = [h['score_us'] for h in hosts]
        self.assertEqual(sorted(scores), scores)
        self.assertEqual('fast', hosts[0]['host'])
        gone = [h for h in hosts if h['host'] == 'gone'][0]
        self.assertTrue(gone['stale'])
        self.assertGreater(gone['age_s'], 800)

    def test_reject_policy_from_config_file(self):
        config = os.path.join(self.tmp, 'mmv.conf')
        with open(config, 'w') as handle:
            handle.write('[multimodal_virt_scheduler]\n'
                         'stale_policy = reject\n'
                         '[multimodal_virt_store]\n'
                         'file_path = %s\n' % self.store)
        rc, out, _err = fakes.run_cli(self, '--config-file', config,
                                      'status', '--format', 'json')
        self.assertEqual(0, rc)
        gone = [h for h in json.loads(out)['hosts'] if h['host'] == 'gone']
        self.assertIsNone(gone[0]['rank'])

    def test_plot(self):
        png = os.path.join(self.tmp, 'hosts.png')
        rc, _out, err = fakes.run_cli(self, 'status', '--store-dir',
                                      self.store, '--plot', png)
        self.assertEqual(0, rc)
        self.assertIn('wrote %s' % png, err)
        with open(png, 'rb') as handle:
            self.assertEqual(b'\x89PNG', handle.read(4))

    def test_empty_store_says_what_to_do(self):
        rc, out, err = fakes.run_cli(self, 'status', '--store-dir',
                                     os.path.join(self.tmp, 'nothing'))
        self.assertEqual(2, rc)
        self.assertEqual('', out)
        self.assertIn('no host samples in the file store', err)
        self.assertIn('multimodal-virt-collector', err)

    def test_bad_format_is_refused_by_argparse(self):
        self.useFixture(fixtures.MonkeyPatch('sys.stderr',
                                             __import__('io').StringIO()))
        from multimodal_virt.cmd import cli
        self.assertRaises(SystemExit, cli.main,
                          ['status', '--format', 'yaml'])
