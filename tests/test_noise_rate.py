"""comining.noise_rate: the estimate of the noise rate from the losses' mixture, the anchor points,
the confident joint, the disagreements' concentration, and when a second estimate replaces the first.
test_forget_rate.py checks how a run with --forget-rate auto uses them."""

from dataclasses import replace

import numpy as np
import pytest

from comining.noise_rate import (CLASS_DEPENDENT, NoiseEstimate, anchor_noise_rate, confident_joint_noise_rate,
                                 disagreement_concentration, disagreement_share, estimate_noise_rate, rate_interval,
                                 why_first_holds, without_split)


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
    # A second estimate whose losses did not separate has been counted without a split (ForgetRate.read):
    # its count raises the rate as a mixture's would, and does not lower a first one counted so.
    assert why_first_holds(second(0.6, separated=False), 0.3, 2.5) is None
    assert "is not lowered" in why_first_holds(second(0.2, separated=False, concentration=0.9), 0.3, 1.5)
    assert why_first_holds(second(0.45), 0.3, 2.5) is None  # higher: raises, whatever the noise
    assert why_first_holds(second(0.45), 0.3, 1.5) is None
    assert "is not lowered" in why_first_holds(second(0.2, concentration=0.9), 0.3, 1.5)  # first did not split
    assert "spread over the classes (concentration 0.10 < 0.4)" in why_first_holds(second(0.2), 0.3, 2.5)
    assert why_first_holds(second(0.2, concentration=0.9), 0.3, 2.5) is None  # pair flips misled the first
    assert second(0.2, concentration=CLASS_DEPENDENT).class_dependent and not second(0.2).class_dependent


def test_disagreement_share_counts_samples_put_outside_their_label_and_ignores_unreadable_rows():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.2, 0.2, 0.6], [np.nan] * 3])
    labels = np.array([0, 0, 2, 2, 1])
    # row 1 is put in class 1 (label 0), row 2 in class 0 (label 2); the NaN row is not a sample
    assert disagreement_share(probs, labels) == pytest.approx(2 / 4)


@pytest.mark.parametrize("rate, disagreement, expected", [(0.30, 0.20, (0.14, 0.36)), (0.20, 0.30, (0.14, 0.36)),
                                                          (0.03, 0.10, (0.0, 0.16)), (0.97, 0.90, (0.84, 1.0))])
def test_the_interval_spans_both_readings_and_the_margin_within_zero_and_one(rate, disagreement, expected):
    assert rate_interval(rate, disagreement, margin=0.06) == pytest.approx(expected)


@pytest.mark.parametrize("joint, expected", [(0.10, (0.06, 0.36)), (0.25, (0.16, 0.36)), (0.50, (0.16, 0.56)),
                                             (None, (0.14, 0.36)), (0.02, (0.0, 0.36))])
def test_the_interval_spans_the_confident_joint_with_less_margin_below(joint, expected):
    # rate 0.30, disagreement 0.20, 0.06 above and, with a joint, 0.04 below: a joint of 0.10 lowers the
    # low end, 0.25 (between) narrows only the margin below, 0.50 raises the high end; without a joint
    # the interval is the two readings' ± 0.06; never below 0.
    assert rate_interval(0.30, 0.20, joint, margin=0.06, below_joint=0.04) == pytest.approx(expected)


def test_the_interval_defaults_to_0_06_above_and_with_a_joint_0_04_below():
    assert rate_interval(0.30, 0.20, 0.10) == pytest.approx((0.06, 0.36))
    assert rate_interval(0.30, 0.20) == pytest.approx((0.14, 0.36))


def test_an_estimate_that_does_not_separate_and_was_not_counted_without_a_split_advises_a_rate():
    # A second estimate reads the confident joint for the interval, but did not replace the mixture
    # with it: it must not be described as a count without a split.
    estimate = NoiseEstimate(0.3, False, 1.2, 0.1, 1.0, confident_joint_rate=0.25, disagreement=0.3)
    assert "pass --forget-rate" in estimate.describe() and "counted without a split" not in estimate.describe()


def test_without_a_readable_sample_there_is_no_disagreement_and_the_interval_is_the_margin():
    assert disagreement_share(np.full((3, 2), np.nan), np.array([0, 1, 0])) is None
    assert rate_interval(0.3, None, margin=0.06) == pytest.approx((0.24, 0.36))


def test_capped_by_disagreement_by_hand():
    from comining.noise_rate import capped_by_disagreement
    assert capped_by_disagreement(0.41, 0.18) == 0.18  # look-alike classes: the mixture counts hard right labels
    assert capped_by_disagreement(0.30, 0.52) == 0.30  # uniform noise: the network's own errors add, no cap
    assert capped_by_disagreement(0.30, None) == 0.30  # nothing read
