import json
import os

import fixtures

from multimodal_virt.demo import recorded
from multimodal_virt import exception
from multimodal_virt.metrics import sample as sample_mod
from tests import base

NOW = 1.79e9  # in the past: samples may not be from the future


class RecordedTest(base.TestCase):

    def test_shipped_hosts_are_valid_and_retimed(self):
        with open(recorded.DEFAULT_PATH) as handle:
            document = json.load(handle)
        original = {d['host']: sample_mod.HostSample.from_dict(d)
                    for d in document['hosts']}
        samples = recorded.load(NOW)
        self.assertEqual(set(original), {s.host for s in samples})
        ages = {s.host: NOW - s.timestamp for s in samples}
        for sample in samples:
            before = original[sample.host]
            # Histograms and rates are kept, only the timestamp moves.
            self.assertEqual(before.gpu_cmd, sample.gpu_cmd)
            self.assertEqual(before.io, sample.io)
            self.assertEqual(before.vm_exit_rate, sample.vm_exit_rate)
            self.assertAlmostEqual(document['recorded_at'] - before.timestamp,
                                   ages[sample.host])
        self.assertEqual(['stale-05'],
                         [h for h, age in ages.items() if age > 60])

    def test_the_story_hosts_exist(self):
        hosts = {s.host: s for s in recorded.load(NOW)}
        congested = hosts['gpu-congested-01'].gpu_cmd.percentile(0.99)
        healthy = hosts['healthy-03'].gpu_cmd.percentile(0.99)
        self.assertGreater(congested, 10 * healthy)
        self.assertGreater(hosts['storage-slow-02'].io.percentile(0.99),
                           10 * hosts['healthy-03'].io.percentile(0.99))

    def _write(self, document):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'r.json')
        with open(path, 'w') as handle:
            handle.write(document if isinstance(document, str)
                         else json.dumps(document))
        return path

    def test_bad_files_are_named(self):
        for document, expected in (
                ('not json', 'cannot read recorded hosts'),
                ({'hosts': []}, '"recorded_at"'),
                ({'recorded_at': 1.0, 'hosts': [{'version': 1}]},
                 'entry 0: sample lacks required fields')):
            path = self._write(document)
            err = self.assertRaises(exception.DemoError, recorded.load, NOW,
                                    path)
            self.assertIn(path, str(err))
            self.assertIn(expected, str(err))
