"""``multimodal-virt pci xml``: validated vfio <hostdev> XML for VFs."""

import contextlib
import io
import os

import fixtures
from lxml import etree

from multimodal_virt.cmd import cli
from multimodal_virt.libvirt_xml import hostdev
from multimodal_virt.libvirt_xml import validate
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import ledger as vf_ledger
from multimodal_virt.pci import sysfs
from tests import base
from tests.fixtures import sysfs_builder as layouts

INSTANCE = '6f1b8c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b'


def _addr(text):
    return pci_address.PciAddress.parse(text)


class PciXmlTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(layouts.SysfsTree('nvidia-a100')).root
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.ledger_path = os.path.join(self.tmp, 'ledger.json')
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

    def _ledger(self):
        ledger = vf_ledger.Ledger(self.ledger_path)
        pfs = sysfs.discover(self.root)
        ledger.sync_inventory((vf.address, vf.numa_node, vf.parent)
                              for pf in pfs for vf in pf.vfs)
        return ledger

    def test_addresses_round_trip_and_validate_against_schema(self):
        code, out, err = self._run('0000:3b:00.4', 'd8:00.5')
        self.assertEqual(0, code, err)
        parsed = self._hostdevs(out)
        self.assertEqual([_addr('0000:3b:00.4'), _addr('0000:d8:00.5')],
                         [h.address for h in parsed])
        # Default managed comes from [multimodal_virt_libvirt].
        self.assertEqual([False, False], [h.managed for h in parsed])
        domain = hostdev.add_hostdevs(
            "<domain type='kvm'><name>t</name><memory>65536</memory>"
            "<os><type>hvm</type></os><devices/></domain>",
            [h.address for h in parsed])
        validate.validate_domain(domain, validate.DomainSchema())

    def test_managed_flag(self):
        code, out, _ = self._run('0000:3b:00.4', '--managed')
        self.assertEqual(0, code)
        self.assertTrue(self._hostdevs(out)[0].managed)
        code, out, _ = self._run('0000:3b:00.4', '--unmanaged')
        self.assertFalse(self._hostdevs(out)[0].managed)

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

    def test_exactly_one_source(self):
        for argv in ((), ('0000:3b:00.4', '--pool', '10de:20f1'),
                     ('--pool', '10de:20f1', '--claim', INSTANCE)):
            code, _, err = self._run(*argv)
            self.assertEqual(2, code, argv)
            self.assertIn('give exactly one of', err)

    def test_pool_picks_free_vfs_skipping_claimed(self):
        ledger = self._ledger()
        held = ledger.claim(INSTANCE, count=2, numa_node=0,
                            numa_policy='required')
        code, out, err = self._run('--pool', '0x10DE:20f1', '--count', '3',
                                   '--sysfs-root', self.root,
                                   '--ledger-path', self.ledger_path)
        self.assertEqual(0, code, err)
        picked = [h.address for h in self._hostdevs(out)]
        self.assertEqual(3, len(picked))
        self.assertEqual(picked, sorted(picked))
        self.assertFalse(set(held) & set(picked))

    def test_pool_without_enough_free_vfs(self):
        code, out, err = self._run('--pool', '10de:20f1', '--count', '33',
                                   '--sysfs-root', self.root,
                                   '--ledger-path', self.ledger_path)
        self.assertEqual(2, code)
        self.assertEqual('', out)
        self.assertIn('pool 10de:20f1 has 32 free VF(s)', err)
        self.assertIn('33 asked', err)

    def test_pool_bad_spec_and_unknown_model(self):
        code, _, err = self._run('--pool', 'nvidia', '--sysfs-root',
                                 self.root)
        self.assertEqual(2, code)
        self.assertIn('expected VENDOR_ID:PRODUCT_ID', err)
        code, _, err = self._run('--pool', '10de:zzzz', '--sysfs-root',
                                 self.root)
        self.assertEqual(2, code)
        self.assertIn('--pool product id', err)
        code, _, err = self._run('--pool', '1002:6860', '--sysfs-root',
                                 self.root, '--ledger-path', self.ledger_path)
        self.assertIn('has 0 free VF(s) (0 found', err)
        code, _, err = self._run('--pool', '10de:20f1', '--count', '0',
                                 '--sysfs-root', self.root)
        self.assertIn('--count must be 1 or more', err)

    def test_claim_emits_the_instances_vfs(self):
        held = self._ledger().claim(INSTANCE, count=2)
        code, out, err = self._run('--claim', INSTANCE.upper(),
                                   '--ledger-path', self.ledger_path)
        self.assertEqual(0, code, err)
        self.assertEqual(sorted(held),
                         [h.address for h in self._hostdevs(out)])

    def test_claim_errors(self):
        code, _, err = self._run('--claim', INSTANCE, '--ledger-path',
                                 os.path.join(self.tmp, 'missing.json'))
        self.assertEqual(2, code)
        self.assertIn('does not exist', err)
        self._ledger()
        code, _, err = self._run('--claim', INSTANCE, '--ledger-path',
                                 self.ledger_path)
        self.assertIn('holds no VF', err)
        code, _, err = self._run('--claim', 'not-a-uuid', '--ledger-path',
                                 self.ledger_path)
        self.assertIn("'not-a-uuid' is not a UUID", err)
