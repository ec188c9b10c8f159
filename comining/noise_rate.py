"""The share of wrong labels, estimated from per-sample training losses (``--forget-rate auto``).

Networks fit clean labels before wrong ones, so early in training the losses of a noisy data set
form two populations: low (labels the network agrees with) and high (labels it does not). A
two-component Gaussian mixture, as DivideMix uses to split clean from noisy samples, gives the
weight of the high-loss component: the estimated noise rate. The mixture is fitted to each sample's
probability of its given label, exp(−loss), rather than to the loss: bounded in [0, 1], where the
clean population's long tail of hard images is folded in (docs/METHOD.md has the comparison).

Where the mixture's own test says its two components are one population (heavy noise: the clean
share is small and the network unsure of it; pair flips the warm-up half learned), its rate is not
used, at the first estimate or the second: the wrong labels are counted by the two estimates that
need no split, the confident joint and anchor points, and the higher of them is used
(``without_split``). No later estimate lowers a first one counted so (``why_first_holds``): the
second estimate runs low in just those cases, and a rate too low trains on wrong labels from the
start; a rate too high only sets aside some clean images, the same share within every label.

A second estimate, made after some epochs of selection, may raise the rate, but it lowers it only
to correct a confident first split under class-dependent noise: where the samples a network puts
outside their label mostly agree on one other class, as under pair flips. There the warm-up learned
the flips as a cluster of their own and its split can be confidently wrong, while selection has
stopped that and the losses split cleanly. Elsewhere a lower second estimate is expected and not
believed: by then the network has memorised the wrong labels its clean sets kept, which look clean.

Whichever stands, the second estimate caps it at the share of samples the network puts outside their
given class in the same pass (``capped_by_disagreement``). A sample the network puts in its given
class, however unsure, is not one it can call mislabelled, so a rate above that count is counting
right labels it finds hard: the mixture does this where classes look alike and few labels are wrong
(human-like noise on Fashion-MNIST: 0.28–0.42 where 0.09 are wrong). Under uniform noise the
network's own errors add to the wrong labels it disagrees with, the count stays above the mixture
and the cap does not bind (docs/notes/2026-12-07-disagreement-cap.md).

On pretrained features (``--backbone frozen``, or fine-tuning from pretrained ``--weights``) none of
this is asked: the confident joint counts on a linear probe cross-fitted on them before training
(``comining.probe``, ``ForgetRate.read_probe``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sklearn.mixture import GaussianMixture

# Ashman's D between the two components below which they are not two populations but one.
MIN_SEPARATION = 2.0
MIN_SAMPLES = 10  # the fewest losses a two-component mixture is fitted to
N_INIT = 3
# Where among the samples labelled j the anchors of class j sit: a high quantile of p(j), not the
# maximum, which one memorised wrong label would set (docs/METHOD.md compares 0.75, 0.9 and 0.95).
ANCHOR_QUANTILE = 0.9
# Concentration of the labels' disagreements (0: spread evenly over the other classes, as symmetric
# noise spreads them; 1: all on one, as pair flips put them) from which the noise counts as
# class-dependent. Observed after selection: 0.08–0.26 under symmetric and open-set noise, 0.57–0.92
# under pair flips (Fashion-MNIST and digits, docs/METHOD.md).
CLASS_DEPENDENT = 0.4
# The interval reaches this far beyond its readings (``rate_interval``): above them always, below them
# where the confident joint is not among them. The smallest margin with which the rate and the
# disagreement held the realised rate in 90 % of the testbed's synthetic and annotator-model runs.
INTERVAL_MARGIN = 0.06
# Below the readings where the confident joint is among them: it reads low by construction (it leaves
# out the disagreements the network is unsure of), so the low end needs less margin. Chosen with the
# joint on 60 testbed runs (92 % held); checked on an annotator held out from that choice (an MLP:
# 17 of 18, the rate and the disagreement alone 12 of 18); docs/notes/2026-12-07-interval-third-reading.md.
MARGIN_BELOW_JOINT = 0.04
# An interval wider than this is too wide to act on: the summary says so and suggests --forget-rate.
WIDE_INTERVAL = 0.2


@dataclass
class NoiseEstimate:
    rate: float  # estimated share of wrong labels
    separated: bool  # whether the losses form two distinct populations
    separation: float  # Ashman's D of the two components: |μ1 − μ2|·√2 / √(σ1² + σ2²)
    low_mean: float  # mean loss of the low-loss (clean) component
    high_mean: float  # mean loss of the high-loss (noisy) component
    confident_joint_rate: float | None = None  # the confident joint of the same pass (``ForgetRate.read``)
    anchor_rate: float | None = None  # anchor points' estimate, asked where the losses do not separate
    mixture_rate: float | None = None  # the mixture's own rate, where those two replaced it (``without_split``)
    concentration: float | None = None  # of the labels' disagreements, asked for a second estimate
    disagreement: float | None = None  # share of samples whose most probable class is not their label

    @property
    def class_dependent(self) -> bool:
        """Whether the labels' disagreements point to one class each, as pair flips' do (asked for a
        second estimate only, see ``why_first_holds``)."""
        return self.concentration is not None and self.concentration >= CLASS_DEPENDENT

    def how_counted(self) -> str:
        """How the rate was counted, in a few words: the losses' split and its D, or why not."""
        if self.separated:
            return f"loss populations separated, D = {self.separation:.1f}"
        if self.mixture_rate is not None:
            return f"counted without a split, as the losses do not separate: D = {self.separation:.1f}"
        return f"the losses do not separate, D = {self.separation:.1f}: unreliable"

    def describe(self) -> str:
        if self.separated:
            return f"estimated noise rate {self.rate:.3f} (loss populations separated, D = {self.separation:.1f})"
        one_population = (f"the losses do not separate into clean and noisy populations "
                          f"(D = {self.separation:.1f} < {MIN_SEPARATION:g})")
        if self.mixture_rate is not None:
            return (f"{one_population}, so the mixture's {self.mixture_rate:.3f} is unreliable; counted without "
                    f"a split (confident joint {self.confident_joint_rate:.3f}, anchor points {self.anchor_rate:.3f}): "
                    f"estimated noise rate {self.rate:.3f}")
        return (f"{one_population}: estimated noise rate {self.rate:.3f} is unreliable; "
                "pass --forget-rate with your own estimate")


