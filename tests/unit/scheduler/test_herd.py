from multimodal_virt.scheduler import herd
from tests import base


class HerdGuardTest(base.TestCase):

    def test_counts_growth_since_sample_and_resets_on_new_sample(self):
        guard = herd.HerdGuard()
        self.assertEqual(0, guard.boots_since_sample('h', 100.0, 5))
        self.assertEqual(0, guard.boots_since_sample('h', 100.0, 5))
        self.assertEqual(2, guard.boots_since_sample('h', 100.0, 7))
        self.assertEqual(0, guard.boots_since_sample('h', 110.0, 7))
        self.assertEqual(1, guard.boots_since_sample('h', 110.0, 8))

    def test_deletes_never_go_negative(self):
        guard = herd.HerdGuard()
        guard.boots_since_sample('h', 1.0, 5)
        self.assertEqual(0, guard.boots_since_sample('h', 1.0, 2))

    def test_bounded(self):
        guard = herd.HerdGuard(max_hosts=10)
        for i in range(25):
            guard.boots_since_sample('h%d' % i, 1.0, 0)
        self.assertLessEqual(len(guard._baselines), 10)
