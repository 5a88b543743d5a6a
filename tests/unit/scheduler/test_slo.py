import ddt

from multimodal_virt import exception
from multimodal_virt.scheduler import slo
from tests import base


@ddt.ddt
class SloTest(base.TestCase):

    def test_parses_our_keys_only(self):
        specs = {'multimodal_virt:io_p99_us': '500',
                 'multimodal_virt:gpu_cmd_p95_us': ' 80 ',
                 'hw:cpu_policy': 'dedicated',
                 'pci_passthrough:alias': 'a100-vf:1'}
        self.assertEqual(
            (slo.Slo('gpu_cmd', 'p95', 80), slo.Slo('io', 'p99', 500)),
            slo.from_extra_specs(specs))

    def test_no_specs(self):
        self.assertEqual((), slo.from_extra_specs(None))

    @ddt.data('abc', '0', '-5', '1.5', '', '99999999999')
    def test_bad_values_name_the_key(self, value):
        err = self.assertRaises(
            exception.InvalidExtraSpec, slo.from_extra_specs,
            {'multimodal_virt:io_p99_us': value})
        self.assertIn('multimodal_virt:io_p99_us', str(err))


class ViolationsTest(base.TestCase):

    def test_only_measured_percentiles_over_the_limit(self):
        class Snapshot(object):
            def value(self, row, metric, percentile):
                return {('io', 'p99'): 900.0, ('io', 'p95'): 400.0,
                        ('gpu_cmd', 'p99'): None}[(metric, percentile)]
        slos = (slo.Slo('io', 'p99', 500), slo.Slo('io', 'p95', 500),
                slo.Slo('gpu_cmd', 'p99', 1))
        self.assertEqual([(slos[0], 900.0)],
                         slo.violations(Snapshot(), 0, slos))
