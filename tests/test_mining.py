"""comining.mining: semi_hard_triplet and reciprocal_relabel (hand-worked cases and random comparison
to a reference), the MemoryBank, and the bound on the k-reciprocal search's memory.

Every hand-worked case runs against both the loop-based reference (tests/reference_mining.py) and
comining.mining, so a bug in the reference is caught as well as one in the real code.
"""
import os
import sys

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from comining import mining
from comining.mining import MemoryBank, reciprocal_relabel

sys.path.insert(0, os.path.dirname(__file__))  # works whether or not tests/ is a package
import reference_mining as ref  # noqa: E402


def _f32(x, dim=2):
    x = np.asarray(x, dtype=np.float64).reshape(-1, dim)
    return torch.tensor(x, dtype=torch.float32)


def _i64(x):
    return torch.tensor(np.asarray(x, dtype=np.int64).reshape(-1))


def real_triplet(anchors, anchor_labels, bank, bank_labels, margin, pos_range=(0, 5),
                 neg_range=(0, 5), dim=2):
    from comining.mining import semi_hard_triplet
    out = semi_hard_triplet(_f32(anchors, dim), _i64(anchor_labels), _f32(bank, dim),
                            _i64(bank_labels), margin, pos_range=pos_range, neg_range=neg_range)
    assert out.shape == (len(anchor_labels),)
    return out.detach().double().numpy()


def ref_triplet(anchors, anchor_labels, bank, bank_labels, margin, pos_range=(0, 5),
                neg_range=(0, 5), dim=2):
    # Round through float32 like the real inputs, so both see the same numbers.
    return ref.semi_hard_triplet(_f32(anchors, dim).double().numpy(), list(anchor_labels),
                                 _f32(bank, dim).double().numpy(), list(bank_labels), margin,
                                 pos_range, neg_range)


def real_relabel(queries, bank, bank_labels, k, sigma, num_classes, dim=2):
    from comining.mining import reciprocal_relabel
    soft, is_id, pseudo = reciprocal_relabel(_f32(queries, dim), _f32(bank, dim),
                                             _i64(bank_labels), k, sigma, num_classes)
    n = _f32(queries, dim).shape[0]
    assert soft.shape == (n, num_classes) and soft.dtype.is_floating_point
    assert is_id.shape == (n,) and is_id.dtype == torch.bool
    assert pseudo.shape == (n,) and pseudo.dtype == torch.int64
    return soft.double().numpy(), is_id.numpy(), pseudo.numpy()


def ref_relabel(queries, bank, bank_labels, k, sigma, num_classes, dim=2):
    return ref.reciprocal_relabel(_f32(queries, dim).double().numpy(),
                                  _f32(bank, dim).double().numpy(), list(bank_labels), k, sigma,
                                  num_classes)


TRIPLET = {"reference": ref_triplet, "real": real_triplet}
RELABEL = {"reference": ref_relabel, "real": real_relabel}
both_triplet = pytest.mark.parametrize("triplet", TRIPLET.values(), ids=TRIPLET.keys())
both_relabel = pytest.mark.parametrize("relabel", RELABEL.values(), ids=RELABEL.keys())


# ---------------------------------------------------------------- semi-hard triplet, by hand
# Pythagorean-triple vectors give exact cosines; lengths differ to check normalisation happens.
# Anchor a0 = (5,0) label 0, anchor a1 = (0,3) label 1.
BANK = [(2, 0), (4, 3), (3, 4), (0, 5), (4, -3), (0, -1), (-3, 4), (-1, 0)]
BANK_LABELS = [0, 0, 0, 0, 1, 1, 1, 1]
ANCHORS, ANCHOR_LABELS = [(5, 0), (0, 3)], [0, 1]
# a0: positives ascending 0, .6, .8, 1      negatives descending .8, 0, -.6, -1
# a1: positives ascending -1, -.6, 0, .8    negatives descending 1, .8, .6, 0
TRIPLET_CASES = [
    # margin, pos_range, neg_range, expected [a0, a1]
    (0.0, (0, 5), (0, 5), [0.0, 0.8]),  # a0: -.2 - .6 < 0 clipped; a1: .6 - (-.2)
    (1.0, (0, 5), (0, 5), [0.2, 1.8]),  # the margin lifts a0 above zero
    (0.0, (1, 3), (0, 1), [0.1, 1.3]),  # 2nd+3rd least similar positives: a0 s_p=.7, s_n=.8
    (0.5, (0, 1), (1, 3), [0.2, 2.2]),  # 2nd+3rd most similar negatives: a0 s_n=-.3, s_p=0
    (2.0, (3, 10), (2, 10), [0.2, 1.5]),  # upper rank past the end is cut: a0 s_p=1, s_n=-.8
    (5.0, (4, 6), (0, 5), [0.0, 0.0]),  # only 4 positives: rank range empty -> 0
    (5.0, (0, 5), (4, 5), [0.0, 0.0]),  # only 4 negatives: rank range empty -> 0
]


