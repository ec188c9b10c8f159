"""Memory bank, clean/noisy split and the learning-rate schedule."""
import math

import pytest
import torch

from comining.config import Config
from comining.engine import schedule
from comining.methods import num_kept
from comining.methods.comining import split_by_score
from comining.mining import MemoryBank


def _rows(labels):
    # Feature row of a label: the un-normalised vector [l+1, 1] (so normalising visibly changes it).
    return torch.tensor([[l + 1.0, 1.0] for l in labels])


def _unit(labels):
    return torch.nn.functional.normalize(_rows(labels), dim=1)


# --- MemoryBank ------------------------------------------------------------------------------

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


# --- split_by_score --------------------------------------------------------------------------

# Scores of samples 0..9; ascending order of the indices: 5 1 7 3 9 2 8 6 4 0.
SCORES = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.8, 0.0, 0.7, 0.2, 0.6, 0.4])


def test_split_sizes_and_contents():
    # N 10, r 0.4, e 0.5: C = ⌊10·0.6⌋ = 6 lowest {5,1,7,3,9,2}; H = ⌊6·0.5⌋ = 3 lowest {5,1,7};
    # D = the other 4 {8,6,4,0}.
    clean, confident, noisy = split_by_score(SCORES, 0.4, 0.5)
    assert clean.tolist() == [5, 1, 7, 3, 9, 2]
    assert confident.tolist() == [5, 1, 7]
    assert sorted(noisy.tolist()) == [0, 4, 6, 8]
    assert sorted(clean.tolist() + noisy.tolist()) == list(range(10))  # a partition


def test_noisy_set_is_the_complement_not_the_authors_slice():
    # The authors' D = sorted[int(N·r):] = sorted[4:] has 6 samples and shares {9, 2} with C;
    # the complement has 4 and shares none. At r 0.5 the two coincide.
    _, _, noisy = split_by_score(SCORES, 0.4, 0.5)
    authors = SCORES.argsort()[int(10 * 0.4):]
    assert len(authors) == 6 and len(noisy) == 4
    assert set(noisy.tolist()) < set(authors.tolist())
    clean, _, noisy = split_by_score(SCORES, 0.5, 0.5)
    assert noisy.tolist() == SCORES.argsort()[5:].tolist() and len(clean) == 5


def test_split_without_forgetting():
    # r 0: C is everything, H the 5 lowest, D empty.
    clean, confident, noisy = split_by_score(SCORES, 0.0, 0.5)
    assert sorted(clean.tolist()) == list(range(10))
    assert confident.tolist() == [5, 1, 7, 3, 9]
    assert noisy.numel() == 0


# --- num_kept and forget-rate schedules -------------------------------------------------------

def test_num_kept_floors():
    assert num_kept(10, 0.4) == 6
    assert num_kept(128, 0.2) == 102  # ⌊102.4⌋
    assert num_kept(128, 0.36) == 81  # ⌊81.92⌋
    assert num_kept(7, 0.5) == 3  # ⌊3.5⌋
    # In floats 100·(1-0.9) = 9.999999999999998; the exact floor is 10.
    assert num_kept(100, 0.9) == 10
    assert num_kept(10, 0.0) == 10
    assert num_kept(3, 0.99) == 1  # ⌊0.03⌋ = 0, but a non-empty batch keeps one sample
    assert num_kept(0, 0.5) == 0


# --- learning-rate schedule -------------------------------------------------------------------

def test_linear_schedule():
    # Paper: 200 epochs, decay from 80: lr·(200-e)/120 and β1 0.1 from epoch 80 on.
    cfg = Config(lr=1e-3, epochs=200, epoch_decay_start=80, schedule="linear")
    assert schedule(cfg, 0) == (1e-3, 0.9)
    assert schedule(cfg, 79) == (1e-3, 0.9)
    for epoch, lr in [(80, 1e-3), (140, 5e-4), (170, 2.5e-4), (199, 1e-3 / 120)]:
        got_lr, beta1 = schedule(cfg, epoch)
        assert got_lr == pytest.approx(lr) and beta1 == 0.1


def test_cosine_schedule():
    # Web: 60 epochs, warm-up 10 at constant lr, then ½·lr·(1 + cos(π·(e-10)/50)).
    cfg = Config(lr=0.01, epochs=60, warmup_epochs=10, schedule="cosine")
    assert schedule(cfg, 0)[0] == schedule(cfg, 9)[0] == 0.01
    assert schedule(cfg, 10)[0] == pytest.approx(0.01)
    assert schedule(cfg, 35)[0] == pytest.approx(0.005)  # half-way: cos(π/2) = 0
    assert schedule(cfg, 20)[0] == pytest.approx(0.005 * (1 + math.cos(math.pi * 0.2)))
    assert schedule(cfg, 59)[0] == pytest.approx(0.005 * (1 + math.cos(math.pi * 49 / 50)))
