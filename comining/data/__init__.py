"""Data sources. `load_arrays(name, root)` returns an in-memory ArrayData for the named set."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import UserError
from . import cifar, digits, fashion_mnist
from .arrays import ArrayData

ARRAY_SOURCES: dict[str, Callable[..., ArrayData]] = {
    "digits": digits.load,
    "fashion-mnist": fashion_mnist.load,
    "cifar10": cifar.load_cifar10,
    "cifar100": cifar.load_cifar100,
}


def load_arrays(name: str, root: str | Path | None = None) -> ArrayData:
    """Load the in-memory data set `name` (a key of ARRAY_SOURCES) from `root` (None: its default).
    Raises UserError for an unknown name, listing the known ones."""
    try:
        loader = ARRAY_SOURCES[name]
    except KeyError:
        known = ", ".join(sorted(ARRAY_SOURCES))
        raise UserError(f"unknown in-memory data set '{name}'; choose one of: {known}") from None
    return loader(root)


__all__ = ["ARRAY_SOURCES", "ArrayData", "UserError", "load_arrays"]
