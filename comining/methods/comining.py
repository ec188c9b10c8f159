"""Co-mining (docs/METHOD.md, "one training step"): one network, two views, loss-based selection, feature-space mining.

Per batch: a clean set C (lowest scores) trains with label-smoothed cross-entropy and prediction
consistency; its most confident part H also pulls features towards same-label bank entries
(semi-hard triplet) and feeds the memory banks; the rest D is relabelled from k-reciprocal bank
neighbours when both views agree, and otherwise discarded for this step.

Its options are ``CoMiningOptions``; the recipes (``--recipe``) are named instances of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from comining import distributed
from comining.errors import UserError, need
from comining.losses import co_guess, smooth_labels, soft_cross_entropy, symmetric_kl
from comining.methods import AFTER_WARMUP, AT_ONCE, Method, masked_mean, num_kept, register
from comining.selection import CLEAN, DISCARDED, RELABELLED
from comining.mining import MemoryBank, neighbour_votes, reciprocal_relabel, semi_hard_triplet
from comining.setting import setting


@dataclass(frozen=True)
class CoMiningOptions:
    """Co-mining's own settings. Those marked ``recipe`` are what a recipe sets; the rest (σ and the
    margin differ between CIFAR-style and web data) keep the data set's preset."""

    epsilon: float | None = setting(None, "label-smoothing mass ε (default: the paper's 0.5; 0.2 with two classes)")
    confident_fraction: float = setting(0.5, "share e of the clean set used as high-confidence anchors",
                                        metavar="E")
    w_pc: float = setting(0.0, "weight of the prediction-consistency loss (the paper's 1)", recipe=True, metavar="W")
    w_tri: float = setting(0.0, "weight of the semi-hard triplet loss (the paper's 3)", recipe=True, metavar="W")
    w_re: float = setting(0.01, "weight of the relabelling loss", recipe=True, metavar="W")
    w_un: float = setting(0.0, "weight of a consistency loss that trains the discarded samples as unlabelled data "
                          "towards both views' sharpened mean prediction, as DivideMix's λ_u (0: not trained on)",
                          metavar="W")
    margin: float = setting(0.0, "triplet margin m (web data 0.4)", flags=("--m",), metavar="M")
    plk: int = setting(0, "lowest positive rank", metavar="K")
    puk: int = setting(5, "positive ranks end (exclusive)", metavar="K")
    nlk: int = setting(0, "lowest negative rank", metavar="K")
    nuk: int = setting(5, "negative ranks end (exclusive)", metavar="K")
    re_k: int = setting(15, "k of the k-reciprocal neighbours", flags=("--re_k1", "--re-k1"), metavar="K")
    re_sigma: float = setting(0.15, "in-distribution threshold σ on the soft label (web data 0.5)", metavar="σ")
    bank: int = setting(4096, "memory bank size per view", metavar="N")
    aug: str = setting("ws", "the two views: ws (weak+strong), ww, ss, ts (un-augmented+strong: the default "
                       "with --backbone frozen)",
                       choices=("ws", "ww", "ss", "ts"), recipe=True)
    select_per_class: bool = setting(True, "split clean / noisy within each given label instead of across the "
                                     "batch", recipe=True)
    forget_ramp: bool = setting(True, "ramp the forget rate in over --num-gradual epochs after warm-up "
                                "(--no-forget-ramp jumps to it, as the paper)", recipe=True)

    @classmethod
    def validate(cls, cfg) -> None:
        """UserError naming the first of these options of ``cfg`` that is out of range."""
        need(cfg.epsilon is None or 0 <= cfg.epsilon < 1, f"--epsilon {cfg.epsilon} is outside [0, 1): the "
             "label-smoothing mass, e.g. 0.5")
        need(0 < cfg.confident_fraction <= 1, f"--confident-fraction {cfg.confident_fraction} is outside (0, 1]")
        for name in ("w_pc", "w_tri", "w_re", "w_un", "margin"):
            need(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} {getattr(cfg, name)} must not be negative")
        need(0 <= cfg.plk < cfg.puk, f"--plk {cfg.plk} --puk {cfg.puk}: need 0 <= plk < puk (a rank range)")
        need(0 <= cfg.nlk < cfg.nuk, f"--nlk {cfg.nlk} --nuk {cfg.nuk}: need 0 <= nlk < nuk (a rank range)")
        need(cfg.re_k >= 1, f"--re-k {cfg.re_k} must be at least 1")
        need(0 <= cfg.re_sigma <= 1, f"--re-sigma {cfg.re_sigma} is outside [0, 1]")
        need(cfg.bank >= 1, f"--bank {cfg.bank} must be at least 1")


RECIPES = {
    # The study's choice (docs/RESULTS.md): no triplet term, selection within each given label, no
    # prediction-consistency term (on clean labels it alone cost 2.9 points), and the forget rate
    # ramped in after warm-up (at symmetric 80 % a jump to it loses classes in the first epoch).
    "default": CoMiningOptions(),
    "paper": CoMiningOptions(w_pc=1.0, w_tri=3.0, select_per_class=False, forget_ramp=False),  # the method as the paper writes it
    "authors": CoMiningOptions(w_pc=1.0, w_tri=0.0, select_per_class=False, forget_ramp=False),  # its triplet term is 0
}


