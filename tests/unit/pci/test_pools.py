"""VF pools: keys equal Nova's PciDeviceStats pools; claim/free semantics."""

import functools
import json
import os

import ddt
import fixtures
from nova import objects
from nova.pci import stats as nova_stats
from nova.pci import whitelist
from oslo_utils import uuidutils

from multimodal_virt import exception
from multimodal_virt.pci import nova_config
from multimodal_virt.pci import pools
from multimodal_virt.pci import sysfs
from tests import base
from tests.fixtures import sysfs_builder as layouts


def nova_devices(pfs):
    """Real nova.objects.PciDevice objects for the discovered VFs."""
    objects.register_all()
    devs = []
    for pf in pfs:
        for vf in pf.vfs:
            devs.append(objects.PciDevice(
                compute_node_id=1, address=str(vf.address),
                vendor_id=vf.vendor_id, product_id=vf.product_id,
                dev_type=vf.dev_type, status='available',
                parent_addr=str(vf.parent), numa_node=vf.numa_node,
                extra_info={}, request_id=None, instance_uuid=None))
    return devs


def _is_pf(root, domain, bus, slot, function):
    return os.path.exists(os.path.join(
        root, 'bus', 'pci', 'devices',
        '%s:%s:%s.%s' % (domain, bus, slot, function), 'sriov_totalvfs'))


def nova_pool_keys(pfs, specs):
    stats = nova_stats.PciDeviceStats(
        None, dev_filter=whitelist.Whitelist(
            [json.dumps(spec) for spec in specs]))
    for dev in nova_devices(pfs):
        stats.add_device(dev)
    return stats, sorted(
        ({k: v for k, v in pool.items() if k != 'devices'}
         for pool in stats.pools), key=lambda p: json.dumps(p, sort_keys=True))


@ddt.ddt
class NovaKeyEquivalenceTest(base.TestCase):
    """Our pools and Nova's, from the same devices and device_spec."""

    @ddt.data(*[(name, style) for name in layouts.LAYOUTS
                for style in nova_config.SPEC_STYLES])
    @ddt.unpack
    def test_same_pools_as_nova(self, name, style):
        tree = self.useFixture(layouts.SysfsTree(name))
        if style == 'pf_address':
            # Nova reads /sys to decide the spec address is a PF; point
            # that read at the recorded tree instead of this host's /sys.
            self.useFixture(fixtures.MockPatch(
                'nova.pci.utils.is_physical_function',
                side_effect=functools.partial(_is_pf, tree.root)))
        pfs = sysfs.discover(tree.root)
        settings = nova_config.Settings(device_spec_style=style)
        if style == 'pf_address' and any(
                (pf.vendor_id, pf.product_id) in pf.vf_models()
                for pf in pfs):
            # VFs share the PF's id: a PF-address spec would select the PF
            # too (see tests/functional/pci/test_pf_address.py).
            self.assertRaises(exception.MultimodalVirtError,
                              nova_config.device_specs, pfs, settings)
            return
        specs = nova_config.device_specs(pfs, settings)
        _, theirs = nova_pool_keys(pfs, specs)
        ours = pools.VfPools(pfs, nova_config.pool_tags(pfs, settings))
        mine = sorted(ours.summary(),
                      key=lambda p: json.dumps(p, sort_keys=True))
        self.assertEqual(theirs, mine)
        expected = [
            {'vendor_id': v, 'product_id': p, 'numa_node': n,
             'address': a, 'count': c}
            for v, p, n, a, c in tree.layout['expected']['pools']]
        self.assertEqual(
            sorted(expected, key=lambda p: p['address']),
            [{k: pool[k] for k in ('vendor_id', 'product_id', 'numa_node',
                                   'address', 'count')}
             for pool in sorted(mine, key=lambda p: p['address'])])

    def test_spec_tags_become_pool_keys_like_nova(self):
        tree = self.useFixture(layouts.SysfsTree('amd-mi25'))
        pfs = sysfs.discover(tree.root)
        specs = nova_config.device_specs(pfs, nova_config.Settings())
        for spec in specs:
            spec['managed'] = 'true'
        _, theirs = nova_pool_keys(pfs, specs)
        tags = {pf.address: dict(nova_config.pool_tags(
            pfs, nova_config.Settings())[pf.address], managed='true')
            for pf in pfs}
        self.assertEqual(theirs, pools.VfPools(pfs, tags).summary())
        self.assertEqual('true', theirs[0]['managed'])


