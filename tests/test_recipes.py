"""Issue 11's pieces: recipes, the study's options of Co-mining, the noise-rate estimate, --seeds."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from comining.config import Config, from_stored, recipe_values, resolve
from comining.errors import UserError
from comining.methods.comining import RECIPES, CoMiningOptions, split_by_score, within_class_order
from comining.noise_rate import (CLASS_DEPENDENT, NoiseEstimate, anchor_noise_rate, confident_joint_noise_rate,
                                 disagreement_concentration, without_split,
                                 estimate_noise_rate, why_first_holds)
from comining.table import aggregate, markdown_table, run_grid, write_table

RECIPE_KEYS = {"w_pc", "w_tri", "w_re", "aug", "select_per_class", "forget_ramp"}


# --- recipes ---------------------------------------------------------------------------------

def test_recipes_are_named_instances_of_the_options_and_set_only_the_recipe_options():
    assert all(isinstance(r, CoMiningOptions) for r in RECIPES.values())
    assert RECIPES["default"] == CoMiningOptions()  # the options' defaults are the default recipe
    for name in RECIPES:
        assert set(recipe_values(name)) == RECIPE_KEYS  # never σ, the margin or the bank: the data set's
    assert recipe_values("paper") == {"w_pc": 1.0, "w_tri": 3.0, "w_re": 0.01, "aug": "ws",
                                      "select_per_class": False, "forget_ramp": False}
    assert recipe_values("authors") == {**recipe_values("paper"), "w_tri": 0.0}


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_recipe_resolves_to_its_settings(name):
    cfg = resolve({"recipe": name})
    assert cfg.recipe == name
    assert {k: getattr(cfg, k) for k in RECIPE_KEYS} == recipe_values(name)


def test_recipe_sits_between_presets_and_the_users_settings(tmp_path):
    # A flag overrides the recipe ...
    assert resolve({"recipe": "paper", "w_tri": 1.5}).w_tri == 1.5
    # ... so does a config file ...
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"w_tri": 0.5}))
    assert resolve({"recipe": "paper"}, config_file=str(config)).w_tri == 0.5
    # ... and the recipe overrides a data set's preset, which keeps the data set's own settings.
    web = resolve({"dataset": "folder", "recipe": "paper"})
    assert web.w_tri == 3.0 and web.margin == 0.4 and web.re_sigma == 0.5
    assert resolve({"dataset": "folder", "recipe": "default"}).re_sigma == 0.5
    # A recipe named in the config file counts as the user's choice too.
    config.write_text(json.dumps({"recipe": "authors"}))
    assert resolve({}, config_file=str(config)).w_pc == 1.0


def test_unknown_recipe_is_a_one_line_error():
    with pytest.raises(UserError, match="unknown recipe 'nosuch'.*paper"):
        resolve({"recipe": "nosuch"})


def test_a_run_made_before_recipes_reads_as_paper():
    old = {k: v for k, v in Config(w_tri=3.0).to_dict().items() if k not in RECIPE_KEYS | {"recipe"}}
    stored = from_stored(old)
    assert stored["recipe"] == "paper"
    assert {k: stored[k] for k in RECIPE_KEYS} == recipe_values("paper")
    assert from_stored({**old, "recipe": "authors"})["recipe"] == "authors"  # newer runs keep theirs


@pytest.mark.parametrize("retired, kept_value, other", [("select_on", "both", "weak"), ("select_by", "self", "peer"),
                                                        ("score_target", "smoothed", "given"), ("ce_on", "both", "weak"),
                                                        ("tri_positives", "least", "most"), ("score_ema", 0.0, 0.5),
                                                        ("tri_confident_bank", False, True),
                                                        ("re_confident_bank", False, True)])
def test_a_stored_run_with_a_retired_option_reads_only_at_the_value_every_run_now_uses(retired, kept_value, other):
    stored = {**Config(recipe="default").to_dict(), retired: kept_value}
    assert retired not in from_stored(stored) and Config(**from_stored(stored)).w_tri == 0.0
    with pytest.raises(UserError, match=f"this run used {retired} = .* removed: see docs/METHOD.md"):
        from_stored({**stored, retired: other})


# --- the study's options -----------------------------------------------------------------------

def test_within_class_order_takes_the_same_share_of_each_label():
    # Label 0 has four easy samples, label 1 four hard ones: across the batch the four lowest scores
    # are all of label 0; within labels, the two lowest of each label come first.
    score = torch.tensor([0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert score.argsort()[:4].tolist() == [0, 1, 2, 3]
    order = within_class_order(score, labels, num_classes=3)
    assert order.tolist() == [0, 4, 1, 5, 2, 6, 3, 7]  # quantiles 1/8, 3/8, ...; ties by score
    clean, confident, noisy = split_by_score(score, 0.5, 0.5, labels, 3)
    assert sorted(clean.tolist()) == [0, 1, 4, 5] and sorted(noisy.tolist()) == [2, 3, 6, 7]
    assert sorted(confident.tolist()) == [0, 4]


# --- the noise-rate estimate -------------------------------------------------------------------

def two_loss_populations(rng, n, share):
    """n losses in random order, a ``share`` of them noisy (high: N(2.5, 0.4)), the rest clean (low: Γ(2, 0.1))."""
    noisy = int(share * n)
    return rng.permutation(np.concatenate([rng.gamma(2.0, 0.1, n - noisy), rng.normal(2.5, 0.4, noisy)]))


def one_loss_population(rng, n):
    """n losses from one population (N(1, 0.3)): nothing to split."""
    return rng.normal(1.0, 0.3, n)


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5, 0.7])
def test_estimator_recovers_the_mix_of_two_populations(share):
    estimate = estimate_noise_rate(two_loss_populations(np.random.default_rng(0), 4000, share))
    assert estimate.separated
    assert estimate.rate == pytest.approx(share, abs=0.03)
    assert estimate.low_mean < 0.5 < 2 < estimate.high_mean


def test_estimator_says_when_losses_do_not_separate():
    estimate = estimate_noise_rate(one_loss_population(np.random.default_rng(1), 3000))
    assert not estimate.separated
    assert "do not separate" in estimate.describe()
    assert estimate_noise_rate(np.full(50, 0.7)).rate == 0.0  # one value: nothing to split
    with pytest.raises(ValueError, match="at least 10"):
        estimate_noise_rate([0.1, float("nan"), 3.0])


def worked_anchor_probabilities():
    """Three classes, 10 samples labelled each, every sample labelled j with the same p(j): 0.5, 0.45,
    0.35. Trained towards ε 0.5 (p = T·0.25 + 0.25) that is T = 1, 0.8 and 0.4, a noise rate of
    1 − (10 + 8 + 4) / 30; trained on plain labels (p = T), 1 − (5 + 4.5 + 3.5) / 30."""
    labels = np.repeat([0, 1, 2], 10)
    probs = np.full((30, 3), 0.1)
    for label, p in enumerate((0.5, 0.45, 0.35)):
        probs[labels == label, label] = p
    return probs, labels


def test_anchor_points_read_each_class_kept_share_with_the_smoothing_undone():
    probs, labels = worked_anchor_probabilities()
    assert anchor_noise_rate(probs, labels, smoothing=0.5) == pytest.approx(1 - 22 / 30)
    assert anchor_noise_rate(probs, labels) == pytest.approx(1 - 13 / 30)
    # An unreadable image's NaN row is left out, not counted as a label kept or lost.
    with_nan = np.vstack([probs, np.full((1, 3), np.nan)])
    assert anchor_noise_rate(with_nan, np.append(labels, 2), smoothing=0.5) == pytest.approx(1 - 22 / 30)


def test_confident_joint_on_a_worked_example():
    # Three classes. Thresholds, the mean p(k) of the samples labelled k (not of all samples):
    # t0 = (0.8 + 0.6 + 0.1 + 0.3) / 4 = 0.45, t1 = (0.7 + 0.5) / 2 = 0.6,
    # t2 = (0.7 + 0.4 + 0.53 + 0.56) / 4 = 0.5475.
    # Label 0: samples 0 and 1 reach t0 only, sample 2 reaches t1 only (a flip), sample 3 reaches
    # none and is not counted: row [2, 1, 0], 2 of 3 kept. Label 1: sample 4 reaches t1, sample 5
    # none: row [0, 1, 0]. Label 2: sample 6 reaches t2; samples 7 and 8 reach t0 but not t2 (so
    # the most probable class overall, 2, is not where they count); sample 9 reaches t0 and t2 and
    # the more probable of those two, its label, takes it: row [2, 0, 2], half kept. Scaled to the
    # labels' 4, 2 and 4 samples: 8/3 + 2 + 2 = 20/3 kept of 10, a rate of 1/3. Thresholds over all
    # samples, the first class reached, the most probable class overall, counting the unreached by
    # their argmax, or the raw off-diagonal share would each give another number (0.30 to 0.43).
    probs = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.3, 0.35, 0.35],   # labelled 0
                      [0.1, 0.7, 0.2], [0.2, 0.5, 0.3],                                        # labelled 1
                      [0.1, 0.2, 0.7], [0.5, 0.1, 0.4], [0.47, 0.0, 0.53], [0.46, 0.0, 0.56]])  # labelled 2
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    assert confident_joint_noise_rate(probs, labels) == pytest.approx(1 / 3)
    # A row that could not be read (NaN) is left out, not counted as a label kept or lost.
    with_nan = np.vstack([probs, np.full((1, 3), np.nan)])
    assert confident_joint_noise_rate(with_nan, np.append(labels, 1)) == pytest.approx(1 / 3)
    # Samples exactly at their label's threshold reach it, though the mean of equal values can round
    # above them (three times 0.1 averages to 0.10000000000000002): label 0's row is [2, 1, 0], 2 of
    # 3 kept, label 1's [0, 1, 0], so 3 of 4 kept. Were the first two samples left out, label 0 would
    # keep none of the one it counted: 1 of 4.
    at_threshold = np.array([[0.1, 0.05, 0.85], [0.1, 0.05, 0.85], [0.1, 0.85, 0.05], [0.05, 0.85, 0.1]])
    assert confident_joint_noise_rate(at_threshold, np.array([0, 0, 0, 1])) == pytest.approx(1 / 4)


def sure_of_the_true_classes(n=2000, classes=10, flipped=0.35):
    """Probabilities of a network that puts 0.6–0.95 on each image's true class whatever its label,
    the rest spread evenly, with a ``flipped`` share of labels moved to the next class (pair flips).
    Returns (probs, given labels, true labels)."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, classes, n)
    given = np.where(rng.random(n) < flipped, (true + 1) % classes, true)
    sure = rng.uniform(0.6, 0.95, n)
    probs = np.repeat(((1 - sure) / (classes - 1))[:, None], classes, axis=1)
    probs[np.arange(n), true] = sure
    return probs, given, true


