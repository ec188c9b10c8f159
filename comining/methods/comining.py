"""Co-mining (DESIGN.md §2): one network, two views, loss-based selection, feature-space mining.

Per batch: a clean set C (lowest scores) trains with label-smoothed cross-entropy and prediction
consistency; its most confident part H also pulls features towards same-label bank entries
(semi-hard triplet) and feeds the memory banks; the rest D is relabelled from k-reciprocal bank
neighbours when both views agree, and otherwise discarded for this step. With ``--select-by peer``
two networks take this step side by side, each on the split the other's score makes (Co-teaching's
exchange); the verdicts are the first network's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from comining import distributed
from comining.config import default_epsilon
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
    counts_without_split = True

    def __init__(self, cfg, num_classes, make_model, ledger):
        # Label smoothing gives 1-ε to the label and ε/(C-1) to each other class; at ε ≥ (C-1)/C the
        # label no longer stands out, and the loss (hence the selection) would ignore it.
        limit = (num_classes - 1) / num_classes
        self.epsilon = default_epsilon(num_classes) if cfg.epsilon is None else cfg.epsilon
        if self.epsilon >= limit:
            raise UserError(f"--epsilon {cfg.epsilon} leaves no trace of the label with {num_classes} classes "
                            f"(label smoothing needs ε below {limit:.2f}): pass e.g. --epsilon {limit * 0.4:.1f}, "
                            "or leave it out for the default")
        super().__init__(cfg, num_classes, make_model, ledger)
        dim = self.nets[0].feature_dim
        device = next(self.nets[0].parameters()).device
        self.banks = [MemoryBank(cfg.bank, dim, device) for _ in range(2 * self.num_networks)]  # per net and view
        self.confident_pushed = 0  # rows pushed per bank after warm-up (the confident set H only)

    @property
    def num_networks(self):
        """Two with --select-by peer (each picks the other's clean set), else the paper's one."""
        return 2 if self.cfg.select_by == "peer" else 1

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

    @property
    def reestimate_after_epoch(self) -> int:
        """As many epochs of selection after the first estimate as the warm-up had: a network trained on
        its clean sets has not learned pair flips as a second cluster the way the warm-up's has, so its
        losses split clean from wrong where the warm-up's do not (docs/METHOD.md)."""
        return 2 * self.estimate_after_epoch

    def bank_entries(self, bank: MemoryBank, confident_only: bool):
        """The bank's entries to mine: all of them, or only those pushed after warm-up (from H)."""
        if confident_only:
            return bank.newest(self.confident_pushed)
        return bank.feats, bank.labels

    def view_outputs(self, net, views, labels, target):
        """One network's per-sample terms on both views (one forward, one DDP forward per backward)."""
        cfg = self.cfg
        logits, feats = net(torch.cat(views))
        z1, z2 = logits.float().chunk(2)
        h1, h2 = F.normalize(feats.float(), dim=1).chunk(2)
        ce1, ce2 = soft_cross_entropy(z1, target), soft_cross_entropy(z2, target)
        l_ce = 0.5 * (ce1 + ce2)
        l_pc = symmetric_kl(z1, z2, base=2)
        # The paper fits the labels on both views; "weak" fits them on the weak view alone and leaves the
        # strong view to the consistency term (w_pc > 0), so a crop that hides the class is not pushed to the label.
        train_ce = l_ce if cfg.ce_on == "both" else ce1
        with torch.no_grad():
            # The paper ranks on the smoothed targets it trains with. Against them a flat prediction scores
            # as well as a confident right one; "given" ranks on the given label's own cross-entropy.
            rank_ce1, rank_ce = ce1, l_ce
            if cfg.score_target == "given":
                rank_ce1 = F.cross_entropy(z1, labels, reduction="none")
                rank_ce = 0.5 * (rank_ce1 + F.cross_entropy(z2, labels, reduction="none"))
            # The paper ranks on both views' losses; "weak" ranks on the first (weak) view's alone, so a
            # strong crop that hides a clean image's class does not push the image out of C.
            score = rank_ce + cfg.w_pc * l_pc if cfg.select_on == "both" else rank_ce1
        return {"z": (z1, z2), "h": (h1, h2), "ce": train_ce, "pc": l_pc, "score": score}

    def loss(self, views, labels, index, epoch):
        cfg = self.cfg
        target = smooth_labels(labels, self.num_classes, self.epsilon)
        outs = [self.view_outputs(net, views, labels, target) for net in self.nets]

        if epoch < cfg.warmup_epochs:
            for out, banks in zip(outs, self.bank_pairs):
                self.push(banks, labels, *out["h"])
            self.ledger.record(index, CLEAN, outs[0]["score"])
            loss = sum(out["ce"].mean() for out in outs)
            return loss, {"ce": loss / len(outs)}

        # Each network trains on the split its selector's score makes: its own (--select-by self), or
        # the other network's (peer), so it does not confirm its own mistakes (Co-teaching's exchange).
        selectors = outs[::-1]  # with one network, its own; with two, each the other's
        # Selection may rank an average over epochs; the ledger keeps the step's own score.
        rank_by = self.ledger.update_average(index, outs[0]["score"], cfg.score_ema) if cfg.score_ema else None
        losses, terms = [], []
        for n, (out, selector, banks) in enumerate(zip(outs, selectors, self.bank_pairs)):
            clean, confident, noisy = split_by_score(selector["score"] if rank_by is None else rank_by,
                                                     self.forget_rate(epoch), cfg.confident_fraction,
                                                     labels if cfg.select_per_class else None, self.num_classes)
            loss, net_terms, agree, pseudo = self.split_loss(out, banks, labels, clean, confident, noisy)
            losses.append(loss)
            terms.append(net_terms)
            self.push(banks, labels[confident], *(h[confident] for h in out["h"]))
            if n == 0:  # the verdicts are those of the first network's training
                self.ledger.record(index, CLEAN, selector["score"])
                self.ledger.record(index[noisy], torch.where(agree, RELABELLED, DISCARDED),
                                   selector["score"][noisy], torch.where(agree, pseudo, -1))
        self.confident_pushed += confident.shape[0] * distributed.world_size()  # H's size is the same for each
        return sum(losses), {k: sum(t[k] for t in terms) / len(terms) for k in terms[0]}

    def split_loss(self, out, banks, labels, clean, confident, noisy):
        """One network's loss on a split: C trains on its labels, H mines the banks, D is relabelled where
        both views' reciprocal neighbours agree. Returns (loss, terms, agree [|D|], pseudo-labels [|D|])."""
        cfg = self.cfg
        (z1, z2), (h1, h2) = out["z"], out["h"]
        l_tri = torch.cat([
            semi_hard_triplet(h[confident], labels[confident], *self.bank_entries(bank, cfg.tri_confident_bank),
                              cfg.margin, (cfg.plk, cfg.puk), (cfg.nlk, cfg.nuk), cfg.tri_positives)
            for h, bank in zip((h1, h2), banks)]).mean()

        (soft1, id1, pseudo1), (soft2, id2, pseudo2) = (
            reciprocal_relabel(h[noisy].detach(), *self.bank_entries(bank, cfg.re_confident_bank), cfg.re_k,
                               cfg.re_sigma, self.num_classes) for h, bank in zip((h1, h2), banks))
        agree = id1 & id2 & (pseudo1 == pseudo2)
        relabel_target = 0.5 * (soft1 + soft2)
        l_re = 0.5 * (soft_cross_entropy(z1[noisy], relabel_target) + soft_cross_entropy(z2[noisy], relabel_target))
        l_re = (l_re * agree).sum() / agree.sum().clamp(min=1)

        ce, pc = out["ce"][clean].mean(), out["pc"][clean].mean()
        loss = ce + cfg.w_pc * pc + cfg.w_tri * l_tri + cfg.w_re * l_re
        return loss, {"ce": ce, "pc": pc, "tri": l_tri, "re": l_re}, agree, pseudo1

    @property
    def bank_pairs(self):
        """Each network's two banks (one per view)."""
        return [self.banks[2 * n: 2 * n + 2] for n in range(len(self.nets))]

    def push(self, banks, labels, h1, h2):
        """Into each view's bank; under DDP the features of every rank, so all banks stay identical."""
        labels = distributed.gather_rows(labels)
        for bank, h in zip(banks, (h1, h2)):
            bank.push(distributed.gather_rows(h.detach()), labels)

    def get_extra_state(self):
        return {"banks": [bank.state_dict() for bank in self.banks], "confident_pushed": self.confident_pushed}

    def set_extra_state(self, state):
        if isinstance(state, list):  # saved before the count of confident pushes existed
            state = {"banks": state, "confident_pushed": 0}
        for bank, bank_state in zip(self.banks, state["banks"]):
            bank.load_state_dict(bank_state)
        self.confident_pushed = int(state["confident_pushed"])
