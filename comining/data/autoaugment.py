"""AutoAugment's CIFAR-10 policy, one sub-policy drawn per image, applied to a whole batch at once.

kornia's ``AutoAugment`` draws one sub-policy per call, so per-image policies would mean one call
per image (or per small group), each with its Python and kernel-launch overhead, and a host read of
the draw. Here every image draws its own sub-policy on the device; each slot of the sub-policies is
then applied as one batched pass per operation type, with per-image magnitudes, and ``torch.where``
keeps the images that did not draw that operation: no host read, which would stall a GPU's queue.
On the CPU, where a host read costs nothing, each operation is instead computed on just the images
that drew it, about a tenth of the work (``SUBSET_DEVICES``); both give the same images, bit for
bit, since every operation acts on each image alone (sharpness, whose rounding depends on the batch,
is computed on the whole batch in both). The image operations are kornia's where it has
a batched one (sharpness, equalize, affine warps); the policy table is kornia's. Magnitude ranges
follow the AutoAugment paper (as torchvision implements it); colour factors are 1 ± magnitude.
"""

from __future__ import annotations

import math

import torch
from kornia.augmentation.auto.autoaugment.autoaugment import cifar10_policy
from kornia.enhance import equalize, sharpness
from kornia.geometry.transform import warp_affine

BINS = 10
SUBSET_DEVICES = {"cpu"}  # device types on which each operation is computed on its images only
# kornia's sharpness blurs by a convolution whose rounding depends on the batch's size, so it is
# computed on the whole batch everywhere, and every device path gives the same images, bit for bit.
BATCH_DEPENDENT = {"sharpness"}
GEOMETRIC = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate")
OPERATIONS = GEOMETRIC + ("brightness", "color", "contrast", "sharpness", "posterize", "solarize",
                          "auto_contrast", "equalize", "invert")