def estimate_noise_rate(losses, seed: int = 0) -> NoiseEstimate:
    """Estimate the share of wrong labels from one cross-entropy loss (of the given label) per sample.

    ``losses``: array-like of per-sample losses in nats (NaN entries, samples not evaluated, are
    ignored); at least 10 finite values. Returns a NoiseEstimate whose ``rate`` is the posterior share
    of the component with the lower probability of the given label (the likelihood-best of three
    k-means starts, seeded by ``seed``). ``separated`` is False when the two components overlap too
    much to be two populations (Ashman's D below 2): the rate is then unreliable.
    """
    values = np.asarray(losses, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} finite losses to estimate a noise rate, got {values.size}")
    given = np.exp(-np.clip(values, 0, None))  # probability of the given label
    span = np.ptp(given)
    if span <= 1e-9:
        return NoiseEstimate(0.0, False, 0.0, float(values[0]), float(values[0]))
    scaled = ((given - given.min()) / span)[:, None]  # reg_covar is then relative to the spread
    mixture = GaussianMixture(2, max_iter=300, tol=1e-5, reg_covar=1e-4, n_init=N_INIT, random_state=seed).fit(scaled)
    means = mixture.means_.ravel() * span + given.min()
    noisy = int(np.argmin(means))
    rate = float(mixture.predict_proba(scaled)[:, noisy].mean())
    separation = float(np.sqrt(2) * abs(means[1] - means[0]) / (span * np.sqrt(mixture.covariances_.ravel().sum())))
    as_loss = -np.log(np.clip(means, 1e-12, 1))
    return NoiseEstimate(rate, separation >= MIN_SEPARATION, separation, float(as_loss[1 - noisy]),
                         float(as_loss[noisy]))


def disagreement_share(probs, labels) -> float | None:
    """The share of samples whose most probable class in ``probs`` [N×C] (rows holding NaN ignored)
    is not their given label in ``labels`` [N]; None where no row is readable."""
    probs, labels = readable_rows(probs, labels)
    return float((probs.argmax(axis=1) != labels).mean()) if len(labels) else None


