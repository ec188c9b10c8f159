"""The study's alternative noise-rate estimators (experiments/noise_rate_estimators.py) on worked inputs."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "noise_rate_estimators.py"


@pytest.fixture(scope="module")
def estimators():
    spec = importlib.util.spec_from_file_location("noise_rate_estimators", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_anchors_undo_the_warmup_smoothing(estimators):
    # Three classes: the warm-up smooths with ε 0.5, so a perfect fit of label j gives p(j) = T·0.25 + 0.25.
    # Every sample labelled j has the same p(j), so the 90th percentile is that value: T = 1, 0.8, 0.4
    # for 10 samples each, and the noise rate is 1 − (10 + 8 + 4) / 30.
    given = np.repeat([0, 1, 2], 10)
    probs = np.full((30, 3), 0.1)
    for label, p in enumerate((0.5, 0.45, 0.35)):
        probs[given == label, label] = p
    assert estimators.anchors(probs, given) == pytest.approx(1 - 22 / 30)
