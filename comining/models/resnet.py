"""ResNet-18 and ResNet-50 in torchvision's layout, so ImageNet checkpoints load by name.

Parameter and buffer names and shapes are those of ``torchvision.models.resnet18/50`` (conv1,
bn1, layer1..layer4 of BasicBlock/Bottleneck with ``downsample.0/.1``, fc); torchvision itself is
not a dependency. ``forward`` returns (logits, features), the features being the pooled
512-d (ResNet-18) or 2048-d (ResNet-50) vector that feeds ``fc``.
"""

from __future__ import annotations

import torch
from torch import nn

from comining.models import register


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(c_in, planes, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: the stride sits on the 3×3 convolution."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1, self.bn1 = conv1x1(c_in, planes), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = conv1x1(planes, planes * 4), nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem (7×7/2 conv, 3×3/2 max-pool), four stages, global average pool, linear classifier."""

    stage_count = 2  # the stages ``stage_features`` returns

    def __init__(self, block, layers: list[int], num_classes: int, in_channels: int = 3):
        super().__init__()
        self.c_in = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(block, 64, layers[0], 1)
        self.layer2 = self._stage(block, 128, layers[1], 2)
        self.layer3 = self._stage(block, 256, layers[2], 2)
        self.layer4 = self._stage(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = 512 * block.expansion
        self.fc = nn.Linear(self.feature_dim, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.c_in != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.c_in, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.c_in, planes, stride, downsample)]
        self.c_in = planes * block.expansion
        layers += [block(self.c_in, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def through_layer3(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))))

    def forward(self, x: torch.Tensor):
        features = torch.flatten(self.avgpool(self.layer4(self.through_layer3(x))), 1)
        return self.fc(features), features

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The average-pooled outputs of the last two stages, [N×C3] and [N×C4] (the second is
        ``forward``'s features): what ``--feature-stages`` concatenates on a frozen backbone."""
        x = self.through_layer3(x)
        return [torch.flatten(self.avgpool(x), 1), torch.flatten(self.avgpool(self.layer4(x)), 1)]


@register("resnet18", slow_on_cpu=True)
def resnet18(in_channels: int, num_classes: int, image_size: int) -> ResNet:
    """ResNet-18 (BasicBlock ×[2, 2, 2, 2]); any input size of at least 1 px works (adaptive pooling)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)


@register("resnet50", slow_on_cpu=True)
def resnet50(in_channels: int, num_classes: int, image_size: int) -> ResNet:
    """ResNet-50 (Bottleneck ×[3, 4, 6, 3]), the paper's web backbone."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels)
