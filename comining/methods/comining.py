"""Co-mining (DESIGN.md §2): one network, two views, loss-based selection, feature-space mining.

Per batch: a clean set C (lowest scores) trains with label-smoothed cross-entropy and prediction
consistency; its most confident part H also pulls features towards same-label bank entries
(semi-hard triplet) and feeds the memory banks; the rest D is relabelled from k-reciprocal bank
neighbours when both views agree, and otherwise discarded for this step.
"""

from __future__ import annotations

import math

import torch

from comining import distributed
from comining.errors import UserError
from comining.losses import smooth_labels, soft_cross_entropy, symmetric_kl
from comining.methods import Method, num_kept, register
from comining.metrics import CLEAN, DISCARDED, RELABELLED
from comining.mining import MemoryBank, reciprocal_relabel, semi_hard_triplet

VIEWS = {"ws": ("weak", "strong"), "ww": ("weak", "weak"), "ss": ("strong", "strong")}


def split_by_score(score: torch.Tensor, rate: float, confident_fraction: float, labels=None, num_classes=0):
    """Indices of C (the ⌊N(1-r)⌋ lowest scores), H (the ⌊N(1-r)e⌋ lowest) and D (everything not in C).

    The authors' code takes D as ``sorted[int(N*r):]``, which is the complement of C only at r = 0.5;
    here D is always the complement, so no sample is both trained as clean and relabelled.
    With ``labels``, samples are ordered by their score's rank within their given label instead
    (``within_class_order``), so each label gives up about the same share of its samples.
    """
    n = score.shape[0]
    n_clean = num_kept(n, rate)
    n_confident = min(n_clean, max(1, math.floor(n * (1 - rate) * confident_fraction + 1e-9)))
    order = score.argsort() if labels is None else within_class_order(score, labels, num_classes)
    return order[:n_clean], order[:n_confident], order[n_clean:]