def test_confident_joint_recovers_the_flips_of_a_network_that_knows_the_true_classes():
    # A network that puts 0.6–0.95 on each image's true class, whatever its label: every image reaches
    # the threshold of its true class (about 0.5) and of no other, so the joint counts (given, true)
    # exactly: the realised rate. cleanlab's joint, which differs only where a sample reaches several
    # thresholds, agrees.
    probs, given, true = sure_of_the_true_classes()
    assert confident_joint_noise_rate(probs, given) == pytest.approx((given != true).mean())
    estimate_joint = pytest.importorskip("cleanlab.count").estimate_joint
    assert confident_joint_noise_rate(probs, given) == pytest.approx(1 - np.trace(estimate_joint(given, probs)))


def test_without_a_split_the_higher_of_the_confident_joint_and_the_anchors_is_used():
    # The network above, sure of the true classes: the anchors (each label's 90th percentile of p(label),
    # about 0.89) count 0.11, the confident joint every flip; the joint's count is used.
    probs, given, true = sure_of_the_true_classes()
    unsure = NoiseEstimate(0.6, False, 1.4, 0.5, 1.5)
    counted = without_split(unsure, probs, given)
    assert counted.rate == counted.confident_joint_rate == pytest.approx((given != true).mean())
    assert counted.anchor_rate < 0.2 and counted.mixture_rate == 0.6
    assert "confident joint 0.366" in counted.describe() and "estimated noise rate 0.366" in counted.describe()
    # The anchors' worked example (rate 1 − 22/30 with ε 0.5): every sample labelled j has the same p(j),
    # its label's threshold, so the joint counts no flip at all; the anchors' rate is used.
    probs, labels = worked_anchor_probabilities()
    counted = without_split(replace(unsure, rate=0.1), probs, labels, smoothing=0.5)
    assert counted.confident_joint_rate == 0 and counted.rate == counted.anchor_rate == pytest.approx(1 - 22 / 30)