@both_triplet
@pytest.mark.parametrize("margin,pos_range,neg_range,expected", TRIPLET_CASES)
def test_triplet_hand_worked(triplet, margin, pos_range, neg_range, expected):
    got = triplet(ANCHORS, ANCHOR_LABELS, BANK, BANK_LABELS, margin, pos_range, neg_range)
    np.testing.assert_allclose(got, expected, atol=1e-6)


@both_triplet
def test_triplet_anchor_without_positive_or_negative(triplet):
    # Label 2 has no positive in the bank; against a bank of label 0 only, a0 has no negative.
    assert triplet([(5, 0)], [2], BANK, BANK_LABELS, 1.0).tolist() == [0.0]
    assert triplet([(5, 0)], [0], BANK[:4], BANK_LABELS[:4], 1.0).tolist() == [0.0]


@both_triplet
def test_triplet_empty_bank_and_no_anchors(triplet):
    assert triplet(ANCHORS, ANCHOR_LABELS, np.zeros((0, 2)), [], 1.0).tolist() == [0.0, 0.0]
    assert triplet(np.zeros((0, 2)), [], BANK, BANK_LABELS, 1.0).shape == (0,)


def test_triplet_has_gradient_for_anchors():
    from comining.mining import semi_hard_triplet
    anchors = _f32(ANCHORS).requires_grad_(True)
    loss = semi_hard_triplet(anchors, _i64(ANCHOR_LABELS), _f32(BANK), _i64(BANK_LABELS), 1.0)
    loss.sum().backward()
    assert torch.isfinite(anchors.grad).all() and anchors.grad.abs().sum() > 0


# ---------------------------------------------------------------- reciprocal relabel, by hand
# Unit vectors on a circle: Euclidean distance grows with the angle between them, so the
# reasoning below is in degrees. Scales differ to check normalisation happens inside.
def unit(deg, scale=1.0):
    r = np.deg2rad(deg)
    return (scale * np.cos(r), scale * np.sin(r))


# g0 at -20 deg (label 0), g1 at 25 deg (label 1), g2 at 40 deg (label 1).
R_BANK = [unit(-20, 2.0), unit(25, 0.5), unit(40, 3.0)]
R_LABELS = [0, 1, 1]
Q0, Q1 = unit(0, 1.5), unit(-15, 0.7)


@both_relabel
def test_relabel_non_reciprocal_neighbour_is_dropped(relabel):
    # k=2, query Q0 at 0: N_2 = {g0 (20 deg), g1 (25 deg)}. Pool = {Q0, g0, g1, g2}.
    # g0: only g0 itself is closer than Q0 (20) -> 1 < 2, reciprocal.
    # g1: g1 itself and g2 (15) are closer than Q0 (25) -> 2, not reciprocal.
    # Soft label = one-hot of g0 alone, not the (.5, .5) of both neighbours.
    soft, is_id, pseudo = relabel([Q0], R_BANK, R_LABELS, 2, 0.5, 2)
    np.testing.assert_allclose(soft, [[1.0, 0.0]], atol=1e-6)
    assert is_id.tolist() == [True] and pseudo.tolist() == [0]


@both_relabel
def test_relabel_other_queries_take_slots_and_fallback(relabel):
    # Adding Q1 at -15 to the pool: for g0, Q1 (5 deg) is now closer than Q0 (20), so g0 is no longer
    # reciprocal to Q0; g1 still is not either -> Q0 falls back to all of N_2 = {g0, g1} -> (.5, .5),
    # pseudo-label 0 (first of the tied maxima).
    # Q1: N_2 = {g0 (5), g1 (40)}; g0 sees only itself closer (1 < 2) -> reciprocal; g1 sees itself,
    # g2 (15) and Q0 (25) closer than 40 -> not. Soft label = one-hot(0).
    soft, is_id, pseudo = relabel([Q0, Q1], R_BANK, R_LABELS, 2, 0.5, 2)
    np.testing.assert_allclose(soft, [[0.5, 0.5], [1.0, 0.0]], atol=1e-6)
    assert pseudo.tolist() == [0, 0]


@both_relabel
@pytest.mark.parametrize("sigma,expected", [(0.49, [True, True]), (0.5, [True, True]),
                                            (0.51, [False, True])])