def grey(x: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images (ITU-R 601, as PIL), or the image itself when it has one channel."""
    if x.shape[1] == 1:
        return x
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def blend(x: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's ImageEnhance: degenerate + factor·(x − degenerate), clipped to [0, 1]."""
    return (degenerate + factor.view(-1, 1, 1, 1) * (x - degenerate)).clamp(0, 1)


def affine_matrices(op: str, value: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[N×2×3] forward affine maps about the image centre for one geometric operation."""
    n = value.shape[0]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    m = torch.zeros(n, 2, 3, device=value.device)
    m[:, 0, 0] = m[:, 1, 1] = 1
    if op == "shear_x":
        m[:, 0, 1], m[:, 0, 2] = value, -value * cy
    elif op == "shear_y":
        m[:, 1, 0], m[:, 1, 2] = value, -value * cx
    elif op == "translate_x":
        m[:, 0, 2] = value
    elif op == "translate_y":
        m[:, 1, 2] = value
    else:  # rotate, degrees
        angle = value * math.pi / 180
        cos, sin = torch.cos(angle), torch.sin(angle)
        m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = cos, -sin, cx - cos * cx + sin * cy
        m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = sin, cos, cy - sin * cx - cos * cy
    return m


class BatchAutoAugment:
    """Callable on float images [N×C×H×W] in [0, 1] (C = 1 or 3); returns the augmented batch.
    ``policy`` is a list of sub-policies, each a list of (operation, probability, magnitude bin).
    Randomness comes from torch's generator of the batch's device."""

    def __init__(self, policy=cifar10_policy):
        self.policy = policy
        self.slots = max(len(sub) for sub in policy)
        # [S × slots] tables of operation index (-1: none), probability and magnitude bin.
        op = torch.full((len(policy), self.slots), -1, dtype=torch.long)
        prob = torch.zeros(len(policy), self.slots)
        magnitude = torch.zeros(len(policy), self.slots, dtype=torch.long)
        for s, sub in enumerate(policy):
            for j, (name, p, m) in enumerate(sub):
                op[s, j], prob[s, j], magnitude[s, j] = OPERATIONS.index(name), p, m or 0
        self.tables = {"op": op, "prob": prob, "magnitude": magnitude}
        # Operations that occur in each slot: the others need not be computed for that slot.
        self.present = [{name for sub in policy if j < len(sub) for name in [sub[j][0]]} for j in range(self.slots)]
        self._on = {}

    def _tables(self, device):
        if device not in self._on:
            self._on[device] = {k: v.to(device) for k, v in self.tables.items()}
        return self._on[device]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, device = x.shape[0], x.device
        tables = self._tables(device)
        choice = torch.randint(len(self.policy), (n,), device=device)
        for slot in range(self.slots):
            op = tables["op"][choice, slot]
            applies = torch.rand(n, device=device) < tables["prob"][choice, slot]
            op = torch.where(applies, op, -1)
            level = tables["magnitude"][choice, slot].float() / (BINS - 1)  # 0 … 1
            sign = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
            x = self.apply_slot(x, op, level, sign, self.present[slot])
        return x

    def apply_slot(self, x: torch.Tensor, op: torch.Tensor, level: torch.Tensor, sign: torch.Tensor,
                   present=OPERATIONS):
        """Apply to every image the one operation ``op`` it drew (-1: none) at ``level`` in [0, 1].
        Only the operations in ``present`` are computed (any other must not occur in ``op``)."""
        geometric = [name for name in GEOMETRIC if name in present]
        others = [name for name in OPERATIONS if name in present and name not in GEOMETRIC]
        if x.device.type in SUBSET_DEVICES:
            x = x.clone()
            codes = torch.tensor([OPERATIONS.index(name) for name in geometric], dtype=op.dtype)
            rows = torch.isin(op, codes).nonzero().flatten()
            if len(rows):
                x[rows] = self.warp(x[rows], op[rows], level[rows], sign[rows], geometric).to(x.dtype)
            for name in others:
                rows = (op == OPERATIONS.index(name)).nonzero().flatten()
                if not len(rows):
                    continue
                if name in BATCH_DEPENDENT:
                    x[rows] = self.operation(name, x, level, sign)[rows].to(x.dtype)
                else:
                    x[rows] = self.operation(name, x[rows], level[rows], sign[rows]).to(x.dtype)
            return x
        chosen = {name: (op == OPERATIONS.index(name)).view(-1, 1, 1, 1) for name in present}
        if geometric:  # all geometric operations of the slot in one warp: each image gets its own matrix
            moved = torch.stack([chosen[name] for name in geometric]).any(0)
            x = torch.where(moved, self.warp(x, op, level, sign, geometric), x)
        for name in others:
            x = torch.where(chosen[name], self.operation(name, x, level, sign), x)
        return x

    @staticmethod
    def warp(x: torch.Tensor, op: torch.Tensor, level: torch.Tensor, sign: torch.Tensor, geometric) -> torch.Tensor:
        """Each image warped by the geometric operation it drew (the identity where it drew none)."""
        height, width = x.shape[-2:]
        signed = {"shear_x": 0.3, "shear_y": 0.3, "translate_x": 150 / 331 * width,
                  "translate_y": 150 / 331 * height, "rotate": 30.0}
        matrix = torch.eye(2, 3, device=x.device).expand(x.shape[0], 2, 3)
        for name in geometric:
            m = affine_matrices(name, sign * level * signed[name], height, width)
            matrix = torch.where((op == OPERATIONS.index(name)).view(-1, 1, 1), m, matrix)
        return warp_affine(x, matrix, (height, width), padding_mode="zeros")

    def operation(self, name: str, x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        """The colour or tone operation ``name`` applied to every image of ``x``, per-image ``level``
        in [0, 1] and ``sign`` (±1)."""
        factor = 1 + sign * level * 0.9
        if name == "brightness":
            return (x * factor.view(-1, 1, 1, 1)).clamp(0, 1)
        if name == "color":
            return blend(x, grey(x).expand_as(x), factor)
        if name == "contrast":
            return blend(x, grey(x).mean((1, 2, 3), keepdim=True).expand_as(x), factor)
        if name == "sharpness":
            return sharpness(x, factor).clamp(0, 1)
        if name == "posterize":
            return self.posterize(x, 8 - torch.round(level * (BINS - 1) / ((BINS - 1) / 4)).long())
        if name == "solarize":  # above 1 − level: 255 … 0 over the bins
            return torch.where(x >= (1 - level).view(-1, 1, 1, 1), 1 - x, x)
        if name == "auto_contrast":
            return self.auto_contrast(x)
        if name == "equalize":
            return equalize(x)
        return 1 - x  # invert

    @staticmethod
    def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """Keep the top ``bits`` bits of each 8-bit value, per image."""
        keep = (256 - 2 ** (8 - bits)).view(-1, 1, 1, 1)
        return torch.bitwise_and((x * 255).round().long(), keep).float() / 255

    @staticmethod
    def auto_contrast(x: torch.Tensor) -> torch.Tensor:
        """Stretch each channel of each image to [0, 1]; flat channels stay as they are."""
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        return torch.where(hi > lo, (x - lo) / (hi - lo).clamp(min=1e-6), x)
