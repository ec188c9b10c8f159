"""Accuracy statistics: the paper's reported number."""

from __future__ import annotations

import numpy as np


def last_k_stats(accuracies, k: int = 10) -> tuple[float, float]:
    """Mean and (population) standard deviation of the last ``k`` values: the paper's reported number."""
    tail = np.asarray(accuracies[-k:], dtype=float)
    return float(tail.mean()), float(tail.std())
