"""The in-memory form every array data source returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ArrayData:
    """A whole data set held in memory.
    Images are contiguous uint8 tensors of shape N×C×H×W (augmentation and scaling happen later, on
    the model's device); labels are int64 numpy arrays holding the true classes, indices into
    `classes`. Label noise is applied by the caller, never here."""

    name: str
    train_images: torch.Tensor
    train_labels: np.ndarray
    test_images: torch.Tensor
    test_labels: np.ndarray
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 numpy array → contiguous uint8 torch tensor that owns its memory."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8).copy())
