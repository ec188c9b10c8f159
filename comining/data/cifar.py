"""CIFAR-10 and CIFAR-100 from the python-pickle layout the authors distribute.

Each batch is a pickled dict whose `data` is an N×3072 uint8 array (R plane, G plane, B plane,
each 32×32 row-major). Files are read with the restricted unpickler in safe_pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .arrays import ArrayData, to_tensor
from .safe_pickle import load_pickle

DEFAULT_ROOT = "datasets"


def _get(d: Any, key: str, path: Path) -> Any:
    # The original files were written by Python 2, so keys arrive as bytes; re-pickled copies have str.
    if isinstance(d, dict):
        for k in (key.encode(), key):
            if k in d:
                return d[k]
    raise UserError(f"{path} has no '{key}' entry; it is not a CIFAR python batch, re-download the data set")


def _locate(root: str | Path | None, name: str, folder: str, files: list[str], title: str, shown: str) -> Path:
    """Return the CIFAR folder under `root`: `root/folder`, the authors' code's `root/name/folder`, or `root/name`
    or `root` itself when it already holds the batches. A folder named `folder` must be complete."""
    base = Path(DEFAULT_ROOT if root is None else root)
    for cand in (base / folder, base / name / folder, base / name, base):
        if cand.is_dir() and (cand.name == folder or any((cand / f).exists() for f in files)):
            missing = [f for f in files if not (cand / f).is_file()]
            if missing:
                raise UserError(f"{title} folder {cand} is incomplete: missing {', '.join(missing)}; "
                                f"unpack the python version of {title} there again")
            return cand
    raise UserError(f"{title} not found: expected {base / name / folder}/{shown} (or {base / folder}/); download "
                    f"the python version of {title} and unpack it there, or pass --data-root")


def _batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = load_pickle(path)
    data = np.asarray(_get(d, "data", path))
    labels = np.asarray(_get(d, label_key, path))
    in_range = data.dtype == np.uint8 or (
        data.dtype.kind in "ui" and (data.size == 0 or (data.min() >= 0 and data.max() <= 255)))
    if data.ndim != 2 or data.shape[1] != 3072 or not in_range:
        raise UserError(f"{path}: 'data' should be N×3072 uint8 pixel rows but is {data.dtype} {data.shape}; "
                        "re-download the data set")
    if labels.ndim != 1 or len(labels) != len(data) or labels.dtype.kind not in "ui":
        raise UserError(f"{path}: '{label_key}' should hold {len(data)} integer labels, one per image, but has "
                        f"shape {labels.shape}; re-download the data set")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path}: label {int(labels.max())} is outside 0..{num_classes - 1}; re-download the data set")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _names(path: Path, key: str) -> list[str]:
    names = _get(load_pickle(path), key, path)
    if not isinstance(names, (list, tuple)) or not names:
        raise UserError(f"{path}: '{key}' should be a list of class names; re-download the data set")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def _load(name, title, root, folder, train_files, test_file, meta_file, label_key, names_key, shown):
    path = _locate(root, name, folder, train_files + [test_file, meta_file], title, shown)
    classes = _names(path / meta_file, names_key)
    parts = [_batch(path / f, label_key, len(classes)) for f in train_files]
    x_te, y_te = _batch(path / test_file, label_key, len(classes))
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return ArrayData(name, to_tensor(x_tr), y_tr, to_tensor(x_te), y_te, classes)


def load_cifar10(root: str | Path | None = None) -> ArrayData:
    """Load CIFAR-10 (50000 train / 10000 test, N×3×32×32 uint8, 10 classes).
    `root` is the folder containing `cifar-10-batches-py` or `cifar10/cifar-10-batches-py` (the
    seed's layout; default `datasets/`) or that folder itself; it must hold data_batch_1..5,
    test_batch and batches.meta. Raises UserError when the folder is missing or incomplete, or a
    file is malformed or not a plain-data pickle."""
    train = [f"data_batch_{i}" for i in range(1, 6)]
    return _load("cifar10", "CIFAR-10", root, "cifar-10-batches-py", train, "test_batch",
                 "batches.meta", "labels", "label_names", "data_batch_1..5 and test_batch")


def load_cifar100(root: str | Path | None = None) -> ArrayData:
    """Load CIFAR-100 with its fine labels (50000 train / 10000 test, N×3×32×32 uint8, 100 classes).
    `root` is the folder containing `cifar-100-python` or `cifar100/cifar-100-python` (default
    `datasets/`) or that folder itself; it must hold train, test and meta. Raises UserError as load_cifar10 does.
    """
    return _load("cifar100", "CIFAR-100", root, "cifar-100-python", ["train"], "test", "meta",
                 "fine_labels", "fine_label_names", "train, test and meta")