def default_epsilon(num_classes: int) -> float:
    """The label-smoothing mass where --epsilon is not given: the paper's 0.5, or 0.2 with two classes,
    where 0.5 would give both classes the same target (0.2 keeps the label four times as likely)."""
    return 0.5 if num_classes > 2 else 0.2


UNLABELLED_TEMPERATURE = 0.5  # DivideMix's T for its guessed targets

VIEWS = {"ws": ("weak", "strong"), "ww": ("weak", "weak"), "ss": ("strong", "strong"), "ts": ("test", "strong")}


def split_by_score(score: torch.Tensor, rate: float, confident_fraction: float, labels=None, num_classes=0):
    """Indices of C (the ⌊N(1-r)⌋ lowest scores), H (the ⌊N(1-r)e⌋ lowest) and D (everything not in C).
    The authors' code takes D as ``sorted[int(N*r):]``, which is the complement of C only at r = 0.5;
    here D is always the complement, so no sample is both trained as clean and relabelled.
    With ``labels``, samples are ordered by their score's rank within their given label instead
    (``within_class_order``), so each label gives up about the same share of its samples."""
    n = score.shape[0]
    n_clean = num_kept(n, rate)
    n_confident = min(n_clean, max(1, math.floor(n * (1 - rate) * confident_fraction + 1e-9)))
    order = score.argsort() if labels is None else within_class_order(score, labels, num_classes)
    return order[:n_clean], order[:n_confident], order[n_clean:]


