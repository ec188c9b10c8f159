"""Batched image views made on the training device from uint8 batches.

One ``Views`` object serves every method and data set: ``plain`` (tensor conversion only, what the
authors' baselines see), ``weak`` (random crop + horizontal flip), ``strong`` (weak + AutoAugment
with the CIFAR-10 policy, a sub-policy per image) and ``test`` (centre crop). Randomness comes from
torch's global generator of the device, so a seeded run repeats and a checkpoint can restore it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from comining.data.autoaugment import BatchAutoAugment

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def random_crop(images: torch.Tensor, size: int, padding: int) -> torch.Tensor:
    """Per-sample random ``size``² crops of a batch zero-padded by ``padding`` on every side."""
    if padding:
        images = F.pad(images, [padding] * 4)
    n, c, h, w = images.shape
    device = images.device
    top = torch.randint(0, h - size + 1, (n,), device=device)
    left = torch.randint(0, w - size + 1, (n,), device=device)
    span = torch.arange(size, device=device)
    rows = (top[:, None] + span)[:, None, :, None]
    cols = (left[:, None] + span)[:, None, None, :]
    return images[torch.arange(n, device=device)[:, None, None, None],
                  torch.arange(c, device=device)[None, :, None, None], rows, cols]


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    h, w = images.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top:top + size, left:left + size]


def random_flip(images: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class Views:
    """Makes the views a method asks for from uint8 batches [N×C×H×W].
    crop_size: output side; padding: zero padding before the random crop (4 px for 32-px data);
    flip: whether the weak view flips horizontally; normalize: (mean, std) per channel or None for
    tensor conversion only (the baselines' ``plain`` training then matches their evaluation);
    channels_last: memory format of the output. ``plain`` and ``test`` are the same deterministic view."""

    def __init__(self, crop_size: int, padding: int = 0, flip: bool = True, normalize=None,
                 channels_last: bool = False):
        self.crop_size, self.padding, self.flip = crop_size, padding, flip
        self.normalize = normalize
        self._stats = {}  # (mean, std) tensors per device, made once instead of every batch
        self.channels_last = channels_last
        self.autoaugment = BatchAutoAugment()  # one CIFAR-10 sub-policy per image

    def __call__(self, images: torch.Tensor, kind: str) -> torch.Tensor:
        if kind in ("plain", "test"):
            return self._finish(center_crop(images, self.crop_size).float() / 255)
        x = random_crop(images, self.crop_size, self.padding)
        if self.flip:
            x = random_flip(x)
        x = x.float() / 255
        if kind == "strong":
            x = self.autoaugment(x)
        elif kind != "weak":
            raise ValueError(f"unknown view '{kind}'")
        return self._finish(x)

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            if x.device not in self._stats:
                self._stats[x.device] = [torch.tensor(v, device=x.device).view(1, -1, 1, 1) for v in self.normalize]
            mean, std = self._stats[x.device]
            x = (x - mean) / std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
