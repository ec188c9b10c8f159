"""Heads: the small classifiers ``--backbone frozen`` trains on a frozen network's cached features.

Each maps inputs [N×D] (any shape [N×C×S×S] is flattened, so on pixels they are a linear model or an
MLP of the pixels) to ``(logits, features)`` like every model, so Co-mining's memory banks, mining,
relabelling and the verdicts work on them unchanged. The features are the input of the final
linear layer: the backbone's own features for ``linear``, the hidden layer's for ``mlp``.
"""

from __future__ import annotations

from torch import nn

from comining.models import register
from comining.models.cnn import Classifier

MLP_WIDTH = 256  # hidden units of the mlp head


@register("linear", "one layer", head=True)
def linear_head(in_channels: int, num_classes: int, image_size: int) -> Classifier:
    """One linear layer on the flattened input (in_channels · image_size² values; features: image_size 1)."""
    width = in_channels * image_size * image_size
    return Classifier(nn.Flatten(), width, num_classes)


@register("mlp", "one hidden layer", head=True)
def mlp_head(in_channels: int, num_classes: int, image_size: int) -> Classifier:
    """Flatten, a hidden layer of MLP_WIDTH units with BatchNorm and ReLU, then the linear classifier."""
    width = in_channels * image_size * image_size
    body = nn.Sequential(nn.Flatten(), nn.Linear(width, MLP_WIDTH, bias=False), nn.BatchNorm1d(MLP_WIDTH),
                         nn.ReLU(inplace=True))
    return Classifier(body, MLP_WIDTH, num_classes)