def test_relabel_sigma_threshold(relabel, sigma, expected):
    # Q0's largest soft entry is exactly 0.5 (previous test): ID iff 0.5 >= sigma.
    _, is_id, _ = relabel([Q0, Q1], R_BANK, R_LABELS, 2, sigma, 2)
    assert is_id.tolist() == expected


@both_relabel
def test_relabel_k_larger_than_bank(relabel):
    # k=10 > B=3: N_k = whole bank, and the pool has only 4 entries, so every neighbour is
    # reciprocal. Soft = mean(one-hot 0, 1, 1) over 3 classes; argmax is class 1.
    soft, is_id, pseudo = relabel([Q0], R_BANK, R_LABELS, 10, 0.6, 3)
    np.testing.assert_allclose(soft, [[1 / 3, 2 / 3, 0.0]], atol=1e-6)
    assert is_id.tolist() == [True] and pseudo.tolist() == [1]
    assert relabel([Q0], R_BANK, R_LABELS, 10, 0.7, 3)[1].tolist() == [False]


@both_relabel
def test_relabel_empty_bank(relabel):
    soft, is_id, pseudo = relabel([Q0, Q1, unit(90)], np.zeros((0, 2)), [], 3, 0.1, 4)
    np.testing.assert_allclose(soft, np.full((3, 4), 0.25), atol=1e-6)
    assert is_id.tolist() == [False] * 3 and pseudo.tolist() == [0] * 3


@both_relabel
@pytest.mark.parametrize("bank,labels", [(R_BANK, R_LABELS), (np.zeros((0, 2)), [])])
def test_relabel_no_queries(relabel, bank, labels):
    soft, is_id, pseudo = relabel(np.zeros((0, 2)), bank, labels, 2, 0.5, 3)
    assert soft.shape == (0, 3) and is_id.shape == (0,) and pseudo.shape == (0,)


# ---------------------------------------------------------------- random comparison
def _clustered(rng, n, labels, centres):
    """Points scattered around their class centre, so there are real positives and neighbours."""
    return centres[labels] + rng.normal(scale=rng.uniform(0.3, 1.5), size=(n, centres.shape[1]))


@pytest.mark.parametrize("seed", range(100))
def test_triplet_matches_reference(seed):
    rng = np.random.RandomState(seed)
    dim, c = rng.randint(2, 9), rng.randint(2, 7)
    a, b = rng.randint(0, 21), rng.randint(0, 61)
    centres = rng.normal(size=(c, dim))
    al, bl = rng.randint(0, c, size=a), rng.randint(0, c, size=b)
    anchors, bank = _clustered(rng, a, al, centres), _clustered(rng, b, bl, centres)
    pos_range = tuple(sorted(rng.randint(0, 8, size=2))) if seed % 3 else (0, 5)
    neg_range = tuple(sorted(rng.randint(0, 8, size=2))) if seed % 3 else (0, 5)
    margin = float(rng.choice([0.0, 0.4, rng.uniform(0, 1)]))
    args = (anchors, al, bank, bl, margin, pos_range, neg_range, dim)
    np.testing.assert_allclose(real_triplet(*args), ref_triplet(*args), atol=1e-5)


@pytest.mark.parametrize("seed", range(100))
def test_relabel_matches_reference(seed):
    rng = np.random.RandomState(seed)
    dim, c = rng.randint(2, 9), rng.randint(2, 7)
    centres = rng.normal(size=(c, dim))
    for _ in range(20):  # redraw inputs whose decisions sit on a float32-sized tie
        q, b, k = rng.randint(0, 21), rng.randint(0, 61), rng.randint(1, 9)
        bl = rng.randint(0, c, size=b)
        queries = _clustered(rng, q, rng.randint(0, c, size=q), centres)
        bank = _clustered(rng, b, bl, centres)
        args = (_f32(queries, dim).double().numpy(), _f32(bank, dim).double().numpy())
        if ref.reciprocal_min_gap(*args, k) > 1e-5:
            break
    else:
        pytest.skip("no tie-free draw")
    # sigma away from fractions j/m (m <= 8): exact-boundary cases are in the hand-worked tests.
    sigma = float(rng.choice([0.15, rng.uniform(0.05, 0.95)]))
    soft, is_id, pseudo = real_relabel(queries, bank, bl, k, sigma, c, dim)
    r_soft, r_id, r_pseudo = ref_relabel(queries, bank, bl, k, sigma, c, dim)
    np.testing.assert_allclose(soft, r_soft, atol=1e-5)
    np.testing.assert_allclose(soft.sum(axis=1), np.ones(q), atol=1e-5)
    np.testing.assert_allclose(r_soft.sum(axis=1), np.ones(q), atol=1e-12)
    assert is_id.tolist() == r_id.tolist()
    assert pseudo.tolist() == r_pseudo.tolist()  # ties in counts are exact: first max wins


