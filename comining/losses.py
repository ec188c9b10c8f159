"""Per-sample loss functions shared by the methods (each returns one value per sample), and the
guessed, sharpened soft targets some of them are given."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def smooth_labels(labels: torch.Tensor, num_classes: int, epsilon: float) -> torch.Tensor:
    """Targets with 1-ε on the given label and ε/(C-1) on every other class."""
    off = epsilon / (num_classes - 1)
    target = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return target.scatter_(1, labels[:, None], 1.0 - epsilon)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-Σ_c target_c log softmax(logits)_c for each sample."""
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(1)


def sharpen(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """Rows of ``p`` [B×C] raised to 1/T and renormalised (MixMatch's sharpening of guessed targets)."""
    p = p ** (1.0 / temperature)
    return p / p.sum(1, keepdim=True)


def co_guess(predictions, temperature: float) -> torch.Tensor:
    """Guessed targets [B×C] for unlabelled samples: the mean of ``predictions`` (each [B×C]; DivideMix's
    two networks on two views, Co-mining's two views), sharpened."""
    return sharpen(torch.stack(list(predictions)).mean(0), temperature)


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor, base: float = math.e) -> torch.Tensor:
    """KL(p_a‖p_b) + KL(p_b‖p_a) per sample, in units of log ``base``; gradients reach both sides."""
    log_a, log_b = F.log_softmax(logits_a.float(), dim=1), F.log_softmax(logits_b.float(), dim=1)
    kl = ((log_a.exp() - log_b.exp()) * (log_a - log_b)).sum(1)  # the two KLs summed in one pass
    return kl / math.log(base)
