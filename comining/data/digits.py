"""scikit-learn's bundled 8×8 handwritten digits: the no-download default for demos and tests."""

from __future__ import annotations

import numpy as np

from .arrays import ArrayData, to_tensor


def load(root: str | None = None) -> ArrayData:
    """Load the digits as an ArrayData (1437 train / 360 test, N×1×8×8 uint8, 10 classes).
    `root` is accepted for a uniform loader signature and ignored: the data ships with
    scikit-learn. Pixels 0..16 are scaled to 0..255 (round half up of v*255/16). The split is
    fixed (stratified, 20% test, random_state=0) so every run sees the same test set."""
    # Imported here so that importing comining.data does not pay for scikit-learn.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    pixels = np.floor(bunch.images.astype(np.float64) * 255.0 / 16.0 + 0.5).astype(np.uint8)
    images = pixels[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(images, labels, test_size=0.2, stratify=labels, random_state=0)
    return ArrayData("digits", to_tensor(x_tr), np.ascontiguousarray(y_tr, dtype=np.int64), to_tensor(x_te),
                     np.ascontiguousarray(y_te, dtype=np.int64), [str(i) for i in range(10)])
