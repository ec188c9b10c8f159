"""comining.engine's pieces: the learning-rate schedule."""
import math

import pytest

from comining.config import Config
from comining.engine import schedule


# --- learning-rate schedule -------------------------------------------------------------------

def test_linear_schedule():
    # Paper: 200 epochs, decay from 80: lr·(200-e)/120 and β1 0.1 from epoch 80 on.
    cfg = Config(lr=1e-3, epochs=200, epoch_decay_start=80, schedule="linear")
    assert schedule(cfg, 0) == (1e-3, 0.9)
    assert schedule(cfg, 79) == (1e-3, 0.9)
    for epoch, lr in [(80, 1e-3), (140, 5e-4), (170, 2.5e-4), (199, 1e-3 / 120)]:
        got_lr, beta1 = schedule(cfg, epoch)
        assert got_lr == pytest.approx(lr) and beta1 == 0.1


def test_cosine_schedule():
    # Web: 60 epochs, warm-up 10 at constant lr, then ½·lr·(1 + cos(π·(e-10)/50)).
    cfg = Config(lr=0.01, epochs=60, warmup_epochs=10, schedule="cosine")
    assert schedule(cfg, 0)[0] == schedule(cfg, 9)[0] == 0.01
    assert schedule(cfg, 10)[0] == pytest.approx(0.01)
    assert schedule(cfg, 35)[0] == pytest.approx(0.005)  # half-way: cos(π/2) = 0
    assert schedule(cfg, 20)[0] == pytest.approx(0.005 * (1 + math.cos(math.pi * 0.2)))
    assert schedule(cfg, 59)[0] == pytest.approx(0.005 * (1 + math.cos(math.pi * 49 / 50)))
