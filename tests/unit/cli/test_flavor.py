"""Pure logic of ``multimodal-virt flavor create`` (no cloud)."""

import argparse
from unittest import mock

from novaclient import exceptions as nova_exc

from multimodal_virt.cli import flavor
from multimodal_virt import exception
from tests import base


def _parse(*argv):
    parser = argparse.ArgumentParser()
    flavor.add_parser(parser.add_subparsers())
    return parser.parse_args(['flavor', 'create'] + list(argv))


class ParseTest(base.TestCase):

    def test_alias(self):
        self.assertEqual(('mmv-nvidia-20f1-vf', 2),
                         flavor.parse_alias(' mmv-nvidia-20f1-vf:2 '))
        for bad in ('a', 'a:0', 'a:-1', ':1', 'a b:1', 'a:1,b:1', 'a:x'):
            err = self.assertRaises(exception.InvalidExtraSpec,
                                    flavor.parse_alias, bad)
            self.assertIn('--pci-alias %r' % bad, str(err))

    def test_slo(self):
        table = (('io_p99_us=2000', ('multimodal_virt:io_p99_us', '2000')),
                 ('multimodal_virt:gpu_cmd_p50_us= 40',
                  ('multimodal_virt:gpu_cmd_p50_us', '40')))
        for text, expected in table:
            self.assertEqual(expected, flavor.parse_slo(text))
        for bad, message in (('io_p99_us', 'expected NAME=MICROSECONDS'),
                             ('io_p90_us=5', 'io_p99_us'),
                             ('gpu_p99_us=5', 'gpu_cmd_p99_us'),
                             ('io_p99_us=1.5', 'whole number'),
                             ('io_p99_us=-3', 'whole number'),
                             ('io_p99_us=3600000001', 'between 1 and')):
            err = self.assertRaises(exception.InvalidExtraSpec,
                                    flavor.parse_slo, bad)
            self.assertIn(message, str(err))

    def test_property(self):
        self.assertEqual(('hw:mem_page_size', 'large'),
                         flavor.parse_property('hw:mem_page_size=large'))
        self.assertRaises(exception.InvalidExtraSpec, flavor.parse_property,
                          'hw:mem_page_size')

    def test_requested_specs(self):
        args = _parse('f', '--pci-alias', 'a:1', '--pci-alias', 'b:2',
                      '--slo', 'io_p99_us=10', '--property', 'hw:x=y')
        self.assertEqual({'pci_passthrough:alias': 'a:1,b:2',
                          'multimodal_virt:io_p99_us': '10', 'hw:x': 'y'},
                         flavor.requested_specs(args))
        err = self.assertRaises(
            exception.InvalidExtraSpec, flavor.requested_specs,
            _parse('f', '--pci-alias', 'a:1', '--pci-alias', 'a:2'))
        self.assertIn('unique', str(err))
        err = self.assertRaises(
            exception.InvalidExtraSpec, flavor.requested_specs,
            _parse('f', '--property', 'multimodal_virt:io_p99_us=slow'))
        self.assertIn("'slow'", str(err))
        err = self.assertRaises(
            exception.InvalidExtraSpec, flavor.requested_specs,
            _parse('f', '--property', 'multimodal_virt:latency=1'))
        self.assertIn('unknown extra spec multimodal_virt:latency', str(err))

    def test_sizes_must_be_whole_numbers(self):
        self.assertRaises(SystemExit, _parse, 'f', '--ram', '-1')
        self.assertRaises(SystemExit, _parse, 'f', '--vcpus', 'two')


class CreateOrUpdateTest(base.TestCase):

    def _nova(self, existing=()):
        nova = mock.Mock()
        nova.flavors.list.return_value = list(existing)
        return nova

    def _flavor(self, name='f', ram=256, vcpus=1, disk=1):
        found = mock.Mock(ram=ram, vcpus=vcpus, disk=disk, id='id-' + name)
        found.name = name
        found.get_keys.return_value = {}
        return found

    def test_refused_specs_delete_the_new_flavor(self):
        created = self._flavor()
        created.set_keys.side_effect = nova_exc.BadRequest(
            400, 'Validation failed; hw:cpu_policy is invalid')
        nova = self._nova()
        nova.flavors.create.return_value = created
        err = self.assertRaises(
            exception.CloudApiError, flavor.create_or_update, nova,
            _parse('f', '--ram', '256', '--vcpus', '1'), {'hw:cpu_policy': 'x'})
        self.assertIn('Nova answered 400', str(err))
        created.delete.assert_called_once_with()

    def test_refused_specs_keep_an_existing_flavor(self):
        existing = self._flavor()
        existing.set_keys.side_effect = nova_exc.BadRequest(400, 'no')
        self.assertRaises(exception.CloudApiError, flavor.create_or_update,
                          self._nova([existing]), _parse('f'), {'a': 'b'})
        existing.delete.assert_not_called()

    def test_duplicate_names_refused(self):
        nova = self._nova([self._flavor(), self._flavor()])
        err = self.assertRaises(exception.CloudApiError,
                                flavor.create_or_update, nova, _parse('f'),
                                {})
        self.assertIn('used by 2 flavors', str(err))

    def test_unset_only_existing_keys(self):
        existing = self._flavor()
        existing.get_keys.return_value = {'a': '1'}
        result = flavor.create_or_update(
            self._nova([existing]), _parse('f', '--unset', 'a', '--unset',
                                           'zz'), {})
        existing.unset_keys.assert_called_once_with(['a'])
        self.assertEqual('updated', result['action'])