def rate_interval(rate: float, disagreement: float | None, joint: float | None = None,
                  margin: float = INTERVAL_MARGIN, below_joint: float = MARGIN_BELOW_JOINT) -> tuple[float, float]:
    """How sure an estimated noise ``rate`` is: the range its readings span, the rate, the network's
    ``disagreement`` (``disagreement_share``) and the confident ``joint``
    (``confident_joint_noise_rate``), all read in the same pass, widened by ``margin`` above and
    below, or by ``below_joint`` below where the joint is among them, within [0, 1]. A reading that
    is None (no readable sample; no joint asked) is left out.

    The readings err in different directions where errors sit on ambiguous images. The mixture
    counts a class's hard clean images as wrong and reads high. The disagreement misses the wrong
    labels that follow the network's own confusions, which it learns, and reads low; but where few
    labels are wrong it counts the network's own mistakes on right labels and reads high. The joint
    counts a disagreement only where the network is as sure of the other class as it is of that
    class's own samples, so it leaves those mistakes out and usually reads lowest. Under uniform noise the
    disagreement adds the network's own errors and reads high, the mixture about right. Where they
    agree the interval is narrow; where they do not, it says so, rather than a bootstrap of one
    reading, which is narrow around a biased value."""
    readings = [r for r in (rate, disagreement, joint) if r is not None]
    below = margin if joint is None else below_joint
    return max(0.0, min(readings) - below), min(1.0, max(readings) + margin)


def readable(probs) -> np.ndarray:
    """[N] bool: the rows of ``probs`` [N×C] that hold no NaN (a NaN row is a sample without a
    reading: an image that could not be read, or no features)."""
    return np.isfinite(probs).all(axis=1)


