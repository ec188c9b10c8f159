"""JoCoR: a joint loss (cross-entropy of both networks plus their co-regularisation), small-loss kept.

Instead of exchanging picks, both networks are pulled towards agreement and selected jointly, so
they agree on which samples are clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from comining.errors import UserError
from comining.losses import symmetric_kl
from comining.methods import TwoNetworks, pick_smallest, masked_mean, register
from comining.setting import setting


def default_lambda(num_classes: int, closed_rate: float) -> float:
    """The paper's co-regularisation weight: 0.85 for 100-class data; 0.9 for 10 classes, 0.65 at 80 % noise."""
    if num_classes > 10:
        return 0.85
    return 0.9 if closed_rate < 0.6 else 0.65


def joint_loss(z1, z2, labels, lam):
    """Per sample (1-λ)(CE1 + CE2) + λ(KL(p1‖p2) + KL(p2‖p1)), natural logarithms."""
    ce = F.cross_entropy(z1, labels, reduction="none") + F.cross_entropy(z2, labels, reduction="none")
    return (1 - lam) * ce + lam * symmetric_kl(z1, z2)


@dataclass
class JoCoROptions:
    jocor_lambda: float | None = setting(None, "co-regularisation weight λ (default: the paper's rule)",
                                         metavar="λ")

    @classmethod
    def validate(cls, cfg) -> None:
        if cfg.jocor_lambda is not None and not 0 <= cfg.jocor_lambda <= 1:
            raise UserError(f"--jocor-lambda {cfg.jocor_lambda} is outside [0, 1]")


@register("jocor")
class JoCoR(TwoNetworks):
    title, paper_column = "JoCoR", 4
    Options = JoCoROptions
    # Its final margins rank its labels worse, against its training history, than Co-teaching's do,
    # most where its estimated rate set much aside (chosen on its own runs, confirmed on others:
    # docs/notes/2026-12-07-history-weight-per-method.md).
    history_weight = 0.4

    def __init__(self, cfg, num_classes, make_model, selections):
        super().__init__(cfg, num_classes, make_model, selections)
        self.lam = cfg.jocor_lambda if cfg.jocor_lambda is not None else default_lambda(num_classes, cfg.closed_rate)

    def loss(self, views, labels, index, epoch, rate):
        z1, z2 = self.forward_both(views[0])
        joint = joint_loss(z1, z2, labels, self.lam)
        kept = pick_smallest(joint, rate)
        loss = masked_mean(joint, kept)
        self.record(index, kept, joint)
        return loss, {"joint": loss}