def test_disagreement_concentration_on_worked_examples():
    # Three classes; label 0's samples predicted 1, 1, 1, 2 and 0; label 1's predicted 0, 0; label 2's
    # predicted 2. Most common other class per label: 3 of 4 and 2 of 2, so 5 of the 6 disagreements;
    # an even spread over the C − 1 = 2 others would give 1/2: (5/6 − 1/2) / (1 − 1/2) = 2/3.
    predicted = [1, 1, 1, 2, 0, 0, 0, 2]
    labels = [0, 0, 0, 0, 0, 1, 1, 2]
    probs = np.eye(3)[predicted] * 0.8 + 0.2 / 3
    assert disagreement_concentration(probs, labels) == pytest.approx(2 / 3)
    # Pair flips put every disagreement on one class: 1. Four classes, each label's three disagreements
    # on the three others, one each: the even spread, 0.
    assert disagreement_concentration(np.eye(4)[[1, 2, 3, 0]], [0, 1, 2, 3]) == 1
    spread_labels = np.repeat(np.arange(4), 3)
    spread_predicted = (spread_labels + np.tile([1, 2, 3], 4)) % 4
    assert disagreement_concentration(np.eye(4)[spread_predicted], spread_labels) == pytest.approx(0)
    # A row that could not be read (NaN) is ignored; no disagreement at all: 0; two classes: 1.
    unread = np.vstack([np.eye(4)[spread_predicted], np.full((1, 4), np.nan)])
    assert disagreement_concentration(unread, np.append(spread_labels, 0)) == pytest.approx(0)
    assert disagreement_concentration(np.eye(3)[[0, 1, 2]], [0, 1, 2]) == 0
    assert disagreement_concentration(np.eye(2)[[1, 0, 0]], [0, 0, 1]) == 1


