import gc

from multimodal_virt.scheduler import request_memo
from tests import base


class Request(object):
    """Stands in for a RequestSpec: weak-referable, identity-hashed."""


class RequestMemoTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.memo = request_memo.RequestMemo()
        self.calls = []

    def _compute(self, value):
        def compute(request):
            self.calls.append(id(request))  # no reference kept
            return value
        return compute

    def test_computed_once_per_request_even_interleaved(self):
        one, two = Request(), Request()
        self.assertEqual(1, self.memo.get(one, self._compute(1)))
        self.assertEqual(2, self.memo.get(two, self._compute(2)))
        self.assertEqual(1, self.memo.get(one, self._compute('again')))
        self.assertEqual(2, self.memo.get(two, self._compute('again')))
        self.assertEqual([id(one), id(two)], self.calls)

    def test_none_is_remembered(self):
        request = Request()
        self.assertIsNone(self.memo.get(request, self._compute(None)))
        self.assertIsNone(self.memo.get(request, self._compute('later')))
        self.assertEqual(1, len(self.calls))

    def test_value_goes_with_the_request(self):
        request = Request()
        self.memo.get(request, self._compute(1))
        self.memo.get(Request(), self._compute(2))  # the last one asked
        del request
        gc.collect()
        self.assertEqual(0, len(self.memo))

    def test_unreferenceable_request_computed_every_time(self):
        self.assertEqual(1, self.memo.get(None, self._compute(1)))
        self.assertEqual(2, self.memo.get(None, self._compute(2)))
        self.assertEqual(2, len(self.calls))
