"""Method registry and the base class every training method extends.

A method owns its network(s) and turns one batch of views into a loss; the engine does everything
else (data, optimiser, schedule, evaluation, checkpoints). A new method is one new file here that
subclasses ``Method`` and decorates it with ``@register("name")``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from comining.config import Config, effective_forget_rate
from comining.errors import UserError

METHODS: dict = {}


def register(name: str):
    def wrap(cls):
        cls.name = name
        METHODS[name] = cls
        return cls
    return wrap


def num_kept(n: int, rate: float) -> int:
    """⌊n(1 - rate)⌋, never 0 for a non-empty batch (a mean over no samples would be NaN)."""
    if n == 0:
        return 0
    return max(1, int(math.floor(n * (1.0 - rate) + 1e-9)))


class Method(nn.Module):
    """Base of all methods: ``num_networks`` models built by ``make_model``, a ledger of verdicts.

    Subclasses implement ``loss(views, labels, index, epoch) -> (loss, terms)``: views are the
    augmented batches named by ``view_kinds``, labels the given (noisy) labels, index the samples'
    positions in the training set, terms a dict of scalar tensors to log. ``loss`` must stay on the
    device: no ``.item()``, ``.cpu()`` or data-dependent shapes, so a step never waits on the host.
    """

    name = "base"
    num_networks = 1

    def __init__(self, cfg: Config, num_classes: int, make_model, ledger):
        super().__init__()
        self.cfg, self.num_classes, self.ledger = cfg, num_classes, ledger
        self.nets = nn.ModuleList(make_model() for _ in range(self.num_networks))
        self.target_forget_rate = effective_forget_rate(cfg)

    @property
    def view_kinds(self) -> tuple[str, ...]:
        """The baselines' single view: un-augmented as in the paper, or the weak view (--baseline-aug)."""
        return ("plain",) if self.cfg.baseline_aug == "none" else ("weak",)

    def forget_rate(self, epoch: int) -> float:
        """Linear ramp from 0 to the target over the first --num_gradual epochs (Co-teaching's schedule)."""
        ramp = self.cfg.num_gradual
        if ramp <= 1:
            return self.target_forget_rate
        return self.target_forget_rate * min(epoch / (ramp - 1), 1.0)

    def loss(self, views, labels, index, epoch):
        raise NotImplementedError


def build_method(cfg: Config, num_classes: int, make_model, ledger) -> Method:
    if cfg.method not in METHODS:
        raise UserError(f"unknown method '{cfg.method}': choose one of {', '.join(sorted(METHODS))}")
    return METHODS[cfg.method](cfg, num_classes, make_model, ledger)


from comining.methods import comining, standard  # noqa: E402,F401  (register the methods)
