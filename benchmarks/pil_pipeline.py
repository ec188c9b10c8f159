"""The authors' kind of input pipeline, for comparison: PIL per image in DataLoader worker processes.

Each training image becomes a weak view (padded random crop + flip) and a strong view (the same
plus one AutoAugment CIFAR-10 sub-policy drawn per image), converted to normalised float tensors,
batched by the DataLoader and copied to the device. The policy table is kornia's (the same one the
fast path uses); the operations are PIL's, as in torchvision. Benchmark code only.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from kornia.augmentation.auto.autoaugment.autoaugment import cifar10_policy
from PIL import Image, ImageEnhance, ImageOps

BINS = 10


def _signed(value: float) -> float:
    return value if random.random() < 0.5 else -value


def apply_op(img: Image.Image, name: str, magnitude) -> Image.Image:
    """One AutoAugment operation with torchvision's magnitude ranges."""
    m = 0 if magnitude is None else magnitude
    w, h = img.size
    if name == "shear_x":
        return img.transform(img.size, Image.AFFINE, (1, _signed(0.3 * m / (BINS - 1)), 0, 0, 1, 0))
    if name == "shear_y":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, _signed(0.3 * m / (BINS - 1)), 1, 0))
    if name == "translate_x":
        return img.transform(img.size, Image.AFFINE, (1, 0, _signed(150 / 331 * w * m / (BINS - 1)), 0, 1, 0))
    if name == "translate_y":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, _signed(150 / 331 * h * m / (BINS - 1))))
    if name == "rotate":
        return img.rotate(_signed(30 * m / (BINS - 1)))
    if name in ("brightness", "color", "contrast", "sharpness"):
        enhancer = {"brightness": ImageEnhance.Brightness, "color": ImageEnhance.Color,
                    "contrast": ImageEnhance.Contrast, "sharpness": ImageEnhance.Sharpness}[name]
        return enhancer(img).enhance(1 + _signed(0.9 * m / (BINS - 1)))
    if name == "posterize":
        return ImageOps.posterize(img, int(8 - round(m / ((BINS - 1) / 4))))
    if name == "solarize":
        return ImageOps.solarize(img, int(256 - 256 * m / (BINS - 1)))
    if name == "auto_contrast":
        return ImageOps.autocontrast(img)
    if name == "equalize":
        return ImageOps.equalize(img)
    if name == "invert":
        return ImageOps.invert(img)
    raise ValueError(name)


class TwoViewDataset(torch.utils.data.Dataset):
    """(weak, strong, label, index) per image from uint8 arrays [N×C×H×W]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std, padding: int):
        self.images, self.labels, self.padding = images, labels, padding
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None]
        self.std = np.asarray(std, dtype=np.float32)[:, None, None]

    def __len__(self):
        return len(self.images)

    def _pil(self, i):
        array = self.images[i]
        return Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))

    def _weak(self, img):
        size = img.size[0]
        img = ImageOps.expand(img, border=self.padding, fill=0)
        top, left = random.randint(0, 2 * self.padding), random.randint(0, 2 * self.padding)
        img = img.crop((left, top, left + size, top + size))
        return img.transpose(Image.FLIP_LEFT_RIGHT) if random.random() < 0.5 else img

    def _tensor(self, img):
        array = np.asarray(img, dtype=np.float32) / 255
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy((array - self.mean) / self.std)

    def __getitem__(self, i):
        img = self._pil(i)
        weak = self._weak(img)
        strong = self._weak(img)
        for name, prob, magnitude in random.choice(cifar10_policy):
            if random.random() < prob:
                strong = apply_op(strong, name, magnitude)
        return self._tensor(weak), self._tensor(strong), int(self.labels[i]), i
