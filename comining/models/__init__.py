"""Model registry: a new architecture is one new file that decorates its builder with ``@register``.

Every model maps images [N×C×H×W] to ``(logits [N×classes], features [N×D])``, where the features
are the input of the final linear layer (what Co-mining's memory banks store), and exposes
``feature_dim``. A model that can also give an earlier stage's features to ``--backbone frozen``
(``--feature-stages 2``) says how many stages it offers in ``stage_count`` and returns them, last
one last, from ``stage_features(x)``, as ``cnn.Classifier`` does; without them it offers one.
"""

from __future__ import annotations

import importlib
import pkgutil

from comining.errors import UserError

MODELS: dict = {}


def register(name: str):
    def wrap(builder):
        MODELS[name] = builder
        return builder
    return wrap


def build_model(name: str, in_channels: int, num_classes: int, image_size: int):
    """A fresh model ``name`` for images of ``in_channels`` × ``image_size``² and ``num_classes`` outputs."""
    if name not in MODELS:
        raise UserError(f"unknown architecture '{name}': choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name](in_channels=in_channels, num_classes=num_classes, image_size=image_size)


for _module in pkgutil.iter_modules(__path__):  # each architecture's module registers its builder
    if _module.name != "weights":
        importlib.import_module(f"{__name__}.{_module.name}")
