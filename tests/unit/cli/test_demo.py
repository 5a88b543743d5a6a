import io

import fixtures

from multimodal_virt.cli import demo
from multimodal_virt.cmd import cli
from multimodal_virt.demo import runner
from multimodal_virt import exception
from tests import base


def _result():
    row = {'host': 'here', 'source': 'ebpf', 'age_s': 1.0, 'stale': False,
           'gpu_exec_p50': None, 'gpu_exec_p99': None,
           'gpu_submit_p50': 1.0, 'gpu_submit_p99': 7.0, 'io_p50': 60.0,
           'io_p99': 400.0, 'gpu_exec_events': 0, 'gpu_submit_events': 480,
           'io_events': 900,
           'vm_exit_rate': 0.0, 'irq_rate': 900.0, 'score_us': 407.0,
           'rank': 1, 'events': ['tp_btf:block_rq_issue']}
    return {
        'output_dir': '/d', 'store': '/d/stats', 'plot': '/d/demo.png',
        'collector': {'host': 'here', 'mode': 'ebpf', 'windows': 3,
                      'interval_s': 1.0, 'probes': ['block_io']},
        'workload': {'frames': 90, 'packets': 600,
                     'bytes_written': 25 * 1024 * 1024, 'io_mode': 'o_direct',
                     'commands': 1440, 'command_node': '/dev/kvm'},
        'percentile': 'p99',
        'flavor': {'name': 'demo.multimodal',
                   'extra_specs': {'multimodal_virt:io_p99_us': '10000'}},
        'status': [row, dict(row, host='bad', rank=None, score_us=None)],
        'ranking': [
            {'host': 'here', 'rank': 1, 'weight': 1.0, 'score_us': 407.0,
             'explanation': 'chosen: lowest blended p99 score 407 us'},
            {'host': 'bad', 'rank': None, 'weight': None, 'score_us': 9e4,
             'explanation': 'rejected by LatencyFilter: io p99'}],
        'chosen': 'here',
        'analysis': {'bad': {
            'verdict': 'bottleneck', 'reason': 'dominant path: storage I/O',
            'recommendations': [{
                'action': 'give guest disks dedicated iothreads',
                'artefacts': [
                    {'kind': 'libvirt_xml', 'text': '<iothreads/>'},
                    {'kind': 'flavor_extra_spec',
                     'text': 'multimodal_virt:io_p99_us=10000'}]}]}},
    }


class DemoTextTest(base.TestCase):

    def test_report_sections(self):
        text = demo.to_text(_result())
        self.assertIn('this host: here, ebpf collector, 3 window(s)', text)
        self.assertIn('1440 stand-in GPU commands on /dev/kvm', text)
        self.assertIn('== hosts (multimodal-virt status) ==', text)
        self.assertIn('flavor demo.multimodal: '
                      'multimodal_virt:io_p99_us=10000', text)
        self.assertIn('chosen host: here', text)
        self.assertIn('bad: BOTTLENECK, dominant path: storage I/O', text)
        # XML is pointed at, not dumped, in the demo report.
        self.assertIn('libvirt XML: multimodal-virt analyze --store-dir '
                      '/d/stats bad', text)
        self.assertNotIn('<iothreads/>', text)
        self.assertIn('plot: /d/demo.png', text)

    def test_no_host_chosen(self):
        result = _result()
        result['chosen'] = None
        self.assertIn('chosen host: none (every host was filtered out)',
                      demo.to_text(result))


class DemoArgumentsTest(base.TestCase):

    def test_non_positive_counts_are_refused(self):
        err = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', err))
        self.assertRaises(SystemExit, cli.main, ['demo', '--intervals', '0'])
        self.assertIn("expected a number > 0, got '0'", err.getvalue())

    def test_runner_checks_its_arguments(self):
        err = self.assertRaises(exception.DemoError, runner.DemoRunner,
                                self.conf, '/tmp/x', intervals=0)
        self.assertIn('at least 1 interval', str(err))