def test_a_second_estimate_raises_the_rate_and_lowers_only_a_confident_split_of_class_dependent_noise():
    def second(rate, separated=True, concentration=0.1):
        return NoiseEstimate(rate, separated, 2.5 if separated else 1.5, 0.1, 2.0, concentration=concentration)
    assert "do not separate (D = 1.5)" in why_first_holds(second(0.6, separated=False), 0.3, 2.5)
    assert why_first_holds(second(0.45), 0.3, 2.5) is None  # higher: raises, whatever the noise
    assert why_first_holds(second(0.45), 0.3, 1.5) is None
    assert "is not lowered" in why_first_holds(second(0.2, concentration=0.9), 0.3, 1.5)  # first did not split
    assert "spread over the classes (concentration 0.10 < 0.4)" in why_first_holds(second(0.2), 0.3, 2.5)
    assert why_first_holds(second(0.2, concentration=0.9), 0.3, 2.5) is None  # pair flips misled the first
    assert second(0.2, concentration=CLASS_DEPENDENT).class_dependent and not second(0.2).class_dependent


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
    assert results["estimated_noise_rate"] == first["confident_joint_noise_rate"] == pytest.approx(flipped.mean())
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
                                                     (None, True, False)])
def test_auto_re_estimates_once_replacing_under_class_dependent_noise_and_only_raising_otherwise(
        tmp_path, monkeypatch, second_share, flips, used):
    """The first estimate is 0.3, from a clear split. second_share None: the second losses are one
    population, never used. flips: the labels' disagreements point to one class each (pair flips),
    and a clear second split replaces the first; spread over the classes, only where it is higher."""
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
    expected = second_share if used else history[1]["estimated_noise_rate"]
    if used:
        assert history[3]["estimated_noise_rate"] == pytest.approx(second_share, abs=0.03)
    else:  # recorded, not used
        assert "estimated_noise_rate" not in history[3] and "unused_noise_rate" in history[3]
    assert history[4]["forget_rate"] == pytest.approx(expected, abs=0.03 if used else 0)
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
    # One epoch in, a baseline's network may be near chance: the confident joint is not counted.
    assert trainer.history[0]["noise_separation"] < 2 and "confident_joint_noise_rate" not in trainer.history[0]


def test_a_given_forget_rate_is_never_estimated(tmp_path, monkeypatch):
    from comining import engine, evidence
    monkeypatch.setattr(evidence, "given_label_losses", lambda *a: pytest.fail("estimated a given rate"))
    cfg = resolve({"train_subset": 200, "epochs": 5, "warmup_epochs": 2, "quiet": True, "closed_rate": 0.4})
    assert engine.Trainer(cfg).fit()["forget_rate"] == pytest.approx(0.4)


