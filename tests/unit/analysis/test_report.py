from multimodal_virt.analysis import report
from multimodal_virt.scheduler import snapshot
from tests import base
from tests.unit.analysis import helpers


def _samples():
    return {
        'fast': helpers.host_sample('fast', gpu_us=50, io_us=100,
                                    vm_exit_rate=10.0, irq_rate=20.0),
        'slow': helpers.host_sample('slow', gpu_us=5000, io_us=9000),
        'mid': helpers.host_sample('mid', gpu_us=400, io_us=800),
        'old': helpers.host_sample('old', gpu_us=10, io_us=10, age=300),
    }


def _rows(stale_policy='penalize'):
    samples = _samples()
    snap = snapshot.LatencySnapshot(
        samples, snapshot.ScoringPolicy(stale_after=60.0,
                                        stale_policy=stale_policy),
        helpers.NOW)
    return snap, report.host_rows(samples, snap, helpers.NOW)


class HostRowsTest(base.TestCase):

    def test_rank_follows_the_weigher_score(self):
        snap, rows = _rows()
        # 'old' (stale, penalized as the worst host) ties with 'slow' and
        # the tie is broken by name.
        self.assertEqual(['fast', 'mid', 'old', 'slow'],
                         [r.host for r in rows])
        self.assertEqual([1, 2, 3, 4], [r.rank for r in rows])
        for row in rows:
            # The very score the LatencyWeigher negates.
            self.assertEqual(snap.base_score(row.host), row.score_us)
        old = rows[2]
        self.assertTrue(old.stale)
        self.assertEqual(snap.worst_score, old.score_us)  # penalize

    def test_percentiles_and_rates_come_from_the_snapshot(self):
        snap, rows = _rows()
        fast = rows[0]
        row = snap.row('fast')
        self.assertEqual(snap.value(row, 'io', 'p99'), fast.io_p99)
        self.assertEqual(snap.value(row, 'gpu_submit', 'p50'),
                         fast.gpu_submit_p50)
        self.assertIsNotNone(fast.gpu_submit_p50)
        self.assertEqual(200, fast.gpu_submit_events)
        self.assertIsNone(fast.gpu_exec_p99)   # no fences published
        self.assertEqual(0, fast.gpu_exec_events)
        self.assertEqual(200, fast.io_events)
        self.assertEqual(10.0, fast.vm_exit_rate)
        self.assertAlmostEqual(1.0, fast.age_s)

    def test_reject_policy_leaves_stale_hosts_unranked(self):
        _snap, rows = _rows('reject')
        self.assertEqual('old', rows[-1].host)
        self.assertIsNone(rows[-1].rank)
        self.assertEqual([1, 2, 3], [r.rank for r in rows[:-1]])

    def test_table_marks_stale_and_rejected(self):
        _snap, rows = _rows('reject')
        text = report.format_table(rows)
        lines = text.splitlines()
        self.assertTrue(lines[0].startswith('HOST'))
        self.assertIn('RANK', lines[0])
        old_line = [line for line in lines if line.startswith('old')][0]
        self.assertIn('STALE', old_line)
        self.assertTrue(old_line.endswith('rejected'))
        self.assertIn('p99', lines[-1])

    def test_missing_values_print_as_dash(self):
        samples = {'bare': helpers.host_sample('bare', io_us=100)}
        snap = snapshot.LatencySnapshot(samples, snapshot.ScoringPolicy(),
                                        helpers.NOW)
        rows = report.host_rows(samples, snap, helpers.NOW)
        line = report.format_table(rows).splitlines()[1]
        # GPU exec x2, GPU submit x2, GPU queue, exits, IRQs
        self.assertEqual(7, line.split().count('-'))

    def test_gpu_queue_column(self):
        samples = {'q': helpers.host_sample('q', io_us=100, queue_us=3000)}
        snap = snapshot.LatencySnapshot(samples, snapshot.ScoringPolicy(),
                                        helpers.NOW)
        row, = report.host_rows(samples, snap, helpers.NOW)
        self.assertEqual(200, row.gpu_queue_events)
        self.assertEqual(snap.value(0, 'gpu_queue', 'p99'), row.gpu_queue_p99)
        self.assertGreater(row.gpu_queue_p99, 2000)
        table = report.format_table([row])
        self.assertIn('QUEUE p99', table.splitlines()[0])
        self.assertIn('%.0f' % row.gpu_queue_p99, table.splitlines()[1])
        self.assertEqual(row.gpu_queue_p99, row.to_dict()['gpu_queue_p99'])

    def test_to_dict(self):
        _snap, rows = _rows()
        data = rows[0].to_dict()
        self.assertEqual('fast', data['host'])
        self.assertEqual(1, data['rank'])
        self.assertEqual([], data['events'])
