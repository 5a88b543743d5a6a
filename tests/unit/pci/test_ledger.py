"""Unit tests of the durable VF claim ledger (real files in a temp dir)."""

import json
import os
import threading

import fixtures

from multimodal_virt import exception
from multimodal_virt.pci import address
from multimodal_virt.pci import ledger as vf_ledger
from tests import base

A = address.PciAddress.parse
UUID1 = '6f1b8c2e-3a4d-4e5f-8a9b-0c1d2e3f4a51'
UUID2 = '6f1b8c2e-3a4d-4e5f-8a9b-0c1d2e3f4a52'
UUID3 = '6f1b8c2e-3a4d-4e5f-8a9b-0c1d2e3f4a53'

PF0 = A('0000:3b:00.0')
PF1 = A('0000:af:00.0')
# 4 VFs on NUMA node 0, 2 VFs on NUMA node 1.
INVENTORY = ([(A('0000:3b:00.%d' % f), 0, PF0) for f in range(4, 8)]
             + [(A('0000:af:00.%d' % f), 1, PF1) for f in range(4, 6)])


class LedgerTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.dir, 'vf-ledger.json')
        self.ledger = vf_ledger.Ledger(self.path)
        self.ledger.sync_inventory(INVENTORY)

    def states(self):
        return {str(r.address): (r.state, r.instance_uuid)
                for r in self.ledger.devices()}

    def test_inventory_all_available(self):
        records = self.ledger.devices()
        self.assertEqual(6, len(records))
        self.assertEqual({vf_ledger.AVAILABLE}, {r.state for r in records})
        self.assertEqual([0, 0, 0, 0, 1, 1], [r.numa_node for r in records])
        self.assertEqual(PF1, records[-1].parent)

    def test_claim_is_durable_and_idempotent(self):
        got = self.ledger.claim(UUID1, count=2)
        self.assertEqual(2, len(got))
        # A second Ledger object (a restarted process) sees the claim.
        again = vf_ledger.Ledger(self.path)
        self.assertEqual(got, again.instance_devices(UUID1))
        before = os.stat(self.path).st_mtime_ns
        self.assertEqual(got, again.claim(UUID1.upper(), count=2))
        self.assertEqual(before, os.stat(self.path).st_mtime_ns)

    def test_claim_other_count_for_same_instance_is_an_error(self):
        self.ledger.claim(UUID1, count=1)
        err = self.assertRaises(exception.ClaimError, self.ledger.claim,
                                UUID1, count=2)
        self.assertIn('already holds 1 VF', str(err))

    def test_two_instances_never_share_a_vf(self):
        first = self.ledger.claim(UUID1, count=3)
        second = self.ledger.claim(UUID2, count=3)
        self.assertFalse(set(first) & set(second))
        self.assertRaises(exception.ClaimError, self.ledger.claim, UUID3)

    def test_numa_required(self):
        got = self.ledger.claim(UUID1, count=2, numa_node=1,
                                numa_policy=vf_ledger.NUMA_REQUIRED)
        self.assertEqual([A('0000:af:00.4'), A('0000:af:00.5')], got)
        err = self.assertRaises(exception.ClaimError, self.ledger.claim,
                                UUID2, count=1, numa_node=1,
                                numa_policy=vf_ledger.NUMA_REQUIRED)
        self.assertIn('only 0 are available on NUMA node 1', str(err))
        self.assertEqual([], self.ledger.instance_devices(UUID2))

    def test_numa_preferred_spills_over(self):
        got = self.ledger.claim(UUID1, count=3, numa_node=1)
        self.assertEqual([A('0000:3b:00.4'), A('0000:af:00.4'),
                          A('0000:af:00.5')], got)

    def test_no_numa_request_stays_on_one_node_best_fit(self):
        # Two VFs fit on node 1 (2 free) and node 0 (4 free): best fit
        # picks node 1 and leaves node 0 whole for a larger request.
        got = self.ledger.claim(UUID1, count=2)
        self.assertEqual({1}, {r.numa_node for r in self.ledger.devices()
                               if r.instance_uuid is not None})
        self.assertEqual(4, len(self.ledger.claim(UUID2, count=4)))
        self.assertEqual(2, len(got))

    def test_allocate_release(self):
        got = self.ledger.claim(UUID1)
        self.assertEqual(got, self.ledger.allocate(UUID1))
        self.assertEqual((vf_ledger.ALLOCATED, UUID1),
                         self.states()[str(got[0])])
        self.assertEqual(got, self.ledger.release(UUID1))
        self.assertEqual([], self.ledger.release(UUID1))
        self.assertEqual((vf_ledger.AVAILABLE, None),
                         self.states()[str(got[0])])
        self.assertRaises(exception.ClaimError, self.ledger.allocate, UUID1)

    def test_vanished_vfs(self):
        held = self.ledger.claim(UUID1, count=1, numa_node=1,
                                 numa_policy=vf_ledger.NUMA_REQUIRED)
        result = self.ledger.sync_inventory(INVENTORY[:4])
        self.assertEqual(sorted([A('0000:af:00.4'), A('0000:af:00.5')]),
                         result['removed'])
        states = self.states()
        self.assertEqual((vf_ledger.CLAIMED, UUID1), states[str(held[0])])
        self.assertEqual(vf_ledger.REMOVED, states['0000:af:00.5'][0])
        self.ledger.release(UUID1)
        self.assertEqual(vf_ledger.REMOVED, self.states()[str(held[0])][0])
        self.ledger.sync_inventory(INVENTORY)
        self.assertEqual(vf_ledger.AVAILABLE,
                         self.states()['0000:af:00.5'][0])

    def test_reconcile(self):
        allocated = self.ledger.claim(UUID1, count=1, numa_node=1)
        self.ledger.allocate(UUID1)
        claimed = self.ledger.claim(UUID2, count=1, numa_node=1,
                                    numa_policy=vf_ledger.NUMA_REQUIRED)
        pending = self.ledger.claim(UUID3, count=1, numa_node=0)
        stray = A('0000:3b:00.7')
        report = self.ledger.reconcile({
            # UUID2's domain is defined with its claimed VF: promote.
            claimed[0]: UUID2,
            # a domain holds a VF the ledger had free: adopt.
            stray: UUID1,
            # a domain holds a device the ledger does not track: ignore.
            A('0000:00:02.0'): UUID1,
        })
        self.assertEqual([stray], report.adopted)
        self.assertEqual(claimed, report.promoted)
        self.assertEqual(allocated, report.freed)
        self.assertEqual(pending, report.pending)
        self.assertEqual([A('0000:00:02.0')], report.unknown)
        states = self.states()
        self.assertEqual((vf_ledger.ALLOCATED, UUID1), states[str(stray)])
        self.assertEqual((vf_ledger.AVAILABLE, None),
                         states[str(allocated[0])])
        self.assertEqual((vf_ledger.CLAIMED, UUID3), states[str(pending[0])])

    def test_reconcile_moves_vf_to_the_domain_that_has_it(self):
        got = self.ledger.claim(UUID1)
        self.ledger.allocate(UUID1)
        report = self.ledger.reconcile({got[0]: UUID2})
        self.assertEqual(got, report.moved)
        self.assertEqual((vf_ledger.ALLOCATED, UUID2), self.states()[
            str(got[0])])
        self.assertFalse(self.ledger.reconcile({got[0]: UUID2}).changed())

    def test_file_is_written_atomically_and_leftovers_removed(self):
        leftover = os.path.join(self.dir, '.vf-ledger.json.999.tmp')
        with open(leftover, 'w') as handle:
            handle.write('{"torn')
        self.ledger.claim(UUID1)
        self.assertFalse(os.path.exists(leftover))
        self.assertEqual(['vf-ledger.json', 'vf-ledger.json.lock'],
                         sorted(os.listdir(self.dir)))
        with open(self.path) as handle:
            doc = json.load(handle)
        self.assertEqual(1, doc['version'])
        self.assertEqual(6, len(doc['devices']))

    def test_corrupt_file_is_refused(self):
        with open(self.path, 'w') as handle:
            handle.write('{"version": 1, "devices": ')
        err = self.assertRaises(exception.ClaimError, self.ledger.claim,
                                UUID1)
        self.assertIn('is not valid JSON', str(err))
        self.assertIn(self.path, str(err))

    def test_bad_entry_is_refused(self):
        with open(self.path, 'w') as handle:
            json.dump({'version': 1, 'devices': {'0000:3b:00.4': {
                'state': 'claimed', 'instance_uuid': None}}}, handle)
        err = self.assertRaises(exception.ClaimError, self.ledger.devices)
        self.assertIn("bad entry '0000:3b:00.4'", str(err))

    def test_bad_input(self):
        for kwargs, text in (({'count': 0}, 'VF count'),
                             ({'count': True}, 'VF count'),
                             ({'numa_node': -1}, 'numa_node'),
                             ({'numa_policy': 'legacy'}, 'numa_policy')):
            err = self.assertRaises(exception.ClaimError, self.ledger.claim,
                                    UUID1, **kwargs)
            self.assertIn(text, str(err))
        err = self.assertRaises(exception.ClaimError, self.ledger.claim,
                                'not-a-uuid')
        self.assertIn("'not-a-uuid' is not a UUID", str(err))
        self.assertRaises(exception.ClaimError, vf_ledger.Ledger,
                          'relative/path.json')
        self.assertRaises(exception.ClaimError, self.ledger.sync_inventory,
                          [('0000:3b:00.4', 0, None)])
        missing = vf_ledger.Ledger(os.path.join(self.dir, 'no', 'x.json'))
        err = self.assertRaises(exception.ClaimError, missing.devices)
        self.assertIn('does not exist', str(err))

    def test_threads_do_not_interleave(self):
        # 6 threads, each with its own Ledger object, race for 6 VFs.
        results = {}
        barrier = threading.Barrier(6)

        def worker(i):
            owner = '6f1b8c2e-3a4d-4e5f-8a9b-0c1d2e3f4b%02d' % i
            barrier.wait()
            results[owner] = vf_ledger.Ledger(self.path).claim(owner)

        threads = [threading.Thread(target=worker, args=(i,))
                   for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        got = [a for addrs in results.values() for a in addrs]
        self.assertEqual(6, len(got))
        self.assertEqual(6, len(set(got)))
        owned = {r.address: r.instance_uuid for r in self.ledger.devices()}
        for owner, addrs in results.items():
            self.assertEqual(owner, owned[addrs[0]])


class SelectTestCase(base.TestCase):
    """select_vfs is pure: table-driven."""

    def test_select(self):
        free = [vf_ledger.VfRecord(addr, vf_ledger.AVAILABLE, numa, parent)
                for addr, numa, parent in INVENTORY]
        free.append(vf_ledger.VfRecord(A('0000:10:00.1'),
                                       vf_ledger.AVAILABLE, None))
        cases = [
            ((1, None, 'preferred'), ['0000:10:00.1']),
            ((3, None, 'preferred'), ['0000:3b:00.4', '0000:3b:00.5',
                                      '0000:3b:00.6']),
            ((6, None, 'preferred'), ['0000:3b:00.4', '0000:3b:00.5',
                                      '0000:3b:00.6', '0000:3b:00.7',
                                      '0000:af:00.4', '0000:af:00.5']),
            ((2, 1, 'required'), ['0000:af:00.4', '0000:af:00.5']),
            ((1, 0, 'required'), ['0000:3b:00.4']),
        ]
        for args, want in cases:
            self.assertEqual([A(w) for w in want],
                             vf_ledger.select_vfs(free, *args), args)
        self.assertRaises(exception.ClaimError, vf_ledger.select_vfs,
                          free, 3, 1, 'required')
        self.assertRaises(exception.ClaimError, vf_ledger.select_vfs,
                          free, 8)
