"""The k-reciprocal search never builds a matrix larger than (queries·k) × (queries + bank)."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from comining.mining import reciprocal_relabel


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operator returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_reciprocal_search_stays_within_its_bound():
    queries, bank, k, dim = 64, 4096, 15, 8  # a small feature dimension, so only the matrices count
    torch.manual_seed(0)
    with LargestTensor() as seen:
        reciprocal_relabel(torch.randn(queries, dim), torch.randn(bank, dim), torch.randint(0, 10, (bank,)),
                           k, 0.15, 10)
    bound = queries * k * (queries + bank)
    assert bound // 2 < seen.largest <= bound  # the bound is reached (the test sees it) and never passed
