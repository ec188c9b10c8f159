"""Method registry and the base class every training method extends.

A method owns its network(s), its options and its title, and turns one batch of views into a
loss; the engine does everything else (data, optimiser, schedule, forget rate, evaluation,
checkpoints). A new method is one new file in this folder that subclasses ``Method`` and decorates
it with ``@register("name")``: the registry imports every module here.
"""

from __future__ import annotations

import importlib
import math
import pkgutil

import torch
import torch.nn.functional as F
from torch import nn

from comining.errors import UserError
from comining.selection import CLEAN, DISCARDED

METHODS: dict = {}

# How a method brings its forget rate in (``Method.ramp``; comining.forget_rate computes the rate):
FROM_START = "from_start"  # linearly over the first --num-gradual epochs (Co-teaching's schedule)
AFTER_WARMUP = "after_warmup"  # linearly over --num-gradual epochs once warm-up ends (Co-mining's default)
AT_ONCE = "at_once"  # the whole target from the first epoch that selects (the paper's Co-mining)
UNUSED = "unused"  # the method selects by something else (Decoupling, DivideMix), or not at all (Standard): always 0


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
    """Base of all methods: ``num_networks`` models built by ``make_model``, and the selection log
    (``comining.selection``) its steps write.

    Subclasses implement ``loss(views, labels, index, epoch, rate) -> (loss, terms)``: views are the
    augmented batches named by ``view_kinds``, labels the given (noisy) labels, index the samples'
    positions in the training set, rate the epoch's forget rate, terms a dict of scalar tensors to log.
    ``loss`` must stay on the device: no ``.item()``, ``.cpu()`` or data-dependent shapes, so a step
    never waits on the host."""

    name = "base"
    title = "base"  # as the paper's tables print it
    paper_column: int | None = None  # its column in the paper's tables; None for methods outside them
    Options = None  # a dataclass of its own settings with a validate(cfg) classmethod
    num_networks = 1
    uses_baseline_aug = True  # False for methods that choose their own views (Co-mining's --aug)
    uses_recipe = False  # True for Co-mining, whose options --recipe names
    epsilon = 0.0  # the label smoothing of the targets the networks fit (Co-mining's ε; the baselines' none)
    ramp = FROM_START
    # Whether --forget-rate auto counts the wrong labels without a split (the confident joint, anchor
    # points) where the losses do not separate, and reads the confident joint into the interval: both
    # need a network fitted to the labels (Co-mining's after warm-up); one epoch in, a baseline's may
    # be near chance, where they read every label as wrong.
    counts_without_split = False
    # The training history's share of the final label quality (``verdicts.label_quality``); the rest
    # is the final network's margin. A final network agrees with the wrong labels it has fitted, and
    # the history, ranked before that, still tells them apart; how much it fits is a matter of how
    # the method trains. A property of the method, not of the noise rate, so that an estimated rate
    # does not move the order (docs/METHOD.md, "Final verdicts").
    history_weight = 0.25

    def __init__(self, cfg, num_classes: int, make_model, selections):
        super().__init__()
        self.cfg, self.num_classes, self.selections = cfg, num_classes, selections
        self.nets = nn.ModuleList(make_model() for _ in range(self.num_networks))

    @property
    def view_kinds(self) -> tuple[str, ...]:
        """The baselines' single view: un-augmented as in the paper, or the weak view (--baseline-aug)."""
        return ("plain",) if self.cfg.baseline_aug == "none" else ("weak",)

    @property
    def first_estimate_after(self) -> int:
        """With --forget-rate auto, the epoch after which the noise rate is estimated from the losses."""
        return 1  # the first, while the ramp has not yet used the rate

    @property
    def second_estimate_after(self) -> int | None:
        """The epoch after which it is estimated once more, from networks trained with selection (None: never)."""
        return None

    def begin_epoch(self, epoch: int, rate: float, labels: torch.Tensor, probabilities) -> None:
        """Called before an epoch's first step (not again when a run resumes mid-epoch): ``labels`` [N]
        are the training set's given labels, ``probabilities()`` computes each network's un-augmented
        class probabilities on the whole training set [K×N×C] (a pass over the data: call it only when
        needed). Nothing by default."""

    def loss(self, views, labels, index, epoch, rate):
        raise NotImplementedError

    def neighbour_votes(self, features: torch.Tensor) -> torch.Tensor | None:
        """For the final verdicts: [B×C] class votes of the neighbours of ``features`` [B×D] (the first
        network's, un-augmented) in what the method remembers of the training set; None for a method
        that keeps no features (the default), or has none yet."""
        return None


def pick_smallest(values: torch.Tensor, rate: float, among: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean mask of the ⌊n(1-rate)⌋ smallest ``values`` among the candidates ``among`` (all if None).
    n is counted on the device, so a data-dependent candidate set never forces a synchronisation."""
    n = values.shape[0]
    among = torch.ones(n, dtype=torch.bool, device=values.device) if among is None else among
    order = values.detach().masked_fill(~among, float("inf")).argsort()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=values.device)
    keep = torch.floor(among.sum().double() * (1.0 - rate) + 1e-9)  # float32 would round 59 down to 58
    return rank < keep


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` holds; 0 (with a zero gradient) when it holds nowhere."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


class TwoNetworks(Method):
    """Base of the baselines that train two networks of the same architecture side by side."""

    num_networks = 2

    def forward_both(self, x: torch.Tensor):
        """Logits of both networks, as float32 for the losses."""
        return [net(x)[0].float() for net in self.nets]

    def forward_ce(self, x: torch.Tensor, labels: torch.Tensor):
        """(z1, z2, ce1, ce2): both networks' logits and per-sample cross-entropies on the given labels."""
        z1, z2 = self.forward_both(x)
        return z1, z2, F.cross_entropy(z1, labels, reduction="none"), F.cross_entropy(z2, labels, reduction="none")

    def record(self, index, trained: torch.Tensor, score: torch.Tensor) -> None:
        """Selections of a two-network step: clean if at least one network trained on the given label."""
        self.selections.record(index, torch.where(trained, CLEAN, DISCARDED), score)


def build_method(cfg, num_classes: int, make_model, selections) -> Method:
    if cfg.method not in METHODS:
        raise UserError(f"unknown method '{cfg.method}': choose one of {', '.join(sorted(METHODS))}")
    return METHODS[cfg.method](cfg, num_classes, make_model, selections)


def paper_methods() -> list[str]:
    """The methods of the paper's tables, in their column order."""
    return sorted((m for m in METHODS if METHODS[m].paper_column is not None), key=lambda m: METHODS[m].paper_column)


def titles() -> dict[str, str]:
    return {name: cls.title for name, cls in METHODS.items()}


for _module in pkgutil.iter_modules(__path__):  # each module registers its method
    importlib.import_module(f"{__name__}.{_module.name}")
