"""Each method's decision rule on a hand-built batch: which samples train which network, and what the
ledger records.

The networks are stubs whose logits (and features) are parameters we set, one row per sample, so
after ``loss.backward()`` a row's gradient is non-zero exactly when that sample entered the loss.
Labels are class 0 and a row's logits [m, 0] have cross-entropy log(1 + e^-m): a larger margin m
is a smaller loss, and m > 0 predicts class 0.

Then the pieces the methods select with: split_by_score (also within each class) and num_kept.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from comining.config import Config
from comining.errors import UserError
from comining.forget_rate import ForgetRate
from comining.methods import METHODS, num_kept
from comining.methods import comining as comining_module
from comining.methods.comining import split_by_score, unlabelled_consistency, within_class_order
from comining.methods.jocor import default_lambda
from comining.selection import CLEAN, DISCARDED, RELABELLED, SelectionLog


class FixedNet(nn.Module):
    """Returns the logits and features it was given, whatever the images; both are leaves with gradients."""

    def __init__(self, logits, feats=None):
        super().__init__()
        self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float32))
        feats = torch.eye(len(self.logits)) if feats is None else torch.as_tensor(feats, dtype=torch.float32)
        self.feats = nn.Parameter(feats)
        self.feature_dim = self.feats.shape[1]

    def forward(self, x):
        return self.logits, self.feats


def margins(*ms):
    """Two-class logits [m, 0] per sample: the margin of class 0."""
    return [[float(m), 0.0] for m in ms]


def build(name, nets, **cfg):
    """The method ``name`` over the given stub networks, forget rate fixed (no ramp), and its ledger."""
    n = len(nets[0].logits) // (2 if name == "comining" else 1)
    ledger = SelectionLog(n, "cpu")
    settings = dict(method=name, forget_rate=0.5, num_gradual=0)
    settings.update(cfg)
    make = iter(nets).__next__
    num_classes = nets[0].logits.shape[1]
    return METHODS[name](Config(**settings), num_classes, make, ledger), ledger


def step(method, n, labels=None, epoch=5):
    """One loss + backward on a batch of n samples (the stubs ignore the images)."""
    labels = torch.zeros(n, dtype=torch.long) if labels is None else torch.as_tensor(labels)
    views = [torch.zeros(n, 1)] * len(method.view_kinds)
    loss, terms = method.loss(views, labels, torch.arange(n), epoch, ForgetRate(method.cfg, method).at(epoch))
    loss.backward()
    return loss, terms


def trained(net):
    """Indices of the rows whose logits received a gradient."""
    return set(torch.nonzero(net.logits.grad.abs().sum(1) > 0).flatten().tolist())


def ce(net, rows, label=0):
    logits = net.logits.detach()[rows]
    return F.cross_entropy(logits, torch.full((len(rows),), label), reduction="none")


def statuses(ledger):
    return ledger.status.tolist()


# --- the baselines ----------------------------------------------------------------------------

def test_standard_trains_on_every_sample_and_trusts_all():
    net = FixedNet(margins(3, -1, 0.5, -4))
    method, ledger = build("standard", [net])
    loss, _ = step(method, 4)
    assert trained(net) == {0, 1, 2, 3}
    torch.testing.assert_close(loss, ce(net, [0, 1, 2, 3]).mean())
    assert statuses(ledger) == [CLEAN] * 4
    torch.testing.assert_close(ledger.score, ce(net, [0, 1, 2, 3]))


def test_coteaching_trains_each_network_on_the_others_small_loss_picks():
    # Rate 0.5 of 6: each network picks its 3 largest margins. Network 1 picks {0,1,2},
    # network 2 picks {1,2,3}; network 1 trains on {1,2,3}, network 2 on {0,1,2}.
    net1 = FixedNet(margins(5, 4, 3, -1, -2, -3))
    net2 = FixedNet(margins(-1, 4, 3, 5, -2, -3))
    method, ledger = build("coteaching", [net1, net2])
    loss, terms = step(method, 6)
    assert trained(net1) == {1, 2, 3}
    assert trained(net2) == {0, 1, 2}
    torch.testing.assert_close(terms["ce1"], ce(net1, [1, 2, 3]).mean())
    torch.testing.assert_close(terms["ce2"], ce(net2, [0, 1, 2]).mean())
    torch.testing.assert_close(loss, terms["ce1"] + terms["ce2"])
    # Clean where at least one network picked the sample; the score is network 1's loss.
    assert statuses(ledger) == [CLEAN] * 4 + [DISCARDED] * 2
    torch.testing.assert_close(ledger.score, ce(net1, range(6)))


# Shared by Co-teaching+, Decoupling and Peer-learning: predictions (margin > 0 is class 0)
#   network 1: 0 0 0 0 0 1 1 1      network 2: 0 0 1 1 0 0 1 0
# so the networks disagree on {2, 3, 5, 7} and agree on {0, 1, 4, 6}.
MARGINS1 = (5, 4, 3, 2, 1, -1, -2, -3)
MARGINS2 = (6, 5, -1, -2, 7, 2, -4, 1)
DISAGREE, AGREE = {2, 3, 5, 7}, {0, 1, 4, 6}


def test_coteachingplus_exchanges_picks_within_the_disagreements():
    # Among the disagreements, rate 0.5 keeps 2: network 1's largest margins there are {2,3}
    # (3, 2), network 2's are {5,7} (2, 1). Network 1 trains on {5,7}, network 2 on {2,3}.
    net1, net2 = FixedNet(margins(*MARGINS1)), FixedNet(margins(*MARGINS2))
    method, ledger = build("coteachingplus", [net1, net2])
    loss, terms = step(method, 8)
    assert trained(net1) == {5, 7} and trained(net2) == {2, 3}
    torch.testing.assert_close(loss, ce(net1, [5, 7]).mean() + ce(net2, [2, 3]).mean())
    assert terms["fallback"] == 0
    assert [i for i, s in enumerate(statuses(ledger)) if s == CLEAN] == [2, 3, 5, 7]


def test_coteachingplus_falls_back_to_the_whole_batch_without_enough_disagreements():
    # One disagreement (sample 1) at rate 0.5 keeps ⌊0.5⌋ = 0 samples: both train on everything.
    net1, net2 = FixedNet(margins(2, 1, -1, 3)), FixedNet(margins(1, -1, -2, 4))
    method, ledger = build("coteachingplus", [net1, net2])
    loss, terms = step(method, 4)
    assert terms["fallback"] == 1
    assert trained(net1) == trained(net2) == {0, 1, 2, 3}
    torch.testing.assert_close(loss, ce(net1, range(4)).mean() + ce(net2, range(4)).mean())
    assert statuses(ledger) == [CLEAN] * 4
    # Two disagreements at rate 0.5 keep one: no fallback, each network trains on one sample.
    net1, net2 = FixedNet(margins(2, 1, -1, 3)), FixedNet(margins(1, -1, 2, 4))
    method, _ = build("coteachingplus", [net1, net2])
    _, terms = step(method, 4)
    assert terms["fallback"] == 0
    assert len(trained(net1)) == len(trained(net2)) == 1


def test_decoupling_trains_only_where_the_networks_disagree():
    net1, net2 = FixedNet(margins(*MARGINS1)), FixedNet(margins(*MARGINS2))
    method, ledger = build("decoupling", [net1, net2], forget_rate=0.9)  # Decoupling ignores it
    loss, terms = step(method, 8)
    assert trained(net1) == trained(net2) == DISAGREE
    torch.testing.assert_close(loss, ce(net1, sorted(DISAGREE)).mean() + ce(net2, sorted(DISAGREE)).mean())
    assert terms["disagree"] == pytest.approx(0.5)
    assert {i for i, s in enumerate(statuses(ledger)) if s == CLEAN} == DISAGREE


def test_peerlearning_exchanges_picks_where_the_networks_agree_and_trains_on_all_disagreements():
    # Among the agreements {0,1,4,6}, rate 0.5 keeps 2: network 1 picks {0,1} (margins 5, 4),
    # network 2 picks {4,0} (7, 6). Network 1 trains on {0,4} ∪ disagreements, network 2 on {0,1} ∪ them.
    net1, net2 = FixedNet(margins(*MARGINS1)), FixedNet(margins(*MARGINS2))
    method, ledger = build("peerlearning", [net1, net2])
    loss, terms = step(method, 8)
    assert trained(net1) == {0, 4} | DISAGREE
    assert trained(net2) == {0, 1} | DISAGREE
    torch.testing.assert_close(loss, ce(net1, [0, 2, 3, 4, 5, 7]).mean() + ce(net2, [0, 1, 2, 3, 5, 7]).mean())
    assert terms["agree"] == pytest.approx(0.5)
    assert [i for i, s in enumerate(statuses(ledger)) if s == DISCARDED] == [6]


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def test_jocor_joint_loss_is_its_formula_and_keeps_the_small_joint_losses():
    logits1 = [[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.5, 2.0], [1.0, 1.0, 1.0]]
    logits2 = [[1.5, 0.5, -1.0], [0.0, -1.0, 2.0], [2.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    labels = [0, 1, 2, 0]
    lam = 0.3
    expected = []
    for z1, z2, y in zip(logits1, logits2, labels):
        p1 = [math.exp(v) / sum(math.exp(u) for u in z1) for v in z1]
        p2 = [math.exp(v) / sum(math.exp(u) for u in z2) for v in z2]
        expected.append((1 - lam) * (-math.log(p1[y]) - math.log(p2[y])) + lam * (_kl(p1, p2) + _kl(p2, p1)))
    # By hand: joint ≈ [0.423, 3.304, 2.827, 1.538]; rate 0.5 keeps the two smallest, samples 0 and 3.
    net1, net2 = FixedNet(logits1), FixedNet(logits2)
    method, ledger = build("jocor", [net1, net2], jocor_lambda=lam)
    loss, _ = step(method, 4, labels=labels)
    torch.testing.assert_close(ledger.score, torch.tensor(expected))
    torch.testing.assert_close(loss, torch.tensor((expected[0] + expected[3]) / 2))
    assert trained(net1) == trained(net2) == {0, 3}
    assert statuses(ledger) == [CLEAN, DISCARDED, DISCARDED, CLEAN]


def test_jocor_lambda_rule():
    # The paper: 0.9 on 10 classes, 0.65 at 80 % noise, 0.85 on 100 classes; --jocor-lambda overrides.
    assert default_lambda(10, 0.2) == default_lambda(10, 0.5) == default_lambda(10, 0.4) == 0.9
    assert default_lambda(10, 0.8) == 0.65
    assert default_lambda(100, 0.2) == default_lambda(100, 0.8) == 0.85
    nets = [FixedNet(margins(1)), FixedNet(margins(1))]
    assert build("jocor", nets, closed_rate=0.8)[0].lam == 0.65
    nets = [FixedNet(margins(1)), FixedNet(margins(1))]
    assert build("jocor", nets, closed_rate=0.8, jocor_lambda=0.2)[0].lam == 0.2


# --- Co-mining's step -------------------------------------------------------------------------

def test_the_default_smoothing_keeps_the_label_with_two_classes():
    # Two classes: the paper's ε 0.5 would make the target (0.5, 0.5). The default is 0.2, target
    # (0.8, 0.2); at logits [log 4, 0] the prediction is the target, so the warm-up loss is the
    # target's entropy, -0.8 log 0.8 - 0.2 log 0.2 = 0.5004 (0.9163 against ε 0.5's target).
    two = [[math.log(4), 0.0]] * 4  # both views of two samples
    method, _ = build("comining", [FixedNet(two)], warmup_epochs=1, bank=8)
    assert method.epsilon == 0.2
    loss, _ = step(method, 2, epoch=0)
    assert loss.item() == pytest.approx(-0.8 * math.log(0.8) - 0.2 * math.log(0.2), abs=1e-4)
    three = [[0.0, 0.0, 0.0]] * 4
    assert build("comining", [FixedNet(three)], bank=8)[0].epsilon == 0.5  # three classes: the paper's
    with pytest.raises(UserError, match="epsilon 0.5 leaves no trace"):  # asked for, it is refused
        build("comining", [FixedNet(two)], bank=8, epsilon=0.5)


# Eight samples of three classes; both views give row i the logits m_i on its label, 0 elsewhere.
# With ε 0.5 the smoothed target is (0.5, 0.25, 0.25) and the loss falls as m rises towards log 2,
# so the scores rise with i: C = {0,1,2,3}, H = {0,1} (e 0.5), D = {4,5,6,7}. Features: row i is e_i.
CM_LABELS = [0, 1, 2, 0, 1, 2, 0, 1]
CM_MARGINS = [0.6, 0.4, 0.2, 0.0, -1.0, -2.0, -3.0, -4.0]
CM_CLEAN, CM_CONFIDENT, CM_NOISY = [0, 1, 2, 3], [0, 1], [4, 5, 6, 7]
N = 8


def comining_net(margins=CM_MARGINS):
    one_view = torch.zeros(N, 3)
    one_view[torch.arange(N), torch.tensor(CM_LABELS)] = torch.tensor(margins)
    feats = torch.eye(N)
    return FixedNet(torch.cat([one_view, one_view]), torch.cat([feats, feats]))


# What each view's k-reciprocal relabelling returns for the samples of D: (soft label, in-distribution).
#   4: both in-distribution, both class 2          → relabelled to 2, target the mean (0, 0.3, 0.7)
#   5: both in-distribution, classes 1 and 2        → discarded (pseudo-labels differ)
#   6: view 2 out of distribution, both class 1     → discarded
#   7: neither in distribution, both class 0        → discarded
RELABEL = {
    4: (([0.0, 0.2, 0.8], True), ([0.0, 0.4, 0.6], True)),
    5: (([0.1, 0.6, 0.3], True), ([0.1, 0.3, 0.6], True)),
    6: (([0.0, 1.0, 0.0], True), ([0.3, 0.4, 0.3], False)),
    7: (([0.4, 0.3, 0.3], False), ([0.4, 0.3, 0.3], False)),
}


@pytest.fixture
def fixed_relabel(monkeypatch):
    """Replace the k-reciprocal relabelling by the table above; a query's sample is its feature's argmax."""
    calls = []

    def relabel(queries, bank_feats, bank_labels, k, sigma, num_classes):
        view = len(calls) % 2
        samples = queries.argmax(1).tolist()
        calls.append(samples)
        soft = torch.tensor([RELABEL[s][view][0] for s in samples])
        in_dist = torch.tensor([RELABEL[s][view][1] for s in samples])
        return soft, in_dist, soft.argmax(1)

    monkeypatch.setattr(comining_module, "reciprocal_relabel", relabel)
    return calls


def comining_step(epoch, **options):
    net = comining_net()
    method, ledger = build("comining", [net], warmup_epochs=1, confident_fraction=0.5, epsilon=0.5, bank=64,
                           **options)
    for bank in method.banks:  # three older entries, so the bank is not empty at the step
        bank.push(-torch.eye(N)[:3], torch.tensor([2, 2, 1]))
    loss, terms = step(method, N, labels=CM_LABELS, epoch=epoch)
    return net, method, ledger, loss, terms


def test_comining_relabels_only_where_both_views_agree(fixed_relabel):
    net, _, ledger, _, _ = comining_step(epoch=1)
    assert sorted(fixed_relabel[0]) == sorted(fixed_relabel[1]) == CM_NOISY  # D is asked, view by view
    assert statuses(ledger) == [CLEAN] * 4 + [RELABELLED, DISCARDED, DISCARDED, DISCARDED]
    assert ledger.pseudo.tolist() == [-1] * 4 + [2, -1, -1, -1]
    # Only the relabelled sample of D trains (through the relabelling loss); discarded ones get no gradient.
    got_grad = {i % N for i in trained(net)}
    assert got_grad == set(CM_CLEAN) | {4}
    assert net.logits.grad[N + 4].abs().sum() > 0  # both views of it


def test_comining_relabel_target_is_the_mean_of_the_two_views(fixed_relabel):
    net, _, _, _, terms = comining_step(epoch=1)
    target = torch.tensor([0.0, 0.3, 0.7])
    logits = net.logits.detach()
    by_hand = 0.5 * sum(-(target * F.log_softmax(logits[row], 0)).sum() for row in (4, N + 4))
    torch.testing.assert_close(terms["re"], by_hand)


def test_unlabelled_consistency_by_hand():
    # Views predicting (0.8, 0.2) and (0.4, 0.6): their mean (0.6, 0.4) sharpened at T 0.5 is (9, 4) / 13.
    a, b = torch.tensor([[0.8, 0.2]]).log(), torch.tensor([[0.4, 0.6]]).log()
    g = torch.tensor([9 / 13, 4 / 13])
    by_hand = 0.5 * (((torch.tensor([0.8, 0.2]) - g) ** 2).mean() + ((torch.tensor([0.4, 0.6]) - g) ** 2).mean())
    torch.testing.assert_close(unlabelled_consistency(a, b), by_hand[None] * 2 / 10)  # two classes of ten
    # The same predictions among ten classes (eight more at probability 0): the same loss, since it is
    # the class sum over ten whatever the number of classes.
    pad = torch.full((1, 8), -1e4)
    tens = unlabelled_consistency(torch.cat([a, pad], 1), torch.cat([b, pad], 1))
    torch.testing.assert_close(tens, by_hand[None] * 2 / 10, atol=1e-6, rtol=1e-4)
    # The sharpened target is held fixed, so both views at (0.6, 0.4) are pulled towards 9/13 on class 0.
    # Were the gradient also to pass through the target, which moves faster than the prediction under
    # sharpening, it would push class 0 down instead.
    same = torch.tensor([[0.6, 0.4]]).log().requires_grad_()
    unlabelled_consistency(same, same).sum().backward()
    assert same.grad[0, 0] < 0 < same.grad[0, 1]


def test_comining_trains_the_discarded_samples_as_unlabelled_data_only_when_asked(fixed_relabel):
    net, _, ledger, loss, terms = comining_step(epoch=1, w_un=25.0)
    assert statuses(ledger) == [CLEAN] * 4 + [RELABELLED, DISCARDED, DISCARDED, DISCARDED]
    # The discarded samples 5-7 now train (both views); the relabelled one keeps its relabelling loss only.
    assert {i % N for i in trained(net)} == set(CM_CLEAN) | {4, 5, 6, 7}
    logits = net.logits.detach()
    discarded = [5, 6, 7]
    by_hand = unlabelled_consistency(logits[discarded], logits[[N + i for i in discarded]]).mean()
    torch.testing.assert_close(terms["un"], by_hand)
    _, _, _, loss_without, terms_without = comining_step(epoch=1)
    assert "un" not in terms_without
    torch.testing.assert_close(loss, loss_without + 25.0 * by_hand)


def test_comining_banks_take_only_the_confident_set_after_warm_up(fixed_relabel):
    _, method, _, _, _ = comining_step(epoch=1)
    for bank in method.banks:
        assert bank.count == 3 + len(CM_CONFIDENT)
        assert bank.labels[3:].tolist() == [CM_LABELS[i] for i in CM_CONFIDENT]
        torch.testing.assert_close(bank.feats[3:], torch.eye(N)[CM_CONFIDENT])


def test_comining_warm_up_trusts_everything_and_fills_the_banks(fixed_relabel):
    net, method, ledger, loss, _ = comining_step(epoch=0)
    assert fixed_relabel == []  # no relabelling during warm-up
    assert statuses(ledger) == [CLEAN] * N
    assert {i % N for i in trained(net)} == set(range(N))
    for bank in method.banks:
        assert bank.count == 3 + N and bank.labels[3:].tolist() == CM_LABELS
    target = torch.full((N, 3), 0.25).scatter_(1, torch.tensor(CM_LABELS)[:, None], 0.5)
    logits = net.logits.detach()
    per_view = [-(target * F.log_softmax(logits[rows], 1)).sum(1) for rows in (slice(0, N), slice(N, None))]
    torch.testing.assert_close(loss, (0.5 * (per_view[0] + per_view[1])).mean())


def test_comining_relabels_from_real_bank_neighbours():
    # The same rule through the real k-reciprocal search (k 3): each bank holds four entries close
    # to each class's axis e_c, and a query on an axis finds three neighbours of that class only.
    #   4: both views on e_2 → relabelled to 2 (its given label is 1)   5: views on e_2 and e_1 → discarded
    #   6: both views on e_0 → relabelled to 0                          7: views on e_1 and e_0 → discarded
    axes = torch.eye(3)
    view1 = torch.stack([axes[CM_LABELS[i]] for i in CM_CLEAN] + [axes[2], axes[2], axes[0], axes[1]])
    view2 = torch.stack([axes[CM_LABELS[i]] for i in CM_CLEAN] + [axes[2], axes[1], axes[0], axes[0]])
    net = comining_net()
    net.feats = nn.Parameter(torch.cat([view1, view2]))
    net.feature_dim = 3
    method, ledger = build("comining", [net], warmup_epochs=1, confident_fraction=0.5, epsilon=0.5, bank=64,
                           re_k=3)
    wobble = torch.tensor([[0.0, 0.05, 0.02], [0.04, 0.0, 0.03], [0.01, 0.03, 0.0], [0.02, 0.01, 0.04]])
    for bank in method.banks:
        for c in range(3):
            bank.push(axes[c] + wobble.roll(c, dims=1), torch.full((4,), c))
    step(method, N, labels=CM_LABELS, epoch=1)
    assert statuses(ledger) == [CLEAN] * 4 + [RELABELLED, DISCARDED, RELABELLED, DISCARDED]
    assert ledger.pseudo.tolist() == [-1] * 4 + [2, -1, 0, -1]


def test_comining_fits_the_labels_on_both_views_alike():
    # Warm-up, so the loss is the cross-entropy alone. Its gradient on a row's logits is (p - target) times the
    # view's weight over N: 1/2 for each view.
    net = comining_net()
    method, _ = build("comining", [net], warmup_epochs=1, epsilon=0.5, bank=64)
    step(method, N, labels=CM_LABELS, epoch=0)
    target = torch.full((N, 3), 0.25).scatter_(1, torch.tensor(CM_LABELS)[:, None], 0.5)
    residual = (F.softmax(net.logits.detach()[:N], 1) - target) / N
    torch.testing.assert_close(net.logits.grad[:N], 0.5 * residual)
    torch.testing.assert_close(net.logits.grad[N:], 0.5 * residual)


def test_comining_scores_against_the_smoothed_target_so_a_flat_prediction_looks_clean():
    # Even rows: margin 2 on the label, so p = (0.787, 0.107, 0.107). Odd rows: flat logits, p = 1/3 each.
    # Against the smoothed target (0.5, 0.25, 0.25): confident 0.5·0.240 + 0.5·2.240 = 1.240 > flat log 3 =
    # 1.099, so the flat rows look cleaner (against the given label alone it would be the other way round).
    net = comining_net([2.0, 0.0] * 4)
    method, ledger = build("comining", [net], warmup_epochs=1, confident_fraction=0.5, epsilon=0.5, bank=64,
                           select_per_class=False)
    step(method, N, labels=CM_LABELS, epoch=1)
    assert [i for i, s in enumerate(statuses(ledger)) if s == CLEAN] == [1, 3, 5, 7]
    torch.testing.assert_close(ledger.score, torch.tensor([1.2395, 1.0986] * 4), atol=1e-4, rtol=0)


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


# --- split_by_score within each class (the study's select_per_class) ----------------------------

def test_within_class_order_takes_the_same_share_of_each_label():
    # Label 0 has four easy samples, label 1 four hard ones: across the batch the four lowest scores
    # are all of label 0; within labels, the two lowest of each label come first.
    score = torch.tensor([0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert score.argsort()[:4].tolist() == [0, 1, 2, 3]
    order = within_class_order(score, labels, num_classes=3)
    assert order.tolist() == [0, 4, 1, 5, 2, 6, 3, 7]  # quantiles 1/8, 3/8, ...; ties by score
    clean, confident, noisy = split_by_score(score, 0.5, 0.5, labels, 3)
    assert sorted(clean.tolist()) == [0, 1, 4, 5] and sorted(noisy.tolist()) == [2, 3, 6, 7]
    assert sorted(confident.tolist()) == [0, 4]


# --- num_kept --------------------------------------------------------------------------------

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