def within_class_order(score: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Samples ordered by the quantile of their score among the batch's samples of the same label.
    Under pair-flip noise the small-loss split across a batch takes whole easy classes and leaves hard
    ones out; ordering by within-label quantile keeps the split's size fixed (no host synchronisation)
    while taking about the same share of every label. Ties go to the lower score."""
    grouped = lexsort_pair(labels, score)  # by label, then by score
    # scatter_add, not bincount: bincount reads the labels' maximum back to the host on a GPU
    counts = torch.zeros(num_classes, dtype=torch.long, device=labels.device)
    counts.scatter_add_(0, labels, torch.ones_like(labels))
    starts = torch.cumsum(counts, 0) - counts
    position = torch.empty_like(grouped)
    position[grouped] = torch.arange(score.shape[0], device=score.device)
    within = position - starts[labels]  # rank of the score among the samples of the same label
    quantile = (within.float() + 0.5) / counts[labels].float()
    return lexsort_pair(quantile, score)


def lexsort_pair(primary: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    """Indices sorting by ``primary``, ties broken by ``secondary`` (both ascending)."""
    by_secondary = secondary.argsort()
    return by_secondary[primary[by_secondary].argsort(stable=True)]


def unlabelled_consistency(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """[B] squared distance of each view's prediction from the two views' mean prediction sharpened,
    which is held fixed: DivideMix's unlabelled loss, with one network's two views guessing the target
    where DivideMix has two networks'. Squared rather than cross-entropy, so that a wrong guess costs
    at most a bounded amount. DivideMix averages it over the classes, with weights set for ten; here the
    class mean is scaled by C/10, so a weight means the same at any number of classes (the plain mean
    would weigh it 5× more at two classes, where --w-un 5 made training collapse)."""
    p_a, p_b = logits_a.float().softmax(1), logits_b.float().softmax(1)
    guessed = co_guess((p_a, p_b), UNLABELLED_TEMPERATURE).detach()
    per_ten_classes = p_a.shape[1] / 10
    return 0.5 * (((p_a - guessed) ** 2).mean(1) + ((p_b - guessed) ** 2).mean(1)) * per_ten_classes


@register("comining")
class CoMining(Method):
    title, paper_column = "Co-mining", 6
    Options = CoMiningOptions
    uses_baseline_aug = False
    uses_recipe = True
    counts_without_split = True

    def __init__(self, cfg, num_classes, make_model, selections):
        # Label smoothing gives 1-ε to the label and ε/(C-1) to each other class; at ε ≥ (C-1)/C the
        # label no longer stands out, and the loss (hence the selection) would ignore it.
        limit = (num_classes - 1) / num_classes
        self.epsilon = default_epsilon(num_classes) if cfg.epsilon is None else cfg.epsilon
        if self.epsilon >= limit:
            raise UserError(f"--epsilon {cfg.epsilon} leaves no trace of the label with {num_classes} classes "
                            f"(label smoothing needs ε below {limit:.2f}): pass e.g. --epsilon {limit * 0.4:.1f}, "
                            "or leave it out for the default")
        super().__init__(cfg, num_classes, make_model, selections)
        dim = self.nets[0].feature_dim
        device = next(self.nets[0].parameters()).device
        self.banks = [MemoryBank(cfg.bank, dim, device) for _ in range(2)]  # one per view

    @property
    def view_kinds(self):
        return VIEWS[self.cfg.aug]

    @property
    def ramp(self) -> str:
        return AFTER_WARMUP if self.cfg.forget_ramp else AT_ONCE

    @property
    def first_estimate_after(self) -> int:
        return max(self.cfg.warmup_epochs, 1)

    @property
    def second_estimate_after(self) -> int:
        """As many epochs of selection after the first estimate as the warm-up had: a network trained on
        its clean sets has not learned pair flips as a second cluster the way the warm-up's has, so its
        losses split clean from wrong where the warm-up's do not (docs/METHOD.md)."""
        return 2 * self.first_estimate_after

    def view_outputs(self, views, target):
        """Per-sample terms on both views (one forward, one DDP forward per backward)."""
        logits, feats = self.nets[0](torch.cat(views))
        z1, z2 = logits.float().chunk(2)
        h1, h2 = F.normalize(feats.float(), dim=1).chunk(2)
        l_ce = 0.5 * (soft_cross_entropy(z1, target) + soft_cross_entropy(z2, target))
        l_pc = symmetric_kl(z1, z2, base=2)
        score = (l_ce + self.cfg.w_pc * l_pc).detach()  # the selection score, lower = more trusted
        return {"z": (z1, z2), "h": (h1, h2), "ce": l_ce, "pc": l_pc, "score": score}

    def loss(self, views, labels, index, epoch, rate):
        cfg = self.cfg
        target = smooth_labels(labels, self.num_classes, self.epsilon)
        out = self.view_outputs(views, target)
        if epoch < cfg.warmup_epochs:
            self.push(labels, *out["h"])
            self.selections.record(index, CLEAN, out["score"])
            loss = out["ce"].mean()
            return loss, {"ce": loss}
        clean, confident, noisy = split_by_score(out["score"], rate, cfg.confident_fraction,
                                                 labels if cfg.select_per_class else None, self.num_classes)
        loss, terms, agree, pseudo = self.split_loss(out, labels, clean, confident, noisy)
        self.push(labels[confident], *(h[confident] for h in out["h"]))
        self.selections.record(index, CLEAN, out["score"])
        self.selections.record(index[noisy], torch.where(agree, RELABELLED, DISCARDED), out["score"][noisy],
                           torch.where(agree, pseudo, -1))
        return loss, terms

    def split_loss(self, out, labels, clean, confident, noisy):
        """The loss on a split: C trains on its labels, H mines the banks, D is relabelled where both
        views' reciprocal neighbours agree. Returns (loss, terms, agree [|D|], pseudo-labels [|D|])."""
        cfg = self.cfg
        (z1, z2), (h1, h2) = out["z"], out["h"]
        l_tri = torch.cat([
            semi_hard_triplet(h[confident], labels[confident], bank.feats, bank.labels, cfg.margin,
                              (cfg.plk, cfg.puk), (cfg.nlk, cfg.nuk))
            for h, bank in zip((h1, h2), self.banks)]).mean()

        (soft1, id1, pseudo1), (soft2, id2, pseudo2) = (
            reciprocal_relabel(h[noisy].detach(), bank.feats, bank.labels, cfg.re_k, cfg.re_sigma, self.num_classes)
            for h, bank in zip((h1, h2), self.banks))
        agree = id1 & id2 & (pseudo1 == pseudo2)
        relabel_target = 0.5 * (soft1 + soft2)
        l_re = 0.5 * (soft_cross_entropy(z1[noisy], relabel_target) + soft_cross_entropy(z2[noisy], relabel_target))
        l_re = (l_re * agree).sum() / agree.sum().clamp(min=1)

        ce, pc = out["ce"][clean].mean(), out["pc"][clean].mean()
        loss = ce + cfg.w_pc * pc + cfg.w_tri * l_tri + cfg.w_re * l_re
        terms = {"ce": ce, "pc": pc, "tri": l_tri, "re": l_re}
        if cfg.w_un > 0:
            terms["un"] = l_un = masked_mean(unlabelled_consistency(z1[noisy], z2[noisy]), ~agree)
            loss = loss + cfg.w_un * l_un
        return loss, terms, agree, pseudo1

    def push(self, labels, h1, h2):
        """Into each view's bank; under DDP the features of every rank, so all banks stay identical."""
        labels = distributed.gather_rows(labels)
        for bank, h in zip(self.banks, (h1, h2)):
            bank.push(distributed.gather_rows(h.detach()), labels)

    def neighbour_votes(self, features):
        """The k-reciprocal neighbours' soft labels in both views' banks, as relabelling reads them."""
        banks = [bank for bank in self.banks if bank.count > 0]
        if not banks:
            return None
        return neighbour_votes(features, banks, self.cfg.re_k, self.cfg.re_sigma, self.num_classes)

    def get_extra_state(self):
        return {"banks": [bank.state_dict() for bank in self.banks]}

    def set_extra_state(self, state):
        if isinstance(state, list):  # checkpoints whose extra state was the list of banks alone
            state = {"banks": state}
        for bank, bank_state in zip(self.banks, state["banks"]):
            bank.load_state_dict(bank_state)