# ---------------------------------------------------------------- MemoryBank

def _rows(labels):
    # Feature row of a label: the un-normalised vector [l+1, 1] (so normalising visibly changes it).
    return torch.tensor([[l + 1.0, 1.0] for l in labels])


def _unit(labels):
    return torch.nn.functional.normalize(_rows(labels), dim=1)


def test_bank_ring_order_and_valid_part():
    bank = MemoryBank(4, 2)
    assert bank.feats.shape == (0, 2) and bank.labels.shape == (0,)
    bank.push(_rows([0, 1, 2]), torch.tensor([0, 1, 2]))  # a0 a1 a2 → slots 0,1,2
    assert bank.labels.tolist() == [0, 1, 2]  # only the valid part before the bank fills
    torch.testing.assert_close(bank.feats, _unit([0, 1, 2]))
    # b0 b1 b2 go to slots 3, 0, 1 (wrapping): slots hold [b1, b2, a2, b0].
    bank.push(_rows([10, 11, 12]), torch.tensor([10, 11, 12]))
    assert bank.labels.tolist() == [11, 12, 2, 10]
    torch.testing.assert_close(bank.feats, _unit([11, 12, 2, 10]))
    torch.testing.assert_close(bank.feats.norm(dim=1), torch.ones(4))
    bank.push(_rows([]).reshape(0, 2), torch.tensor([], dtype=torch.long))  # an empty push changes nothing
    assert bank.labels.tolist() == [11, 12, 2, 10]


def test_bank_push_larger_than_size_keeps_newest():
    bank = MemoryBank(4, 2)
    bank.push(_rows(range(6)), torch.arange(6))  # only 2,3,4,5 survive, in slots 0..3
    assert bank.labels.tolist() == [2, 3, 4, 5]
    bank = MemoryBank(4, 2)
    bank.push(_rows([0, 1, 2]), torch.tensor([0, 1, 2]))  # pointer at slot 3
    bank.push(_rows(range(20, 26)), torch.arange(20, 26))  # 22..25 go to slots 3, 0, 1, 2
    assert bank.labels.tolist() == [23, 24, 25, 22]
    torch.testing.assert_close(bank.feats, _unit([23, 24, 25, 22]))


def test_bank_detaches():
    bank = MemoryBank(3, 2)
    x = _rows([0, 1]).requires_grad_()
    bank.push(x * 2, torch.tensor([0, 1]))
    assert not bank.feats.requires_grad


def test_bank_state_dict_round_trip():
    bank = MemoryBank(4, 2)
    bank.push(_rows([0, 1, 2]), torch.tensor([0, 1, 2]))
    other = MemoryBank(4, 2)
    other.load_state_dict(bank.state_dict())
    assert other.labels.tolist() == [0, 1, 2] and other.ptr == 3 and other.count == 3
    torch.testing.assert_close(other.feats, bank.feats)
    # The restored pointer continues the ring where the original left off.
    for b in (bank, other):
        b.push(_rows([7, 8]), torch.tensor([7, 8]))
    assert other.labels.tolist() == bank.labels.tolist() == [8, 1, 2, 7]


# ---------------------------------------------------------------- the reciprocal search's memory
# It never builds a matrix larger than (queries·k) × (queries + bank).

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
    # One block would be 64·15 × 4,160 distances; in pieces of whole queries, none passes DISTANCE_BLOCK
    # and the largest comes within one query's rows of it (the test sees the pieces).
    one_query = k * (queries + bank)
    assert mining.DISTANCE_BLOCK < queries * one_query
    assert mining.DISTANCE_BLOCK - one_query < seen.largest <= mining.DISTANCE_BLOCK


def test_reciprocal_search_in_pieces_gives_the_one_block_result(monkeypatch):
    # 300 queries against 700 entries (k 15): one block would be 300·15 × 1,000 distances; with the
    # block set to three queries' worth, the search runs in 100 pieces and must decide exactly the same.
    torch.manual_seed(0)
    args = (torch.randn(300, 8), torch.randn(700, 8), torch.randint(0, 5, (700,)), 15, 0.15, 5)
    monkeypatch.setattr(mining, "DISTANCE_BLOCK", 1 << 40)
    whole = reciprocal_relabel(*args)
    monkeypatch.setattr(mining, "DISTANCE_BLOCK", 3 * 15 * 1000)
    with LargestTensor() as seen:
        pieces = reciprocal_relabel(*args)
    for one, other in zip(whole, pieces):
        assert torch.equal(one, other)
    assert seen.largest <= 300 * 700  # the queries-by-bank similarities, not the 4.5 million distances