def readable_rows(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """``probs`` [N×C] as float64 and ``labels`` [N] as arrays, without the rows holding NaN (images
    that could not be read)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    rows = readable(probs)
    return probs[rows], labels[rows]


def anchor_noise_rate(probs, labels, smoothing: float = 0.0, quantile: float = ANCHOR_QUANTILE) -> float:
    """The share of wrong labels from anchor points (Patrini et al., CVPR 2017).

    ``probs``: [N×C] class probabilities of a network fitted to the given labels (rows holding NaN,
    images that could not be read, are ignored); ``labels``: [N] given labels; ``smoothing``: the
    label-smoothing mass ε of the targets it was trained on. At an image that surely is class j, such
    a network gives p(j) = T_jj·(1 − ε − ε/(C−1)) + ε/(C−1), where T_jj is the share of class j's images
    that kept label j; the ``quantile`` of p(j) among the samples labelled j stands for those images.
    Returns 1 − Σ_j n_j·T_jj / N. It counts flips between the known classes only: an open-set image
    is no class's anchor, so its wrong label is missed. n_j counts given labels, not true classes:
    exact for balanced classes, biased where flips move many images between classes of unequal size.
    The network must have fitted the labels: at chance (p(j) = 1/C) every label reads as wrong.
    """
    probs, labels = readable_rows(probs, labels)
    classes = probs.shape[1]
    off = smoothing / (classes - 1)
    anchors = np.array([np.quantile(probs[labels == j, j], quantile) if (labels == j).any() else 1.0
                        for j in range(classes)])
    kept = np.clip((anchors - off) / (1 - smoothing - off), 0, 1)
    return float(1 - np.dot(np.bincount(labels, minlength=classes), kept) / len(labels))


def why_first_holds(second: NoiseEstimate, rate_in_use: float, first_separation: float) -> str | None:
    """Why the rate in use (the first estimate's) stands against a ``second`` estimate made after
    some epochs of selection (its ``concentration`` set; where its losses did not separate, already
    counted without a split), or None where ``second`` replaces it; ``first_separation`` is the first
    estimate's Ashman's D. The rule and its reasons are the module docstring's."""
    if second.rate > rate_in_use:
        return None
    if first_separation < MIN_SEPARATION:
        return "it is lower, and a first estimate counted without a split is not lowered"
    if not second.class_dependent:
        return (f"it is lower while the labels' disagreements spread over the classes (concentration "
                f"{second.concentration:.2f} < {CLASS_DEPENDENT}): a network trained on its clean sets has "
                "memorised the wrong labels they kept, and reads low")
    return None


def capped_by_disagreement(rate: float, disagreement: float | None) -> float:
    """A second estimate's ``rate``, but not above the ``disagreement`` share read in the same pass
    (``disagreement_share``; None: no cap). The module docstring says why."""
    return rate if disagreement is None else min(rate, disagreement)


def disagreement_concentration(probs, labels) -> float:
    """How much the samples that a network puts outside their given label agree on where they belong.

    ``probs``: [N×C] class probabilities (rows holding NaN are ignored); ``labels``: [N] given labels.
    For each label j, among the samples labelled j whose most probable class is another one, the share
    of the most common such class; their mean over labels, weighted by those samples, rescaled so that
    0 is an even spread over the other C − 1 classes and 1 is all on one. Pair flips give values near
    1, symmetric noise values near 0 (a network's own confusions between look-alike classes add some).
    With two classes there is only one other class: 1. With no disagreement at all: 0.
    """
    probs, labels = readable_rows(probs, labels)
    classes = probs.shape[1]
    if classes <= 2:
        return 1.0
    predicted = probs.argmax(axis=1)
    outside = predicted != labels
    if not outside.any():
        return 0.0
    pairs = np.zeros((classes, classes))
    np.add.at(pairs, (labels[outside], predicted[outside]), 1)
    share = float(pairs.max(axis=1).sum() / outside.sum())  # Σ_j (most common other class of j) / Σ_j all
    even = 1 / (classes - 1)
    return (share - even) / (1 - even)


def confident_joint_noise_rate(probs, labels) -> float:
    """The share of wrong labels from the confident joint (Northcutt, Jiang and Chuang, JAIR 2021).

    ``probs``: [N×C] class probabilities of a network fitted to the given labels (rows holding NaN
    are ignored); ``labels``: [N] given labels. Class k's threshold is the mean p(k) over the samples
    labelled k; a sample counts towards (given label, k) for the most probable class k whose p(k)
    reaches its threshold, and not at all where none does. Each given label's row of counts is then
    scaled to that label's number of samples. Returns 1 − (the scaled diagonal) / N. Per-class
    thresholds make it indifferent to how confident the network is overall (label smoothing, an
    early epoch). It counts flips between the known classes only: an open-set image has no class of
    its own to be counted under.
    """
    probs, labels = readable_rows(probs, labels)
    classes = probs.shape[1]
    given_count = np.bincount(labels, minlength=classes)
    thresholds = np.array([probs[labels == k, k].mean() if given_count[k] else np.inf for k in range(classes)])
    # A class whose own samples all get probability 0 (a probe whose training folds lacked it) would
    # otherwise be reached by every sample: it stands for no class.
    thresholds[thresholds <= 0] = np.inf
    reaches = probs >= thresholds - 1e-9  # a mean of equal values can round just above them
    counted = reaches.any(axis=1)
    likely = np.where(reaches, probs, -np.inf).argmax(axis=1)
    joint = np.zeros((classes, classes))
    np.add.at(joint, (labels[counted], likely[counted]), 1)
    row_total = joint.sum(axis=1)
    kept = np.divide(np.diag(joint), row_total, out=np.ones(classes), where=row_total > 0)
    return float(1 - np.dot(given_count, kept) / len(labels))


def without_split(estimate: NoiseEstimate, probs, labels, smoothing: float = 0.0) -> NoiseEstimate:
    """For a mixture ``estimate`` that did not separate: the higher of the confident joint's and the
    anchor points' rates (the targets' label smoothing ``smoothing`` undone), the mixture's kept as
    ``mixture_rate``. The higher, because a rate too low trains on wrong labels from the start: the
    two agree within 0.02 under heavy symmetric noise, and the anchors undercount pair flips. The
    confident joint ``estimate`` already holds (read from the same ``probs``) is used, not counted again."""
    joint = estimate.confident_joint_rate
    if joint is None:
        joint = confident_joint_noise_rate(probs, labels)
    anchors = anchor_noise_rate(probs, labels, smoothing)
    return replace(estimate, rate=max(joint, anchors), confident_joint_rate=joint, anchor_rate=anchors,
                   mixture_rate=estimate.rate)