# --- --seeds --------------------------------------------------------------------------------

def _fake_run(folder, cfg, last10_mean, seed):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    (folder / "results.json").write_text(json.dumps({
        "last10_mean": last10_mean, "last10_std": 0.1, "best_acc": last10_mean + 1, "best_epoch": 3,
        "epochs": 3, "seconds": 1.0, "estimated_noise_rate": 0.5}))


def test_seeds_aggregate_hand_written_results(tmp_path, monkeypatch):
    from dataclasses import replace
    from comining import engine
    base = resolve({"quiet": True, "epochs": 3})
    figures = {("sym50", "comining"): [80.0, 82.0, 84.0], ("sym50", "standard"): [70.0, 71.0, 75.0]}
    for (noise, method), values in figures.items():
        for seed, value in zip((1, 2, 3), values):
            cfg = replace(base, method=method, noise_type="symmetric", closed_rate=0.5, seed=seed)
            _fake_run(tmp_path / f"{noise}-{method}-seed{seed}", cfg, value, seed)
    monkeypatch.setattr(engine.Trainer, "fit", lambda self: pytest.fail("a finished run was trained again"))
    results = run_grid(base, ["standard", "comining"], ["sym50"], tmp_path, seeds=[1, 2, 3])
    assert [r["seed"] for r in results["sym50", "comining"]] == [1, 2, 3]
    cell = aggregate(results["sym50", "comining"])
    assert cell["last10_mean"] == pytest.approx(82.0) and cell["last10_std"] == pytest.approx(2.0)  # sample std
    text = markdown_table(results, ["standard", "comining"], ["sym50"])
    assert "| Symmetric-50% | 72.00±2.65 | **82.00±2.00** |" in text
    assert "Co-mining − Standard = +10.00, +11.00, +9.00 (mean +10.00, min +9.00)" in text
    write_table(results, ["standard", "comining"], ["sym50"], tmp_path)
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert [(r["method"], r["seed"], float(r["last10_mean"])) for r in rows] == [
        ("standard", "1", 70.0), ("standard", "2", 71.0), ("standard", "3", 75.0),
        ("comining", "1", 80.0), ("comining", "2", 82.0), ("comining", "3", 84.0)]
    # Runs made under other settings are refused, not averaged in.
    with pytest.raises(UserError, match="other settings"):
        run_grid(replace(base, epochs=4), ["comining"], ["sym50"], tmp_path, seeds=[1])


def test_a_baseline_cell_serves_any_recipe(tmp_path):
    from dataclasses import replace
    from comining.table import check_cell
    base = resolve({"quiet": True, "method": "standard"})
    _fake_run(tmp_path / "cell", replace(base, recipe="paper", **recipe_values("paper")), 70.0, 1)
    check_cell(tmp_path / "cell", replace(base, recipe="authors", **recipe_values("authors")))  # no error
    with pytest.raises(UserError, match="other settings"):
        check_cell(tmp_path / "cell", replace(base, method="comining", recipe="authors", **recipe_values("authors")))


def test_a_cell_stored_with_the_old_explicit_epsilon_matches_the_default(tmp_path):
    # Runs made before ε's default became None stored 0.5, which is what None means with three classes
    # or more (the only data sets 0.5 can run on); an ε of 0.2 is another setting.
    from dataclasses import replace
    from comining.table import check_cell
    base = resolve({"quiet": True})
    assert base.epsilon is None
    _fake_run(tmp_path / "old", replace(base, epsilon=0.5), 80.0, 1)
    check_cell(tmp_path / "old", base)  # no error
    check_cell(tmp_path / "old", replace(base, epsilon=0.5))
    _fake_run(tmp_path / "light", replace(base, epsilon=0.2), 80.0, 1)
    with pytest.raises(UserError, match="epsilon 0.2"):
        check_cell(tmp_path / "light", base)


def test_the_settings_defaults_are_the_default_recipe():
    # Config() built directly (the Python API) must mean what its recipe field says.
    assert {k: getattr(Config(), k) for k in RECIPE_KEYS} == recipe_values(Config().recipe)