def within_class_order(score: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Samples ordered by the quantile of their score among the batch's samples of the same label.

    Under pair-flip noise the small-loss split across a batch takes whole easy classes and leaves hard
    ones out; ordering by within-label quantile keeps the split's size fixed (no host synchronisation)
    while taking about the same share of every label. Ties go to the lower score.
    """
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


@register("comining")
class CoMining(Method):
    uses_baseline_aug = False
    uses_recipe = True

    def __init__(self, cfg, num_classes, make_model, ledger):
        # Label smoothing gives 1-ε to the label and ε/(C-1) to each other class; at ε ≥ (C-1)/C the
        # label no longer stands out, and the loss (hence the selection) would ignore it.
        limit = (num_classes - 1) / num_classes
        if cfg.epsilon >= limit:
            raise UserError(f"--epsilon {cfg.epsilon} leaves no trace of the label with {num_classes} classes "
                            f"(label smoothing needs ε below {limit:.2f}): pass e.g. --epsilon {limit * 0.4:.1f}")
        super().__init__(cfg, num_classes, make_model, ledger)
        dim = self.nets[0].feature_dim
        device = next(self.nets[0].parameters()).device
        self.banks = [MemoryBank(cfg.bank, dim, device) for _ in range(2)]  # one per view
        self.confident_pushed = 0  # rows pushed per bank after warm-up (the confident set H only)

    @property
    def view_kinds(self):
        return VIEWS[self.cfg.aug]

    def forget_rate(self, epoch: int) -> float:
        """Constant after warm-up (no selection happens during it), or ramped from 0 with --forget-ramp;
        0 while an ``auto`` rate has not been estimated yet."""
        if self.target_forget_rate is None:
            return 0.0
        if self.cfg.forget_ramp and self.cfg.num_gradual:
            ramped = max(epoch - self.cfg.warmup_epochs + 1, 0) / self.cfg.num_gradual
            return self.target_forget_rate * min(ramped, 1.0)
        return self.target_forget_rate

    @property
    def estimate_after_epoch(self) -> int:
        return max(self.cfg.warmup_epochs, 1)

    def bank_entries(self, bank: MemoryBank, confident_only: bool):
        """The bank's entries to mine: all of them, or only those pushed after warm-up (from H)."""
        if confident_only:
            return bank.newest(self.confident_pushed)
        return bank.feats, bank.labels

    def loss(self, views, labels, index, epoch):
        cfg, n = self.cfg, labels.shape[0]
        # One forward of both views: one pass of the kernels, and one DDP forward per backward.
        logits, feats = self.nets[0](torch.cat(views))
        z1, z2 = logits.float().chunk(2)
        h1, h2 = torch.nn.functional.normalize(feats.float(), dim=1).chunk(2)
        target = smooth_labels(labels, self.num_classes, cfg.epsilon)
        ce1 = soft_cross_entropy(z1, target)
        l_ce = 0.5 * (ce1 + soft_cross_entropy(z2, target))
        l_pc = symmetric_kl(z1, z2, base=2)
        # The paper ranks on both views' losses; "weak" ranks on the first (weak) view's alone, so a
        # strong crop that hides a clean image's class does not push the image out of C.
        score = (l_ce + cfg.w_pc * l_pc if cfg.select_on == "both" else ce1).detach()
        # Selection may rank an average over epochs; the ledger keeps the step's own score.
        rank_by = self.ledger.update_average(index, score, cfg.score_ema) if cfg.score_ema else score

        if epoch < cfg.warmup_epochs:
            self.push(labels, h1, h2)
            self.ledger.record(index, CLEAN, score)
            loss = l_ce.mean()
            return loss, {"ce": loss}

        clean, confident, noisy = split_by_score(rank_by, self.forget_rate(epoch), cfg.confident_fraction,
                                                 labels if cfg.select_per_class else None, self.num_classes)
        l_tri = torch.cat([
            semi_hard_triplet(h[confident], labels[confident], *self.bank_entries(bank, cfg.tri_confident_bank),
                              cfg.margin, (cfg.plk, cfg.puk), (cfg.nlk, cfg.nuk), cfg.tri_positives)
            for h, bank in zip((h1, h2), self.banks)]).mean()

        (soft1, id1, pseudo1), (soft2, id2, pseudo2) = (
            reciprocal_relabel(h[noisy].detach(), *self.bank_entries(bank, cfg.re_confident_bank), cfg.re_k,
                               cfg.re_sigma, self.num_classes) for h, bank in zip((h1, h2), self.banks))
        agree = id1 & id2 & (pseudo1 == pseudo2)
        relabel_target = 0.5 * (soft1 + soft2)
        l_re = 0.5 * (soft_cross_entropy(z1[noisy], relabel_target) + soft_cross_entropy(z2[noisy], relabel_target))
        l_re = (l_re * agree).sum() / agree.sum().clamp(min=1)

        ce, pc = l_ce[clean].mean(), l_pc[clean].mean()
        loss = ce + cfg.w_pc * pc + cfg.w_tri * l_tri + cfg.w_re * l_re

        self.push(labels[confident], h1[confident], h2[confident])
        self.confident_pushed += confident.shape[0] * distributed.world_size()
        self.ledger.record(index, CLEAN, score)
        self.ledger.record(index[noisy], torch.where(agree, RELABELLED, DISCARDED),
                           score[noisy], torch.where(agree, pseudo1, -1))
        return loss, {"ce": ce, "pc": pc, "tri": l_tri, "re": l_re}

    def push(self, labels, h1, h2):
        """Into each view's bank; under DDP the features of every rank, so all banks stay identical."""
        labels = distributed.gather_rows(labels)
        for bank, h in zip(self.banks, (h1, h2)):
            bank.push(distributed.gather_rows(h.detach()), labels)

    def get_extra_state(self):
        return {"banks": [bank.state_dict() for bank in self.banks], "confident_pushed": self.confident_pushed}

    def set_extra_state(self, state):
        if isinstance(state, list):  # saved before the count of confident pushes existed
            state = {"banks": state, "confident_pushed": 0}
        for bank, bank_state in zip(self.banks, state["banks"]):
            bank.load_state_dict(bank_state)
        self.confident_pushed = int(state["confident_pushed"])
