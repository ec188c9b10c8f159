"""Properties over random sizes and labels (hypothesis): the noise protocol, the mining functions,
the clean/noisy split and the memory bank never break their invariants, empty inputs included."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from comining.errors import UserError
from comining.methods import num_kept
from comining.methods.comining import split_by_score
from comining.mining import MemoryBank, reciprocal_relabel, semi_hard_triplet
from comining.noise import closed_classes, corrupt, transition_matrix

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOISE_TYPES = st.sampled_from(["symmetric", "asymmetric", "sym", "pairflip"])
RATES = st.floats(0, 1, exclude_max=True, allow_nan=False)


@st.composite
def noise_settings(draw):
    """(type, closed rate in [0, 1), open ratio leaving at least 2 known classes, num_classes 2..120)."""
    num_classes = draw(st.integers(2, 120))
    open_ratio = draw(st.floats(0, 1 - 2 / num_classes, allow_nan=False))
    assume(closed_classes(num_classes, open_ratio) >= 2)
    return draw(NOISE_TYPES), draw(RATES), open_ratio, num_classes


def features(draw, rows: int, dim: int) -> torch.Tensor:
    """Random features; sometimes from {-1, 0, 1}, so that ties, duplicates and zero rows occur."""
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    if draw(st.booleans()):
        return torch.randint(-1, 2, (rows, dim), generator=generator).float()
    return torch.randn(rows, dim, generator=generator)


# --- the noise protocol ------------------------------------------------------------------------

@SETTINGS
@given(noise_settings())
def test_transition_matrix_is_stochastic_and_never_reaches_an_open_class(case):
    noise_type, closed_rate, open_ratio, num_classes = case
    P = transition_matrix(noise_type, closed_rate, open_ratio, num_classes)
    cc = closed_classes(num_classes, open_ratio)
    assert P.shape == (num_classes, num_classes)
    assert np.all(P >= 0) and np.all(P <= 1)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-9)
    assert np.all(P[:, cc:] == 0)  # no label ever lands in an open-set class
    np.testing.assert_allclose(np.diag(P)[:cc], 1 - closed_rate)
    np.testing.assert_allclose(P[cc:, :cc], 1 / cc)  # open-set rows: uniform over the known classes


@SETTINGS
@given(st.integers(2, 120), st.data())
def test_transition_matrix_refuses_fewer_than_two_known_classes(num_classes, data):
    open_ratio = data.draw(st.floats(1 - 2 / num_classes, 1, exclude_max=True, allow_nan=False))
    assume(closed_classes(num_classes, open_ratio) < 2)
    with pytest.raises(UserError):
        transition_matrix("symmetric", 0.2, open_ratio, num_classes)


@SETTINGS
@given(noise_settings(), st.integers(0, 200), st.integers(0, 2**32 - 1), st.data())
def test_corrupt_never_gives_an_open_set_label(case, n, seed, data):
    noise_type, closed_rate, open_ratio, num_classes = case
    P = transition_matrix(noise_type, closed_rate, open_ratio, num_classes)
    cc = closed_classes(num_classes, open_ratio)
    labels = np.asarray(data.draw(st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)), dtype=np.int64)
    noisy = corrupt(labels, P, seed)
    assert noisy.shape == labels.shape
    assert np.all((noisy >= 0) & (noisy < cc))
    assert np.array_equal(noisy, corrupt(labels, P, seed))  # the same seed corrupts the same labels
    if closed_rate == 0:
        closed = labels < cc
        assert np.array_equal(noisy[closed], labels[closed])


# --- k-reciprocal relabelling -------------------------------------------------------------------

@st.composite
def relabel_cases(draw):
    q, b = draw(st.integers(0, 12)), draw(st.integers(0, 40))
    k, c, dim = draw(st.integers(1, 10)), draw(st.integers(2, 8)), draw(st.integers(1, 8))
    queries, bank = features(draw, q, dim), features(draw, b, dim)
    labels = torch.tensor(draw(st.lists(st.integers(0, c - 1), min_size=b, max_size=b)), dtype=torch.long)
    sigma = draw(st.floats(0, 1, allow_nan=False))
    return queries, bank, labels, k, sigma, c


@SETTINGS
@given(relabel_cases())
def test_reciprocal_relabel_soft_labels_are_distributions(case):
    queries, bank, labels, k, sigma, c = case
    soft, is_id, pseudo = reciprocal_relabel(queries, bank, labels, k, sigma, c)
    q = queries.shape[0]
    assert soft.shape == (q, c) and is_id.shape == (q,) and pseudo.shape == (q,)
    assert is_id.dtype == torch.bool and pseudo.dtype == torch.long
    assert torch.isfinite(soft).all()
    assert ((soft >= 0) & (soft <= 1 + 1e-6)).all()
    torch.testing.assert_close(soft.sum(1), torch.ones(q), atol=1e-5, rtol=0)
    assert ((pseudo >= 0) & (pseudo < c)).all()
    if q == 0:
        return
    top = soft.max(1).values
    assert torch.equal(soft.gather(1, pseudo[:, None]).squeeze(1), top)  # pseudo-label = an argmax
    if bank.shape[0] == 0:  # no neighbours: uniform and, as documented, never in-distribution
        torch.testing.assert_close(soft, torch.full((q, c), 1 / c))
        assert not is_id.any()
    else:
        assert torch.equal(is_id, top >= sigma)
        present = torch.zeros(c, dtype=torch.bool)
        present[labels] = True
        assert (soft[:, ~present] == 0).all()  # mass only on labels the bank holds


# --- semi-hard triplet loss -----------------------------------------------------------------------

@st.composite
def triplet_cases(draw):
    a, b = draw(st.integers(0, 12)), draw(st.integers(0, 40))
    c, dim = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    anchors, bank = features(draw, a, dim), features(draw, b, dim)
    anchor_labels = torch.tensor(draw(st.lists(st.integers(0, c - 1), min_size=a, max_size=a)), dtype=torch.long)
    bank_labels = torch.tensor(draw(st.lists(st.integers(0, c - 1), min_size=b, max_size=b)), dtype=torch.long)
    margin = draw(st.floats(0, 1, allow_nan=False))
    plo, nlo = draw(st.integers(0, 6)), draw(st.integers(0, 6))
    pos_range = (plo, draw(st.integers(plo + 1, 12)))
    neg_range = (nlo, draw(st.integers(nlo + 1, 12)))
    return anchors, anchor_labels, bank, bank_labels, margin, pos_range, neg_range


@SETTINGS
@given(triplet_cases())
def test_semi_hard_triplet_is_finite_non_negative_and_bounded(case):
    anchors, anchor_labels, bank, bank_labels, margin, pos_range, neg_range = case
    anchors = anchors.requires_grad_()
    loss = semi_hard_triplet(anchors, anchor_labels, bank, bank_labels, margin, pos_range, neg_range)
    assert loss.shape == (anchors.shape[0],)
    assert torch.isfinite(loss).all() and (loss >= 0).all()
    assert (loss <= 2 + margin + 1e-5).all()  # cosine similarities lie in [-1, 1]
    if bank.shape[0] == 0:
        assert (loss == 0).all()
    # Where a gradient exists it is finite, zero rows (normalised with an epsilon) included.
    if loss.requires_grad:
        loss.sum().backward()
        assert anchors.grad is not None and torch.isfinite(anchors.grad).all()


def test_semi_hard_triplet_result_is_always_differentiable():
    anchors = torch.tensor([[1.0, 0.0]], requires_grad=True)
    bank = torch.tensor([[1.0, 0.0]])
    loss = semi_hard_triplet(anchors, torch.tensor([0]), bank, torch.tensor([0]), 0.0, (1, 2), (1, 2))
    assert loss.shape == (1,) and loss.item() == 0
    loss.sum().backward()
    assert anchors.grad is not None and torch.equal(anchors.grad, torch.zeros_like(anchors))


# --- the clean / noisy split ----------------------------------------------------------------------

@SETTINGS
@given(st.integers(1, 300), st.floats(0, 0.95, allow_nan=False), st.floats(0, 1, exclude_min=True, allow_nan=False),
       st.integers(0, 2**31 - 1), st.booleans())
def test_split_by_score_partitions_the_batch(n, rate, confident, seed, ties):
    generator = torch.Generator().manual_seed(seed)
    score = (torch.randint(0, 4, (n,), generator=generator).float() if ties
             else torch.rand(n, generator=generator))
    clean, high, noisy = split_by_score(score, rate, confident)
    c, h, d = set(clean.tolist()), set(high.tolist()), set(noisy.tolist())
    assert len(c) == clean.numel() and len(h) == high.numel() and len(d) == noisy.numel()  # no repeats
    assert len(c) + len(d) == n and c | d == set(range(n)) and not c & d
    assert h <= c
    assert len(c) == num_kept(n, rate) == max(1, math.floor(n * (1 - rate) + 1e-9))
    assert 1 <= len(h) <= len(c)
    if d:
        assert score[clean].max() <= score[noisy].min()  # the clean set has the lowest scores
    assert score[high].max() <= score[clean].sort().values[len(h) - 1]  # and H the lowest of those


# --- memory bank ------------------------------------------------------------------------------------

@SETTINGS
@given(st.integers(1, 20), st.integers(1, 4), st.lists(st.integers(0, 30), max_size=8), st.integers(0, 2**31 - 1))
def test_memory_bank_keeps_the_newest_rows_only(size, dim, pushes, seed):
    generator = torch.Generator().manual_seed(seed)
    bank = MemoryBank(size, dim)
    rows = {}  # label (a running id) → the feature pushed with it
    pushed = []
    for n in pushes:
        labels = torch.arange(len(pushed), len(pushed) + n)
        feats = torch.randn(n, dim, generator=generator) + 0.1  # never an all-zero row
        rows.update({int(l): f for l, f in zip(labels, feats)})
        pushed += labels.tolist()
        bank.push(feats, labels)
        count = min(len(pushed), size)
        assert bank.count == count <= size
        assert bank.feats.shape == (count, dim) and bank.labels.shape == (count,)
        assert sorted(bank.labels.tolist()) == pushed[len(pushed) - count:]  # the newest `count` rows
        for label, feat in zip(bank.labels.tolist(), bank.feats):
            torch.testing.assert_close(feat, torch.nn.functional.normalize(rows[label], dim=0))
