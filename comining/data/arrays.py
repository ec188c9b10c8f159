"""The in-memory form every array data source returns, and a helper to locate data folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch


@dataclass
class ArrayData:
    """A whole data set held in memory.

    Images are contiguous uint8 tensors of shape N×C×H×W (augmentation and scaling happen later, on
    the model's device); labels are int64 numpy arrays holding the true classes, indices into
    `classes`. Label noise is applied by the caller, never here.
    """

    name: str
    train_images: torch.Tensor
    train_labels: np.ndarray
    test_images: torch.Tensor
    test_labels: np.ndarray
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def find_data_dir(
    candidates: Iterable[str | Path | None], is_complete: Callable[[Path], bool]
) -> Path | None:
    """Return the first existing directory among `candidates` for which `is_complete` is true.

    `None` entries are skipped so callers can pass an optional user root directly. Returns None
    when no candidate qualifies; the caller turns that into a UserError naming where it looked.
    """
    for cand in candidates:
        if cand is None:
            continue
        path = Path(cand)
        if path.is_dir() and is_complete(path):
            return path
    return None


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 numpy array → contiguous uint8 torch tensor that owns its memory."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8).copy())
