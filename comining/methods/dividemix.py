"""DivideMix (Li, Socher and Hoi, ICLR 2020): two networks, each dividing the training set for the other.

Before each epoch after warm-up, each network fits a two-component Gaussian mixture to its losses on
the whole training set; the low-loss component's posterior is a sample's clean probability w. The
other network treats the samples with w ≥ τ as labelled and the rest as unlabelled, and trains on
them by MixMatch: labelled targets are refined with w and sharpened, unlabelled targets guessed by
both networks over two augmentations and sharpened, and every input is mixed with another (mixup).
Exchanging the divisions keeps each network from confirming its own mistakes, as Co-teaching's
exchange of small-loss picks does.

The authors draw labelled and unlabelled samples from two loaders; here the split is of each batch
the engine gives (docs/METHOD.md, "DivideMix").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from comining import distributed
from comining.errors import need
from comining.losses import co_guess, sharpen, soft_cross_entropy
from comining.methods import UNUSED, TwoNetworks, masked_mean, register
from comining.noise import rate_is_unknown
from comining.selection import CLEAN
from comining.setting import setting

RAMP_EPOCHS = 16  # the authors' linear ramp of λ_u after warm-up


@dataclass
class DivideMixOptions:
    dm_tau: float = setting(0.5, "clean probability τ from which a sample counts as labelled", metavar="τ")
    dm_temperature: float = setting(0.5, "sharpening temperature T of the MixMatch targets", metavar="T")
    dm_alpha: float = setting(4.0, "mixup's Beta(α, α)", metavar="α")
    dm_lambda_u: float | None = setting(None, "weight λ_u of the unlabelled loss (default: the paper's rule by "
                                        "noise rate; 25 where it is unknown)", metavar="λ")

    @classmethod
    def validate(cls, cfg) -> None:
        """UserError naming the first of these options of ``cfg`` that is out of range."""
        need(0 <= cfg.dm_tau <= 1, f"--dm-tau {cfg.dm_tau} is outside [0, 1]: a clean probability, e.g. 0.5")
        need(cfg.dm_temperature > 0, f"--dm-temperature {cfg.dm_temperature} must be positive, e.g. 0.5")
        need(cfg.dm_alpha > 0, f"--dm-alpha {cfg.dm_alpha} must be positive, e.g. 4")
        need(cfg.dm_lambda_u is None or cfg.dm_lambda_u >= 0, f"--dm-lambda-u {cfg.dm_lambda_u} must not be negative")


def default_lambda_u(cfg) -> float:
    """The paper's λ_u: 0 at symmetric 20 %, 25 at 50 %, 150 at 80 % and 90 % (nearest published rate),
    0 under asymmetric noise; 25 where the noise rate is unknown (a label file or an image set)."""
    if rate_is_unknown(cfg):
        return 25.0
    if cfg.noise_type == "asymmetric" or cfg.closed_rate < 0.35:
        return 0.0
    return 25.0 if cfg.closed_rate < 0.65 else 150.0


def ramp(epoch: int, warmup_epochs: int) -> float:
    """The share of λ_u in ``epoch`` (0-based): linear over RAMP_EPOCHS after warm-up. The authors ramp
    per step; this is their value halfway through the epoch."""
    return float(np.clip((epoch + 0.5 - warmup_epochs) / RAMP_EPOCHS, 0.0, 1.0))


def clean_probability(losses: np.ndarray, seed: int) -> np.ndarray:
    """[N] probability that each sample's label is clean, from its loss ``losses`` [N]: the posterior of
    the lower-mean component of a two-component Gaussian mixture fitted to the losses scaled to [0, 1]
    (the authors' settings; ``seed`` its initialisation). NaN losses (unreadable images) get 0; losses
    that are all equal give 1 (nothing to divide)."""
    prob = np.zeros(len(losses))
    finite = np.isfinite(losses)
    values = losses[finite].astype(np.float64)
    if values.size < 2 or values.max() <= values.min():
        prob[finite] = 1.0
        return prob
    scaled = ((values - values.min()) / (values.max() - values.min()))[:, None]
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # ten iterations, as the authors: on purpose
        gmm = GaussianMixture(2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=seed).fit(scaled)
    prob[finite] = gmm.predict_proba(scaled)[:, gmm.means_.argmin()]
    return prob


def co_refine(target: torch.Tensor, w: torch.Tensor, p_a: torch.Tensor, p_b: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """Labelled targets [B×C]: w·y + (1−w)·mean of the network's predictions on two views, sharpened.
    ``target`` is the one-hot label y [B×C], ``w`` [B] the clean probability."""
    w = w[:, None]
    return sharpen(w * target + (1 - w) * 0.5 * (p_a + p_b), temperature)


def mixup_weight(alpha: float, device) -> torch.Tensor:
    """λ' = max(λ, 1 − λ), λ ~ Beta(α, α), drawn on ``device`` (no host synchronisation): the mixed
    input stays closer to its first part, whose labelled or unlabelled loss it enters."""
    concentration = torch.tensor(float(alpha), device=device)
    lam = torch.distributions.Beta(concentration, concentration, validate_args=False).sample()
    return torch.maximum(lam, 1 - lam)


def mixup(x: torch.Tensor, target: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor):
    """(λx + (1−λ)x[perm], λt + (1−λ)t[perm]): each row mixed with the row ``perm`` names."""
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]


def uniform_prior_penalty(logits: torch.Tensor) -> torch.Tensor:
    """KL(uniform ‖ mean prediction over the batch): keeps the networks from putting every sample in one class."""
    mean = logits.softmax(1).mean(0)
    prior = torch.full_like(mean, 1.0 / mean.shape[0])
    return (prior * (prior / mean).log()).sum()


def negative_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Σ p log p: the warm-up's confidence penalty under asymmetric noise."""
    log_p = F.log_softmax(logits, 1)
    return (log_p.exp() * log_p).sum(1).mean()


@register("dividemix")
class DivideMix(TwoNetworks):
    title, paper_column = "DivideMix", None
    Options = DivideMixOptions
    uses_baseline_aug = False  # MixMatch needs its two augmentations whatever --baseline-aug says
    ramp = UNUSED  # divides by the mixture's clean probability, not by a forget rate

    def __init__(self, cfg, num_classes, make_model, selections):
        super().__init__(cfg, num_classes, make_model, selections)
        self.lambda_u = default_lambda_u(cfg) if cfg.dm_lambda_u is None else cfg.dm_lambda_u
        # Row k: network k's clean probability of every training sample; network 1 − k trains on it.
        # A buffer, so a run resumed mid-epoch trains on the division the epoch began with.
        self.register_buffer("clean_prob", torch.ones(2, selections.status.shape[0], device=selections.status.device))

    @property
    def view_kinds(self):
        return ("weak", "weak")

    @property
    def first_estimate_after(self) -> int:
        return max(self.cfg.warmup_epochs, 1)

    def begin_epoch(self, epoch, rate, labels, probabilities):
        """After warm-up: each network's mixture over its un-augmented losses, into ``clean_prob``."""
        if epoch < self.cfg.warmup_epochs:
            return
        probs = probabilities()
        given = probs.gather(2, labels[None, :, None].expand(len(probs), -1, 1)).squeeze(2)
        losses = (-given.clamp(min=1e-12).log()).cpu().numpy()
        fitted = np.stack([clean_probability(row, self.cfg.seed + epoch) for row in losses])
        self.clean_prob.copy_(torch.as_tensor(fitted, dtype=self.clean_prob.dtype))
        if distributed.active():  # a GPU's rounding must not give the ranks different divisions
            torch.distributed.broadcast(self.clean_prob, src=0)

    def loss(self, views, labels, index, epoch, rate):
        if epoch < self.cfg.warmup_epochs:
            return self.warmup_loss(views, labels, index)
        cfg = self.cfg
        x = torch.cat(views)
        with torch.no_grad():  # both networks on both views, for the targets
            predictions = [net(x)[0].float().softmax(1).chunk(2) for net in self.nets]
        guessed = co_guess([p for pair in predictions for p in pair], cfg.dm_temperature)
        onehot = torch.zeros_like(guessed).scatter_(1, labels[:, None], 1.0)  # F.one_hot reads the labels back
        w = self.clean_prob[:, index]
        weight_u = self.lambda_u * ramp(epoch, cfg.warmup_epochs)
        total, terms = 0.0, {}
        for k, net in enumerate(self.nets):
            peer_w = w[1 - k]  # the other network's division
            labelled = peer_w >= cfg.dm_tau
            target = torch.where(labelled[:, None], co_refine(onehot, peer_w, *predictions[k], cfg.dm_temperature),
                                 guessed)
            lam = mixup_weight(cfg.dm_alpha, x.device)
            perm = torch.randperm(x.shape[0], device=x.device)
            mixed_x, mixed_t = mixup(x, target.repeat(2, 1), lam, perm)
            logits = net(mixed_x)[0].float()
            labelled2 = labelled.repeat(2)  # a mixed row counts as its first part
            lx = masked_mean(soft_cross_entropy(logits, mixed_t), labelled2)
            lu = masked_mean(((logits.softmax(1) - mixed_t) ** 2).mean(1), ~labelled2)
            penalty = uniform_prior_penalty(logits)
            total = total + lx + weight_u * lu + penalty
            terms.update({f"lx{k + 1}": lx, f"lu{k + 1}": lu, f"prior{k + 1}": penalty})
        labelled1 = w[1] >= cfg.dm_tau  # what network 1 trains on, as the others record
        self.record(index, labelled1, 1 - w[1])
        terms["labelled"] = labelled1.float().mean()
        return total, terms

    def warmup_loss(self, views, labels, index):
        """Cross-entropy, each network on its own view; under asymmetric noise plus the negative
        entropy, so that neither grows confident in the flipped labels."""
        total, terms = 0.0, {}
        for k, (net, x) in enumerate(zip(self.nets, views)):
            logits = net(x)[0].float()
            ce = F.cross_entropy(logits, labels, reduction="none")
            loss = ce.mean()
            if self.cfg.noise_type == "asymmetric":
                loss = loss + negative_entropy(logits)
            if k == 0:
                self.selections.record(index, CLEAN, ce)
            total = total + loss
            terms[f"ce{k + 1}"] = ce.mean()
        return total, terms