class ClaimTest(base.TestCase):

    def setUp(self):
        super().setUp()
        tree = self.useFixture(layouts.SysfsTree('nvidia-a100'))
        self.pfs = sysfs.discover(tree.root)
        self.pools = pools.VfPools(self.pfs)

    def _nodes(self, vfs):
        return sorted({vf.numa_node for vf in vfs})

    def test_claim_and_free_round_trip(self):
        vfs = self.pools.claim(3, request_id='inst-1')
        self.assertEqual(3, len({vf.address for vf in vfs}))
        self.assertEqual(29, self.pools.free_count())
        self.pools.free(vf.address for vf in vfs)
        self.assertEqual(32, self.pools.free_count())

    def test_numa_affine_first(self):
        vfs = self.pools.claim(4, numa_nodes=[1])
        self.assertEqual([1], self._nodes(vfs))

    def test_required_fails_when_node_is_short(self):
        self.pools.claim(16, numa_nodes=[1], numa_policy='required')
        err = self.assertRaises(exception.ClaimError, self.pools.claim, 1,
                                numa_nodes=[1], numa_policy='required')
        self.assertIn('0 matching free', str(err))
        self.assertEqual(16, self.pools.free_count())

    def test_legacy_does_not_cross_to_other_node(self):
        self.pools.claim(16, numa_nodes=[1])
        self.assertRaises(exception.ClaimError, self.pools.claim, 1,
                          numa_nodes=[1], numa_policy='legacy')

    def test_preferred_spills_to_other_node(self):
        vfs = self.pools.claim(18, numa_nodes=[1], numa_policy='preferred')
        nodes = [vf.numa_node for vf in vfs]
        self.assertEqual(16, nodes.count(1))
        self.assertEqual(2, nodes.count(0))

    def test_all_or_nothing(self):
        self.assertRaises(exception.ClaimError, self.pools.claim, 33)
        self.assertEqual(32, self.pools.free_count())

    def test_id_filter(self):
        self.assertRaises(exception.ClaimError, self.pools.claim, 1,
                          product_id='0x20b5')
        self.assertEqual(1, len(self.pools.claim(1, vendor_id='0x10DE',
                                                 product_id='20F1')))

    def test_free_unclaimed_is_refused_atomically(self):
        (vf,) = self.pools.claim(1)
        other = self.pfs[1].vfs[0].address
        err = self.assertRaises(exception.ClaimError, self.pools.free,
                                [vf.address, other])
        self.assertIn('%s is not claimed' % other, str(err))
        self.assertEqual(31, self.pools.free_count())
        self.assertRaises(exception.ClaimError, self.pools.free,
                          [vf.address, vf.address])
        self.pools.free([vf])
        self.assertEqual(32, self.pools.free_count())

    def test_bad_arguments_named(self):
        for kwargs, text in (({'count': 0}, 'count must be a positive'),
                             ({'numa_policy': 'socket'}, 'numa_policy'),
                             ({'numa_nodes': [-1]}, 'numa_nodes'),
                             ({'vendor_id': 'nvidia'}, 'vendor_id')):
            err = self.assertRaises(
                (exception.ClaimError, exception.PciDiscoveryError),
                self.pools.claim, **kwargs)
            self.assertIn(text, str(err))
        self.assertRaises(exception.ClaimError, self.pools.free,
                          ['0000:3b:00.4'])

    def test_counts_agree_with_nova_after_claims(self):
        specs = nova_config.device_specs(self.pfs, nova_config.Settings())
        stats, _ = nova_pool_keys(self.pfs, specs)
        request = objects.InstancePCIRequest(
            count=5, request_id=uuidutils.generate_uuid(), alias_name='a',
            spec=[{'vendor_id': '10de', 'product_id': '20f1',
                   'dev_type': 'type-VF'}])
        cell = objects.InstanceNUMACell(id=1, cpuset=set(), pcpuset=set(),
                                        memory=0)
        theirs = stats.consume_requests([request], [cell])
        ours = self.pools.claim(5, numa_nodes=[1], numa_policy='legacy')
        self.assertEqual(sorted(d.address for d in theirs),
                         sorted(str(vf.address) for vf in ours))
        self.assertEqual(
            sorted(p['count'] for p in stats.pools),
            sorted(p['count'] for p in self.pools.summary()))
