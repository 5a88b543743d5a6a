"""``multimodal-virt pci xml``: validated managed <hostdev> XML for VFs."""

import contextlib
import io
import os

import fixtures
from lxml import etree

from multimodal_virt.cmd import cli
from multimodal_virt.libvirt_xml import hostdev
from multimodal_virt.libvirt_xml import validate
from multimodal_virt.pci import address as pci_address
from tests import base
from tests.fixtures import sysfs_builder as layouts


def _addr(text):
    return pci_address.PciAddress.parse(text)


class PciXmlTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(layouts.SysfsTree('nvidia-a100')).root
        self.tmp = self.useFixture(fixtures.TempDir()).path
        # Only this command: other sub-commands may be work in progress.
        self.useFixture(fixtures.MockPatchObject(
            cli, 'SUBCOMMAND_MODULES', ('pci',)))

    def _run(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(['pci', 'xml'] + list(argv))
        return code, out.getvalue(), err.getvalue()

    def _hostdevs(self, text):
        root = etree.fromstring('<devices>%s</devices>' % text)
        return [hostdev.parse_hostdev(e) for e in root]

    def test_addresses_round_trip_and_validate_against_schema(self):
        code, out, err = self._run('0000:3b:00.4', 'd8:00.5')
        self.assertEqual(0, code, err)
        parsed = self._hostdevs(out)
        self.assertEqual([_addr('0000:3b:00.4'), _addr('0000:d8:00.5')],
                         [h.address for h in parsed])
        # libvirt binds the VFs to vfio-pci itself.
        self.assertEqual([True, True], [h.managed for h in parsed])
        domain = hostdev.add_hostdevs(
            "<domain type='kvm'><name>t</name><memory>65536</memory>"
            "<os><type>hvm</type></os><devices/></domain>",
            [h.address for h in parsed])
        validate.validate_domain(domain, validate.DomainSchema())

    def test_bad_address_names_input(self):
        code, out, err = self._run('0000:3b:00.9')
        self.assertEqual(2, code)
        self.assertEqual('', out)
        self.assertIn("'0000:3b:00.9'", err)
        self.assertIn('expected DDDD:BB:SS.F', err)

    def test_duplicate_vf_refused(self):
        code, out, err = self._run('0000:3b:00.4', '3b:00.4')
        self.assertEqual(2, code)
        self.assertEqual('', out)
        self.assertIn('0000:3b:00.4 is in 2 <hostdev> elements', err)

    def test_missing_schema_is_reported(self):
        code, _, err = self._run('0000:3b:00.4', '--schema',
                                 os.path.join(self.tmp, 'none.rng'))
        self.assertEqual(2, code)
        self.assertIn('cannot load libvirt domain schema', err)
        code, out, _ = self._run('0000:3b:00.4', '--no-validate', '--schema',
                                 os.path.join(self.tmp, 'none.rng'))
        self.assertEqual(0, code)
        self.assertEqual(1, len(self._hostdevs(out)))

    def test_ledger_options_are_gone(self):
        for argv in ((), ('--pool', '10de:20f1'), ('--claim', 'x'),
                     ('0000:3b:00.4', '--unmanaged')):
            self.assertRaises(SystemExit, self._run, *argv)
