"""Model registry: a new architecture is one new file that decorates its builder with ``@register``.

Every model maps images [N×C×H×W] to ``(logits [N×classes], features [N×D])``, where the features
are the input of the final linear layer (what Co-mining's memory banks store), and exposes
``feature_dim``. A model that can also give an earlier stage's features to ``--backbone frozen``
(``--feature-stages 2``) says how many stages it offers in ``stage_count`` and returns them, last
one last, from ``stage_features(x)``, as ``cnn.Classifier`` does; without them it offers one.

What ``register`` is told besides the name is what the rest of the package asks of an architecture:
a few words for ``--help``, whether training it whole on a CPU is worth a warning, and whether it is
a head that trains on a frozen backbone's features (``--head``) rather than a network on images.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from comining.errors import UserError

MODELS: dict = {}


@dataclass(frozen=True)
class Architecture:
    """What ``register`` was told of an architecture besides its builder."""
    summary: str = ""  # a few words for --help
    slow_on_cpu: bool = False  # training it whole on a CPU takes hours at image-set sizes: the run warns first
    head: bool = False  # it trains on a frozen backbone's features, and --head names it


ABOUT: dict[str, Architecture] = {}


def register(name: str, summary: str = "", slow_on_cpu: bool = False, head: bool = False):
    """Register ``builder(in_channels, num_classes, image_size)`` as architecture ``name``, with what
    ``Architecture`` records of it."""
    def wrap(builder):
        MODELS[name], ABOUT[name] = builder, Architecture(summary, slow_on_cpu, head)
        return builder
    return wrap


def about(name: str) -> Architecture:
    """What was registered of ``name`` (an unknown or hand-added name: nothing)."""
    return ABOUT.get(name, Architecture())


def names(heads: bool = False) -> tuple[str, ...]:
    """The registered networks on images, or with ``heads`` the heads, in registration order."""
    return tuple(name for name in MODELS if about(name).head == heads)


def described(heads: bool = False) -> str:
    """"cnn (the paper's 6-layer CNN), small (CPU-sized), resnet18": ``names`` with their summaries."""
    return ", ".join(f"{name} ({about(name).summary})" if about(name).summary else name for name in names(heads))


def build_model(name: str, in_channels: int, num_classes: int, image_size: int):
    """A fresh model ``name`` for images of ``in_channels`` × ``image_size``² and ``num_classes`` outputs."""
    if name not in MODELS:
        raise UserError(f"unknown architecture '{name}': choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name](in_channels=in_channels, num_classes=num_classes, image_size=image_size)


for _module in pkgutil.iter_modules(__path__):  # each architecture's module registers its builder
    if _module.name not in ("weights", "backbone"):  # loading weights, wrapping models: no architecture
        importlib.import_module(f"{__name__}.{_module.name}")
