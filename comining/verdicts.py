"""The final verdict of every training sample: evidence in, verdicts and scores out.

Decided once, at the end of training, from everything the run knows (``comining.evidence``). The
rule and the evidence for it are in docs/METHOD.md ("Final verdicts").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from comining.evidence import Evidence
from comining.noise_rate import readable
from comining.selection import CLEAN, DISCARDED, RELABELLED, SELECTIONS, UNSEEN

# The final verdicts take a step's selection values and codes, but never "unseen".
VERDICTS = SELECTIONS[:UNSEEN]
OUTLIER_RATIO = 0.6  # discard as "no class fits" when the best class has less than this share of a typical one


@dataclass
class Verdicts:
    """Per training sample: verdict (codes CLEAN / RELABELLED / DISCARDED), suggested (class, or -1),
    label_quality (0..1, higher = given label more likely right), outlier_score (0..1, higher = more
    likely that no known class fits), pred_probs ([N×C], the final model's probabilities averaged
    over the views; rows sum to 1)."""

    verdict: np.ndarray
    suggested: np.ndarray
    label_quality: np.ndarray
    outlier_score: np.ndarray
    pred_probs: np.ndarray


def decide(evidence: Evidence) -> Verdicts:
    """The final verdicts from the evidence of a finished run (docs/METHOD.md, "Final verdicts")."""
    pred = evidence.probs.mean(0)
    pred = pred / pred.sum(1, keepdims=True)
    labels = evidence.labels
    quality = label_quality(pred, labels, evidence.history, evidence.history_weight)
    if evidence.probe is not None:
        quality = with_probe(quality, evidence.probe, labels)
    flagged = lowest_share(quality, evidence.prior_rate)
    best = best_other_class(pred, labels)
    relabel = flagged & (pred.argmax(1) == best) & ~outliers(pred, flagged)
    if evidence.votes is not None:  # as in training: the bank neighbours must not name another class
        relabel &= evidence.votes.argmax(1) == best
    verdict = np.full(len(labels), CLEAN, dtype=np.int8)
    verdict[relabel] = RELABELLED
    verdict[flagged & ~relabel] = DISCARDED
    return Verdicts(verdict=verdict, suggested=np.where(relabel, best, -1), label_quality=quality,
                    outlier_score=1.0 - pred.max(1), pred_probs=pred.astype(np.float32))


def label_quality(pred: np.ndarray, labels: np.ndarray, history: np.ndarray, history_weight: float) -> np.ndarray:
    """Per sample in [0, 1]: the normalised margin of the given label over the best other class,
    (1 + pred[given] - max other) / 2 (0.5 = a tie), blended with ``history_weight`` of how trusted
    the label was over the whole training (1 - the mean score quantile) where that is known."""
    margin = normalised_margin(pred, labels)
    trusted = np.where(np.isnan(history), margin, 1.0 - np.nan_to_num(history))
    return np.clip(history_weight * trusted + (1 - history_weight) * margin, 0.0, 1.0)


def normalised_margin(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per sample in [0, 1]: (1 + pred[given] - pred[best other class]) / 2; 0.5 is a tie."""
    rows = np.arange(len(labels))
    return 0.5 * (1.0 + pred[rows, labels] - pred[rows, best_other_class(pred, labels)])


def with_probe(quality: np.ndarray, probe: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The mean of the run's ``quality`` and the normalised margin of the frozen features' out-of-fold
    ``probe`` probabilities [N×C]; ``quality`` alone where the probe's row is NaN. The probe predicts
    each sample from a model that did not train on it, the run's networks from all the labels and
    two views: on the stand-in folders the mean found the wrong labels better than either alone
    (docs/BACKBONE.md)."""
    rows = readable(probe)
    blended = quality.copy()
    blended[rows] = 0.5 * (quality[rows] + normalised_margin(probe[rows], labels[rows]))
    return blended


def best_other_class(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per sample, the class other than the given one with the highest probability."""
    other = pred.copy()
    other[np.arange(len(labels)), labels] = -np.inf
    return other.argmax(1)


def outliers(pred: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Samples whose best class has less than OUTLIER_RATIO of the median best-class probability
    of the samples judged clean: relative, because label smoothing (Co-mining's ε) caps every
    probability well below 1."""
    top = pred.max(1)
    typical = np.median(top[~flagged]) if (~flagged).any() else np.median(top)
    return top < OUTLIER_RATIO * typical


def lowest_share(quality: np.ndarray, rate: float) -> np.ndarray:
    """Mask of the round(rate·N) lowest qualities; samples tied with the last one taken are taken too
    (equal evidence, equal verdict)."""
    count = int(round(rate * len(quality)))
    if count <= 0:
        return np.zeros(len(quality), dtype=bool)
    cut = np.partition(quality, count - 1)[count - 1]
    return quality <= cut


def verdict_summary(final, data) -> dict:
    """Counts of the final verdicts (a ``Verdicts``), and against the truth
    where the noise was synthetic: wrong labels caught (relabelled or discarded), right labels set
    aside, and relabellings to the true class."""
    verdict = torch.as_tensor(final.verdict).long()
    suggested = torch.as_tensor(final.suggested).long()
    summary = {f"n_{name}": int((verdict == code).sum()) for code, name in enumerate(VERDICTS)}
    flagged = verdict != CLEAN
    true = data.true_labels
    if true is not None:
        true, given = true.cpu(), data.labels.cpu()
        wrong = (given != true) | (true >= data.num_classes)
        summary.update(
            n_wrong_labels=int(wrong.sum()),
            wrong_caught=int((wrong & flagged).sum()),
            right_flagged=int((~wrong & flagged).sum()),
            relabelled_correctly=int(((verdict == RELABELLED) & (suggested == true)).sum()))
    return summary
