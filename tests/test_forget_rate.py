"""comining.forget_rate: the target, the ramps, when an auto rate is estimated, resume and the prior."""

import numpy as np
import pytest
from torch import nn

from comining.config import Config
from comining.forget_rate import ForgetRate, estimated_noise_rate, target_rate
from comining.methods import METHODS
from comining.models import build_model


def schedule(name, **settings):
    """The ForgetRate of a method ``name`` built over stub networks with these settings."""
    cfg = Config(method=name, **settings)
    make = (lambda: build_model("small", 1, 10, 8)) if name == "comining" else (lambda: nn.Linear(2, 10))
    return ForgetRate(cfg, METHODS[name](cfg, 10, make, selections=None))


def test_the_target_is_the_given_rate_else_the_protocols_else_estimated():
    assert target_rate(Config(closed_rate=0.2, open_ratio=0.2)) == pytest.approx(0.36)  # 0.2 + 0.2·0.8
    assert target_rate(Config(closed_rate=0.2, forget_rate=0.3)) == 0.3
    assert target_rate(Config(forget_rate="auto")) is None
    assert target_rate(Config(dataset="folder", closed_rate=0.0)) is None  # an image set: no protocol
    assert target_rate(Config(labels="x.csv")) is None  # a label file's noise is unknown too


def test_baseline_rate_ramps_over_num_gradual_from_the_first_epoch():
    # Co-teaching's schedule: np.linspace(0, r, num_gradual) over the first epochs, then r.
    rate = schedule("standard", closed_rate=0.5, num_gradual=10)
    for epoch, expected in enumerate(np.linspace(0, 0.5, 10)):
        assert rate.at(epoch) == pytest.approx(expected)
    assert rate.at(1) == pytest.approx(0.5 / 9)
    assert rate.at(10) == rate.at(150) == pytest.approx(0.5)
    assert schedule("standard", closed_rate=0.5, num_gradual=0).at(0) == pytest.approx(0.5)
    assert schedule("decoupling", closed_rate=0.5).at(20) == 0.0  # it selects by disagreement


def test_comining_rate_at_once_as_the_paper_or_ramped_in_after_warm_up():
    # cifar80no sym20: r = 0.36, constant from the first epoch (the warm-up selects nothing) ...
    rate = schedule("comining", closed_rate=0.2, open_ratio=0.2, forget_ramp=False)
    assert [rate.at(e) for e in (0, 1, 9, 10, 199)] == pytest.approx([0.36] * 5)
    # ... or ramped in after the 10 warm-up epochs over 10 more: 0.036 in epoch 10, all of it from 19.
    rate = schedule("comining", closed_rate=0.2, open_ratio=0.2)
    assert [rate.at(e) for e in (9, 10, 14, 19, 199)] == pytest.approx([0.0, 0.036, 0.18, 0.36, 0.36])
    short = schedule("comining", forget_rate=0.4, warmup_epochs=2, num_gradual=4)
    assert [round(short.at(e), 6) for e in (1, 2, 3, 5, 9)] == [0.0, 0.1, 0.2, 0.4, 0.4]


def test_an_auto_rate_is_zero_until_estimated_then_estimated_when_the_method_says():
    rate = schedule("comining", forget_rate="auto", warmup_epochs=2, num_gradual=4)
    assert rate.target is None and rate.at(5) == 0.0
    assert [rate.estimate_due(n) for n in (1, 2, 3)] == [False, True, True]  # a resumed run catches up
    rate.target = 0.3
    assert [rate.estimate_due(n) for n in (3, 4, 5)] == [False, True, False]  # once more, after 2 × warm-up
    baseline = schedule("coteaching", forget_rate="auto")
    assert baseline.estimate_due(1)
    baseline.target = 0.3
    assert not any(baseline.estimate_due(n) for n in range(1, 20))  # a baseline's first estimate holds
    assert not schedule("comining", closed_rate=0.4).estimate_due(10)  # a known rate is never estimated


def test_an_estimated_rate_survives_resume_and_is_the_verdicts_prior():
    history = [{"epoch": 1}, {"epoch": 2, "estimated_noise_rate": 0.31}, {"epoch": 3}, {"epoch": 4, "unused_noise_rate": 0.1}]
    assert estimated_noise_rate(history) == 0.31
    rate = schedule("comining", forget_rate="auto")
    rate.restore(history)
    assert rate.target == 0.31 and rate.prior(None, None) == 0.31
    # Too short a run to have estimated: the prior is the mixture's reading of the final network.
    fresh = schedule("comining", forget_rate="auto")
    labels = np.arange(400) % 4
    probs = np.full((400, 4), 0.02)
    wrong = np.arange(400) % 5 == 0  # a fifth sure of another class
    probs[np.arange(400), np.where(wrong, (labels + 1) % 4, labels)] = 0.94
    assert fresh.prior(probs, labels) == pytest.approx(0.2, abs=0.02)
