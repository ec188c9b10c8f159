"""comining.forget_rate: the target, the ramps, when an auto rate is estimated, resume and the prior;
then --forget-rate auto in short runs: estimated after warm-up, once more, stored, kept on resume."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from comining.config import Config, resolve
from comining.forget_rate import ForgetRate, estimated_noise_rate, target_rate
from comining.noise_rate import INTERVAL_MARGIN, MARGIN_BELOW_JOINT, rate_interval
from comining.methods import METHODS
from comining.models import build_model
from test_noise_rate import one_loss_population, two_loss_populations


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
    rate = schedule("coteaching", closed_rate=0.5, num_gradual=10)
    for epoch, expected in enumerate(np.linspace(0, 0.5, 10)):
        assert rate.at(epoch) == pytest.approx(expected)
    assert rate.at(1) == pytest.approx(0.5 / 9)
    assert rate.at(10) == rate.at(150) == pytest.approx(0.5)
    assert schedule("coteaching", closed_rate=0.5, num_gradual=0).at(0) == pytest.approx(0.5)
    assert schedule("decoupling", closed_rate=0.5).at(20) == 0.0  # it selects by disagreement
    assert schedule("standard", closed_rate=0.5).at(20) == 0.0  # it sets nothing aside


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


# --- --forget-rate auto in a run ----------------------------------------------------------------

def test_a_first_estimate_that_does_not_separate_is_counted_by_the_confident_joint_and_kept(tmp_path, monkeypatch):
    from comining import engine, evidence
    calls = []

    def losses(probs, labels):  # the warm-up's are one population; the second split clearly, fewer wrong
        calls.append(1)
        rng = np.random.default_rng(1)
        return one_loss_population(rng, len(labels)) if len(calls) == 1 else two_loss_populations(rng, len(labels), 0.2)

    monkeypatch.setattr(evidence, "given_label_losses", losses)
    cfg = resolve({"train_subset": 60, "epochs": 3, "warmup_epochs": 1, "epoch_decay_start": 1, "batch_size": 20,
                   "forget_rate": "auto", "quiet": True, "closed_rate": 0.0})
    trainer = engine.Trainer(cfg, tmp_path / "run")
    labels = trainer.data.labels.cpu().numpy()
    classes = trainer.method.num_classes
    # A network sure that every third sample belongs to the next class: each sample reaches the
    # threshold of the class it is put in and of no other, so the confident joint counts a third.
    flipped = np.arange(len(labels)) % 3 == 0
    probs = np.full((len(labels), classes), 0.1 / (classes - 1))
    probs[np.arange(len(labels)), np.where(flipped, (labels + 1) % classes, labels)] = 0.9
    monkeypatch.setattr(evidence, "plain_probabilities", lambda *a: torch.as_tensor(probs))
    results = trainer.fit()
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["noise_separation"] < 2 and "mixture_noise_rate" in first
    # (the run's rate is the second estimate's cap, the share the network disagrees with: the same third)
    assert results["estimated_noise_rate"] == pytest.approx(first["confident_joint_noise_rate"])
    assert first["confident_joint_noise_rate"] == pytest.approx(flipped.mean())
    assert first["anchor_noise_rate"] < first["confident_joint_noise_rate"]  # sure of every label it kept
    # A first estimate made without a clear split is not lowered: the second (after epoch 2), clear
    # but lower, is recorded and not used.
    assert trainer.method.second_estimate_after == 2 and len(calls) == 2
    second = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[1])
    assert second["noise_separation"] >= 2 and second["unused_noise_rate"] == pytest.approx(0.2, abs=0.03)


def test_auto_forget_rate_is_estimated_and_stored(tmp_path):
    from comining import engine
    cfg = resolve({"train_subset": 500, "epochs": 3, "warmup_epochs": 2, "epoch_decay_start": 2,
                   "forget_rate": "auto", "quiet": True, "closed_rate": 0.4})
    trainer = engine.Trainer(cfg, tmp_path / "run")
    results = trainer.fit()
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [("estimated_noise_rate" in r) for r in history] == [False, True, False]
    assert results["estimated_noise_rate"] == history[1]["estimated_noise_rate"] == results["forget_rate"]
    # How sure it is: the span of the estimate, the network's disagreement with the labels and the
    # confident joint, plus the margins.
    low, high = results["estimated_noise_rate_interval"]
    readings = [results["estimated_noise_rate"], history[1]["disagreement_share"], history[1]["confident_joint_noise_rate"]]
    assert (low, high) == pytest.approx((max(0, min(readings) - MARGIN_BELOW_JOINT),
                                         min(1, max(readings) + INTERVAL_MARGIN)))
    assert json.loads((tmp_path / "run" / "results.json").read_text())["estimated_noise_rate_interval"] == [low, high]
    # and the readings it spans, for the summary to name where the interval is wide
    assert results["noise_rate_readings"] == dict(zip(("rate", "disagreement", "confident_joint"), readings))
    # The default recipe ramps the estimate in: the first selecting epoch forgets 1/num_gradual of it.
    assert history[2]["forget_rate"] == pytest.approx(results["estimated_noise_rate"] / cfg.num_gradual)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["recipe"] == "default"
    # A resumed run keeps the estimate instead of training with no forget rate.
    resumed = engine.Trainer.resume(tmp_path / "run")
    assert resumed.forget.target == results["estimated_noise_rate"]


def probabilities_with_disagreements(labels, classes, flips: bool):
    """[N×C] probabilities that agree with every third label and put the other samples in another
    class: the next one (pair flips: concentration 1), or each label's in turn over the C − 1 others
    (an even spread: concentration near 0)."""
    n = len(labels)
    turn = np.zeros(n, dtype=np.int64)  # the how-manieth disagreeing sample of its label
    for j in range(classes):
        mine = np.flatnonzero((labels == j) & (np.arange(n) % 3 != 0))
        turn[mine] = np.arange(len(mine))
    step = np.ones(n, dtype=np.int64) if flips else 1 + turn % (classes - 1)
    predicted = np.where(np.arange(n) % 3 == 0, labels, (labels + step) % classes)
    probs = np.full((n, classes), 0.1 / (classes - 1))
    probs[np.arange(n), predicted] = 0.9
    return torch.as_tensor(probs)


@pytest.mark.parametrize("second_share, flips, used", [(0.2, True, True), (0.2, False, False), (0.45, False, True),
                                                     (None, True, True)])
def test_auto_re_estimates_once_replacing_under_class_dependent_noise_and_only_raising_otherwise(
        tmp_path, monkeypatch, second_share, flips, used):
    """The first estimate is 0.3, from a clear split. second_share None: the second losses are one
    population, so the wrong labels are counted without a split (the confident joint: the two thirds
    the network puts outside their label), and that higher count replaces the first. flips: the
    labels' disagreements point to one class each (pair flips), and a clear second split replaces the
    first; spread over the classes, only where it is higher."""
    from comining import engine, evidence
    rng = np.random.default_rng(0)
    calls = []

    def losses(probs, labels):
        calls.append(len(calls))
        if len(calls) == 1:
            return two_loss_populations(rng, len(labels), 0.3)
        if second_share is None:
            return one_loss_population(rng, len(labels))
        return two_loss_populations(rng, len(labels), second_share)

    monkeypatch.setattr(evidence, "given_label_losses", losses)
    cfg = resolve({"train_subset": 400, "epochs": 5, "warmup_epochs": 2, "epoch_decay_start": 2,
                   "forget_rate": "auto", "quiet": True, "closed_rate": 0.4,
                   "forget_ramp": False})  # so an epoch's forget rate is the estimate in use
    trainer = engine.Trainer(cfg, tmp_path / "run")
    probs = probabilities_with_disagreements(trainer.data.labels.cpu().numpy(), trainer.method.num_classes, flips)
    monkeypatch.setattr(evidence, "plain_probabilities", lambda *a: probs)
    assert trainer.method.second_estimate_after == 4
    results = trainer.fit()
    assert calls == [0, 1]  # after warm-up (epoch 2) and once more (epoch 4), not every epoch
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert history[1]["estimated_noise_rate"] == pytest.approx(0.3, abs=0.03)
    assert "disagreement_concentration" not in history[1]  # asked of the second estimate only
    assert history[3]["disagreement_concentration"] == pytest.approx(1.0 if flips else 0.0, abs=0.1)
    assert (history[3]["noise_separation"] >= 2) == (second_share is not None)
    counted = 2 / 3 if second_share is None else second_share
    expected = counted if used else history[1]["estimated_noise_rate"]
    if used:
        assert history[3]["estimated_noise_rate"] == pytest.approx(counted, abs=0.03)
        assert ("mixture_noise_rate" in history[3]) == (second_share is None)
    else:  # recorded, not used
        assert "estimated_noise_rate" not in history[3] and "unused_noise_rate" in history[3]
    assert history[4]["forget_rate"] == pytest.approx(expected, abs=0.03 if used else 0)
    # The interval is the one around the rate in use, read with the second estimate's disagreement and
    # confident joint: every sample is put in its class at 0.9, above every class's threshold (its own
    # samples' mean, about 0.31), so both count the two thirds put outside their label.
    assert history[3]["disagreement_share"] == pytest.approx(2 / 3, abs=0.01)
    assert history[3]["confident_joint_noise_rate"] == pytest.approx(2 / 3, abs=0.01)
    assert history[3]["noise_rate_interval"] == pytest.approx(list(rate_interval(
        history[4]["forget_rate"], history[3]["disagreement_share"], history[3]["confident_joint_noise_rate"])))
    assert results["estimated_noise_rate_interval"] == history[3]["noise_rate_interval"]
    assert results["estimated_noise_rate"] == results["forget_rate"] == history[4]["forget_rate"]
    # Resumed after the second estimate, the run keeps the rate in use.
    assert engine.Trainer.resume(tmp_path / "run").forget.target == results["forget_rate"]


def test_a_baseline_estimates_once_after_its_first_epoch(monkeypatch):
    from comining import engine, evidence
    calls = []
    monkeypatch.setattr(evidence, "given_label_losses",
                        lambda probs, labels: calls.append(1) or np.random.default_rng(0).gamma(2.0, 0.1, len(labels)))
    cfg = resolve({"method": "coteaching", "train_subset": 200, "epochs": 4, "warmup_epochs": 1, "quiet": True,
                   "forget_rate": "auto", "closed_rate": 0.4})
    trainer = engine.Trainer(cfg)
    trainer.fit()
    assert len(calls) == 1
    # One epoch in, a baseline's network may be near chance: the confident joint is not counted, nor
    # read into the interval.
    assert trainer.history[0]["noise_separation"] < 2 and "confident_joint_noise_rate" not in trainer.history[0]


def test_a_second_estimate_that_does_not_separate_is_counted_without_a_split_and_may_raise_the_rate():
    # First estimate 0.20 from a clear split. At the second the losses are one population, and the
    # network is sure (0.9) that every third sample belongs to the next class: the confident joint
    # counts that third (each sample reaches only its predicted class's threshold), the anchors none
    # (each label's 90th percentile of p(label) is 0.9). The count, 1/3, replaces the unsplit mixture
    # and raises the rate, as the first estimate's count would; the disagreement is the same third, so
    # the cap does not bind.
    forget = schedule("comining", forget_rate="auto")
    labels = np.arange(300) % 10
    flipped = np.arange(300) % 3 == 0
    probs = np.full((300, 10), 0.1 / 9)
    probs[np.arange(300), np.where(flipped, (labels + 1) % 10, labels)] = 0.9
    forget.target, record = 0.2, {}
    estimate = forget.read(one_loss_population(np.random.default_rng(2), 300), probs, labels)
    assert not estimate.separated and estimate.mixture_rate is not None
    assert estimate.rate == estimate.confident_joint_rate == pytest.approx(1 / 3) and estimate.anchor_rate == 0
    forget.adopt(estimate, [{"epoch": 5, "estimated_noise_rate": 0.2, "noise_separation": 2.5}], record)
    assert forget.target == pytest.approx(1 / 3) and record["estimated_noise_rate"] == pytest.approx(1 / 3)
    assert record["mixture_noise_rate"] == estimate.mixture_rate and "unused_noise_rate" not in record


def test_a_given_forget_rate_is_never_estimated(tmp_path, monkeypatch):
    from comining import engine, evidence
    monkeypatch.setattr(evidence, "given_label_losses", lambda *a: pytest.fail("estimated a given rate"))
    cfg = resolve({"train_subset": 200, "epochs": 5, "warmup_epochs": 2, "quiet": True, "closed_rate": 0.4})
    assert engine.Trainer(cfg).fit()["forget_rate"] == pytest.approx(0.4)


@pytest.mark.parametrize("interval, advised", [([0.25, 0.37], False), ([0.12, 0.47], True)])
def test_the_summary_shows_the_interval_and_advises_a_rate_only_where_it_is_wide(capsys, interval, advised):
    from comining.summary import print_summary
    cfg = resolve({"forget_rate": "auto", "closed_rate": 0.4})
    results = {"last10_mean": 90.0, "last10_std": 1.0, "epochs": 10, "best_acc": 91.0, "best_epoch": 9,
               "precision": "fp32", "device": "cpu", "seconds": 5.0, "train_size": 100,
               "noise": {"wrong_labels": 0.4}, "estimated_noise_rate": 0.31, "estimated_noise_rate_interval": interval,
               "n_clean": 70, "n_relabelled": 10, "n_discarded": 20}
    print_summary(cfg, results, "runs/a")
    out = capsys.readouterr().out
    assert f"31.0% (likely {interval[0]:.0%} to {interval[1]:.0%})" in out
    assert ("pass --forget-rate RATE" in out) == advised
    assert ("comining export runs/a --share RATE --out labels.csv" in out) == advised
    assert ("find_label_issues(run, share=RATE)" in out) == advised


def test_a_second_estimate_is_capped_at_the_share_the_network_disagrees_with():
    # First estimate 0.40 from a clear split; the second reads a lower mixture (0.30) under noise
    # spread over the classes, so the first stands (noise_rate.why_first_holds) at 0.40. Where the
    # network puts only 0.18 of the labels outside their class, the rate is capped there, and the
    # interval still spans the uncapped 0.40 and the 0.18 (± the margin).
    from comining.noise_rate import NoiseEstimate
    history = [{"epoch": 5, "estimated_noise_rate": 0.4, "noise_separation": 2.5}]

    def second(disagreement, rate=0.3, joint=None):
        return NoiseEstimate(rate, True, 2.5, 0.1, 2.0, concentration=0.1, disagreement=disagreement,
                             confident_joint_rate=joint)

    forget = schedule("comining", forget_rate="auto")
    forget.target, record = 0.4, {}
    line = forget.adopt(second(0.18), history, record)
    assert forget.target == 0.18 and record["estimated_noise_rate"] == 0.18 and record["uncapped_noise_rate"] == 0.4
    assert record["unused_noise_rate"] == 0.3 and "forget rate 0.180" in line
    assert "memorised" not in line  # why the first stood is moot where the cap is below both
    assert ("second estimate 0.300 (loss populations separated, D = 2.5); both it and the rate in use, 0.400, lie "
            "above the share of labels the network puts outside their class, 0.180, which caps it: forget rate 0.180") in line
    assert record["noise_rate_estimated_by"] == "mixture"
    assert record["noise_rate_interval"] == pytest.approx([0.18 - INTERVAL_MARGIN, 0.4 + INTERVAL_MARGIN])
    assert record["noise_rate_readings"] == {"rate": 0.4, "disagreement": 0.18}  # the uncapped rate it spans
    assert estimated_noise_rate([*history, record]) == 0.18  # what --resume restores
    # A confident joint below both (the network unsure of most of its disagreements) reaches lower.
    forget.target, record = 0.4, {}
    forget.adopt(second(0.18, joint=0.09), history, record)
    assert forget.target == 0.18 and record["confident_joint_noise_rate"] == 0.09
    assert record["noise_rate_interval"] == pytest.approx([0.09 - MARGIN_BELOW_JOINT, 0.4 + INTERVAL_MARGIN])
    assert record["noise_rate_readings"] == {"rate": 0.4, "disagreement": 0.18, "confident_joint": 0.09}
    # Disagreeing with more than the rate in use: no cap, the first stands, nothing new is estimated.
    forget.target, record = 0.4, {}
    line = forget.adopt(second(0.55), history, record)
    assert forget.target == 0.4 and "estimated_noise_rate" not in record and "uncapped_noise_rate" not in record
    assert line.startswith("second estimate 0.300 (loss populations separated, D = 2.5) not used, as it is lower "
                           "while the labels' disagreements spread") and line.endswith("forget rate 0.400 (interval 0.34–0.61)")
    # A higher second mixture replaces the first, and is capped too where the network disagrees less.
    forget.target, record = 0.4, {}
    line = forget.adopt(second(0.45, rate=0.5), history, record)
    assert forget.target == 0.45 and record["uncapped_noise_rate"] == 0.5 and "unused_noise_rate" not in record
    assert "second estimate 0.500 (loss populations separated, D = 2.5) replaces 0.400; it lies above the share" in line
    # The cap between the two (0.30 < 0.35 < 0.40): the line says why the lower 0.30 was not taken.
    forget.target, record = 0.4, {}
    line = forget.adopt(second(0.35), history, record)
    assert forget.target == 0.35 and "memorised" in line and "forget rate 0.350" in line
    assert "; the rate in use, 0.400, lies above the share of labels the network puts outside their class, 0.350" in line


def test_what_counted_the_rate_is_recorded_and_a_held_first_estimate_keeps_its_own():
    # A first estimate whose losses did not separate is counted without a split; a lower second one
    # (separated, spread) does not replace it, so the rate it spans is still that count.
    from comining.noise_rate import NoiseEstimate
    forget, record = schedule("comining", forget_rate="auto"), {"epoch": 5}
    first = NoiseEstimate(0.45, False, 1.5, 0.1, 2.0, mixture_rate=0.7, confident_joint_rate=0.45, anchor_rate=0.4,
                          disagreement=0.5)
    line = forget.adopt(first, [], record)
    assert record["noise_rate_estimated_by"] == "without_split" and forget.target == 0.45
    assert "counted without a split" in line
    later = {"epoch": 10}
    second = NoiseEstimate(0.3, True, 2.5, 0.1, 2.0, concentration=0.9, disagreement=0.5)
    line = forget.adopt(second, [record], later)
    assert forget.target == 0.45 and later["unused_noise_rate"] == 0.3
    assert later["noise_rate_estimated_by"] == "without_split" and "a first estimate counted without a split" in line
    # Where the second replaces it, what counted the second is recorded.
    forget.target, later = 0.45, {"epoch": 10}
    forget.adopt(NoiseEstimate(0.5, True, 2.5, 0.1, 2.0, concentration=0.1, disagreement=0.6), [record], later)
    assert later["noise_rate_estimated_by"] == "mixture" and forget.target == 0.5


def test_runs_made_before_the_source_was_recorded_name_it_from_their_records():
    from comining.forget_rate import counted_by_record
    assert counted_by_record({"estimated_noise_rate": 0.4, "mixture_noise_rate": 0.7}) == "without_split"
    assert counted_by_record({"estimated_noise_rate": 0.3, "probe_noise_rate": 0.3}) == "probe"
    assert counted_by_record({"estimated_noise_rate": 0.3}) == "mixture"
    assert counted_by_record({"noise_rate_estimated_by": "probe", "mixture_noise_rate": 0.7}) == "probe"
    # Over a run's history: a second estimate that left the first standing spans the first's count.
    from comining.forget_rate import estimated_by
    first = {"epoch": 5, "estimated_noise_rate": 0.45, "mixture_noise_rate": 0.7, "noise_rate_interval": [0.3, 0.5]}
    held = {"epoch": 10, "unused_noise_rate": 0.3, "noise_rate_interval": [0.26, 0.51]}
    assert estimated_by([first, held]) == "without_split"
    assert estimated_by([first, {"epoch": 10, "estimated_noise_rate": 0.5, "noise_rate_interval": [0.4, 0.6]}]) == "mixture"
    assert estimated_by([{"epoch": 1}]) is None


def test_a_run_too_short_for_its_warm_up_or_ramp_says_what_it_will_not_do():
    # Co-mining with auto estimates after the warm-up (5) and ramps the rate in over num_gradual (5)
    # epochs after it: epoch k (0-based) sets aside min((k - 5 + 1) / 5, 1) of the rate.
    auto = schedule("comining", forget_rate="auto", warmup_epochs=5, num_gradual=5)
    assert "first estimated after epoch 5 (the warm-up) and the run has 5" in auto.shortfall(5)
    assert "its last epoch sets aside 60% of the rate" in auto.shortfall(8)  # epoch index 7: 3 / 5
    assert auto.shortfall(10) is None
    given = schedule("comining", forget_rate=0.3, warmup_epochs=5, num_gradual=5)
    assert "sets aside 20% of the rate" in given.shortfall(6) and given.shortfall(5).startswith("the run ends")
    assert "a shorter --warmup-epochs" in auto.shortfall(5)
    assert schedule("comining", forget_rate=0.0, warmup_epochs=5).shortfall(6) is None  # a rate of 0: nothing to reach
    # A baseline estimates after epoch 1, whatever its warm-up; methods that set nothing aside by a rate never warn.
    baseline = schedule("coteaching", forget_rate="auto", warmup_epochs=5).shortfall(1)
    assert "first estimated after epoch 1 and the run has 1; pass --epochs above 1, or --forget-rate" in baseline
    for name in ("standard", "decoupling"):
        assert schedule(name, forget_rate="auto", warmup_epochs=5).shortfall(1) is None, name
        assert schedule(name, forget_rate=0.3).shortfall(2) is None, name
    assert METHODS["dividemix"].ramp == "unused"  # so it never warns either (built here it would need a ledger)


def test_a_wide_interval_names_the_readings_behind_it(capsys):
    from comining.summary import print_summary
    cfg = resolve({"forget_rate": "auto", "closed_rate": 0.4})
    results = {"last10_mean": 90.0, "last10_std": 1.0, "epochs": 10, "best_acc": 91.0, "best_epoch": 9,
               "precision": "fp32", "device": "cpu", "seconds": 5.0, "train_size": 100, "noise": {},
               "estimated_noise_rate": 0.18, "estimated_noise_rate_interval": [0.06, 0.49],
               "noise_rate_readings": {"rate": 0.43, "disagreement": 0.18, "confident_joint": 0.10},
               "n_clean": 70, "n_relabelled": 10, "n_discarded": 20}
    print_summary(cfg, results, "run")
    out = " ".join(capsys.readouterr().out.split())
    # 0.18 is below the rate reading 0.43: the cap set it, and the summary says so.
    assert "noise rate estimated from the losses, capped at the network's disagreement: 18.0% (likely 6% to 49%)" in out
    assert ("the estimate is unsure: its interval, 6% to 49%, spans more than 20 points (its readings: the losses "
            "43%, the network's disagreement 18%, confident learning's count 10%)") in out
    # Counted without a split, not capped: named so. On the probe, its own two readings.
    results.update(noise_rate_estimated_by="without_split", estimated_noise_rate=0.43)
    print_summary(cfg, results, "run")
    out = " ".join(capsys.readouterr().out.split())
    assert "estimated from a count without a split (the losses did not separate): 43.0%" in out
    assert "(its readings: the count without a split 43%," in out
    results.update(noise_rate_estimated_by="probe", noise_rate_readings={"rate": 0.3, "disagreement": 0.52},
                   estimated_noise_rate=0.3)
    print_summary(cfg, results, "run")
    out = " ".join(capsys.readouterr().out.split())
    assert "(its readings: the probe's count 30%, the probe's disagreement 52%)" in out and "capped" not in out
    # From a run made before the readings were recorded (or a damaged file): no list, the warning still.
    for damaged in (None, "0.3", {"rate": "high"}):
        results["noise_rate_readings"] = damaged
        print_summary(cfg, results, "run")
        out = capsys.readouterr().out
        assert "its readings" not in out and "the estimate is unsure: its interval, 6% to 49%, spans more than 20 points" in out
    results["estimated_noise_rate_interval"] = [0.25, 0.44]  # 19 points: no warning
    print_summary(cfg, results, "run")
    assert "unsure" not in capsys.readouterr().out


def test_interval_record_by_hand():
    from comining.forget_rate import interval_record
    assert interval_record(0.3, 0.2, 0.1) == {"noise_rate_interval": pytest.approx([0.06, 0.36]),
                                              "noise_rate_readings": {"rate": 0.3, "disagreement": 0.2,
                                                                      "confident_joint": 0.1},
                                              "noise_rate_estimated_by": "mixture"}
    assert interval_record(0.3, None, by="probe") == {"noise_rate_interval": pytest.approx([0.24, 0.36]),
                                                      "noise_rate_readings": {"rate": 0.3},
                                                      "noise_rate_estimated_by": "probe"}
