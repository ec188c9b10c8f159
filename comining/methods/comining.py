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


def split_by_score(score: torch.Tensor, rate: float, confident_fraction: float):
    """Indices of C (the ⌊N(1-r)⌋ lowest scores), H (the ⌊N(1-r)e⌋ lowest) and D (everything not in C).

    The authors' code takes D as ``sorted[int(N*r):]``, which is the complement of C only at r = 0.5;
    here D is always the complement, so no sample is both trained as clean and relabelled.
    """
    n = score.shape[0]
    n_clean = num_kept(n, rate)
    n_confident = min(n_clean, max(1, math.floor(n * (1 - rate) * confident_fraction + 1e-9)))
    order = score.argsort()
    return order[:n_clean], order[:n_confident], order[n_clean:]


@register("comining")
class CoMining(Method):
    uses_baseline_aug = False
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

    @property
    def view_kinds(self):
        return VIEWS[self.cfg.aug]

    def forget_rate(self, epoch: int) -> float:
        return self.target_forget_rate  # constant: no selection happens during warm-up anyway

    def loss(self, views, labels, index, epoch):
        cfg, n = self.cfg, labels.shape[0]
        # One forward of both views: one pass of the kernels, and one DDP forward per backward.
        logits, feats = self.nets[0](torch.cat(views))
        z1, z2 = logits.float().chunk(2)
        h1, h2 = torch.nn.functional.normalize(feats.float(), dim=1).chunk(2)
        target = smooth_labels(labels, self.num_classes, cfg.epsilon)
        l_ce = 0.5 * (soft_cross_entropy(z1, target) + soft_cross_entropy(z2, target))
        l_pc = symmetric_kl(z1, z2, base=2)
        score = (l_ce + cfg.w_pc * l_pc).detach()

        if epoch < cfg.warmup_epochs:
            self.push(labels, h1, h2)
            self.ledger.record(index, CLEAN, score)
            loss = l_ce.mean()
            return loss, {"ce": loss}

        clean, confident, noisy = split_by_score(score, self.forget_rate(epoch), cfg.confident_fraction)
        l_tri = torch.cat([
            semi_hard_triplet(h[confident], labels[confident], bank.feats, bank.labels, cfg.margin,
                              (cfg.plk, cfg.puk), (cfg.nlk, cfg.nuk))
            for h, bank in zip((h1, h2), self.banks)]).mean()

        (soft1, id1, pseudo1), (soft2, id2, pseudo2) = (
            reciprocal_relabel(h[noisy].detach(), bank.feats, bank.labels, cfg.re_k, cfg.re_sigma,
                               self.num_classes) for h, bank in zip((h1, h2), self.banks))
        agree = id1 & id2 & (pseudo1 == pseudo2)
        relabel_target = 0.5 * (soft1 + soft2)
        l_re = 0.5 * (soft_cross_entropy(z1[noisy], relabel_target) + soft_cross_entropy(z2[noisy], relabel_target))
        l_re = (l_re * agree).sum() / agree.sum().clamp(min=1)

        ce, pc = l_ce[clean].mean(), l_pc[clean].mean()
        loss = ce + cfg.w_pc * pc + cfg.w_tri * l_tri + cfg.w_re * l_re

        self.push(labels[confident], h1[confident], h2[confident])
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
        return [bank.state_dict() for bank in self.banks]

    def set_extra_state(self, state):
        for bank, bank_state in zip(self.banks, state):
            bank.load_state_dict(bank_state)
