"""The paper's 6-layer CNN for CIFAR-style data and a small CNN for CPU runs."""

from __future__ import annotations

import torch
from torch import nn

from comining.errors import UserError
from comining.models import register


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


# The earlier stage's map is average-pooled to at most this many cells a side before it joins the
# features (``Classifier.stage_features``): on 28-px images the small CNN's map is 3×3 already, and on
# larger ones its width stays that of 28 px instead of growing with the image.
EARLIER_GRID = 3


class Classifier(nn.Module):
    """A feature extractor followed by one linear layer; returns (logits, features).

    ``earlier``: where in ``body`` (an nn.Sequential) an earlier stage's feature map ends, for
    ``stage_features``; None where the body has no such stage (the heads)."""

    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int, earlier: int | None = None):
        super().__init__()
        self.body, self.feature_dim, self.earlier = body, feature_dim, earlier
        self.fc = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor):
        features = self.body(x)
        return self.fc(features), features

    @property
    def stage_count(self) -> int:
        """The stages ``stage_features`` returns."""
        return 1 if self.earlier is None else 2

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The earlier stage's map, pooled to at most EARLIER_GRID² cells and flattened, then
        ``forward``'s features: what ``--feature-stages`` concatenates on a frozen backbone. The map is
        not averaged whole: these networks keep where things are in the image (see ``small_cnn``)."""
        if self.earlier is None:
            return [self.body(x)]
        feature_map = self.body[:self.earlier](x)
        cells = min(EARLIER_GRID, feature_map.shape[-1])
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(feature_map, cells), 1)
        return [pooled, self.body[self.earlier:](feature_map)]


@register("cnn", "the paper's 6-layer CNN")
def paper_cnn(in_channels: int, num_classes: int, image_size: int) -> Classifier:
    """Conv 3×3 64,64,pool,128,128,pool,196,16,pool with BatchNorm and ReLU; linear on the flat map.
    The flattened size follows the input size (32 px → 16·4·4 = 256, 28 px → 144, 8 px → 16)."""
    body = nn.Sequential(
        conv_bn_relu(in_channels, 64), conv_bn_relu(64, 64), nn.MaxPool2d(2),
        conv_bn_relu(64, 128), conv_bn_relu(128, 128), nn.MaxPool2d(2),
        conv_bn_relu(128, 196), conv_bn_relu(196, 16), nn.MaxPool2d(2),
        nn.Flatten())
    side = image_size // 2 // 2 // 2
    if side < 1:
        raise UserError(f"the paper's CNN needs images of at least 8 px, got {image_size}: "
                        "use a larger --crop-size or --arch small")
    return Classifier(body, 16 * side * side, num_classes, earlier=6)  # the 128-channel map


@register("small", "CPU-sized")
def small_cnn(in_channels: int, num_classes: int, image_size: int) -> Classifier:
    """Three conv blocks (32, 64, 64 channels, each pooled) and a 128-wide hidden layer.
    About 9× cheaper than the paper's CNN on 28-px images. The flattened map (not a global
    average) keeps where things are in the image, which Fashion-MNIST needs; with global pooling
    test accuracy swung by 20+ points from epoch to epoch under label noise."""
    side = image_size // 8
    if side < 1:
        raise UserError(f"the small CNN needs images of at least 8 px, got {image_size}: use a larger --crop-size")
    body = nn.Sequential(
        conv_bn_relu(in_channels, 32), nn.MaxPool2d(2),
        conv_bn_relu(32, 64), nn.MaxPool2d(2),
        conv_bn_relu(64, 64), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * side * side, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True))
    return Classifier(body, 128, num_classes, earlier=6)  # the last convolution's pooled map
