"""Which estimate of the share of wrong labels should `--forget-rate auto` use? (issue 11)

Trains each noise row and seed for the warm-up only (the moment `auto` estimates), saves every
training sample's class probabilities from the un-augmented evaluation pass, and compares estimators
of the noise rate on them against the realised rate. Usage:

    python experiments/noise_rate_estimators.py --out runs/estimators --seeds 4,5,6
    python experiments/noise_rate_estimators.py --out runs/estimators --compare   # reuse saved passes
    python experiments/noise_rate_estimators.py --out runs/estimators-digits --dataset digits --train-subset 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from comining import engine, noise_rate
from comining.config import resolve
from comining.methods.comining import default_epsilon
from comining.evidence import plain_probabilities
from comining.noise import parse_noise

ROWS = ["sym20", "sym50", "sym80", "asym40", "sym20-open20"]


def warmup_probabilities(row: str, seed: int, dataset: str = "fashion-mnist", train_subset: int | None = 3200) -> dict:
    """The probabilities after each warm-up epoch (probs1 … probsW; ``probs`` is the last, where
    `auto` estimates), the given and true labels, and the realised share of wrong labels."""
    kind, rate, open_ratio = parse_noise(row)
    subsets = {"train_subset": train_subset, "test_subset": 2000} if train_subset else {}
    cfg = resolve({"dataset": dataset, **subsets, "method": "comining", "noise_type": kind, "closed_rate": rate,
                   "open_ratio": open_ratio or 0.0, "seed": seed, "quiet": True})
    trainer = engine.Trainer(cfg)
    saved = {}
    for epoch in range(cfg.warmup_epochs):
        trainer.train_epoch(epoch)
        saved[f"probs{epoch + 1}"] = plain_probabilities(trainer.method, trainer.data, trainer.views,
                                                         trainer.precision, 512).cpu().numpy()
    data = trainer.data
    return {**saved, "probs": saved[f"probs{cfg.warmup_epochs}"], "given": data.labels.cpu().numpy(),
            "true": data.true_labels.cpu().numpy(), "realised": float(data.noise["wrong_labels"])}


def mixture_fit(values):
    """The shipped mixture's fit on any per-sample value in [0, 1] where high means "label likely right"."""
    return noise_rate.estimate_noise_rate(-np.log(np.clip(values, 1e-12, 1)))


def gmm_on(values):
    """The shipped mixture's estimate on such values."""
    return mixture_fit(values).rate


def gmm(probs, given):
    return gmm_on(probs[np.arange(len(given)), given])


def gmm_per_label(probs, given):
    """The shipped mixture fitted within each given label; the label's estimate weighted by its count."""
    total = 0.0
    for j in np.unique(given):
        rows = given == j
        if rows.sum() >= 10:
            total += gmm(probs[rows], given[rows]) * rows.sum()
    return float(total / len(given))


def gmm_more_starts(probs, given):
    """The shipped mixture with ten k-means starts instead of three."""
    shipped, noise_rate.N_INIT = noise_rate.N_INIT, 10
    try:
        return gmm(probs, given)
    finally:
        noise_rate.N_INIT = shipped


def label_margin(probs, given):
    """p(given) − max p(other), in [−1, 1]: under pair flip a wrong label's class is the runner-up."""
    rows = np.arange(len(given))
    others = probs.copy()
    others[rows, given] = -1
    return probs[rows, given] - others.max(1)


def gmm_margin(probs, given):
    """The mixture on the label's margin over the best other class, scaled to [0, 1]."""
    return gmm_on((label_margin(probs, given) + 1) / 2)


def gmm_per_class_scale(probs, given):
    """The mixture on p(given) divided by its label's mean p(given) (confident learning's threshold),
    so that a hard class's clean samples are not taken for noise."""
    given_prob = probs[np.arange(len(given)), given]
    return gmm_on(np.minimum(given_prob / label_thresholds(probs, given)[given], 1))


def label_thresholds(probs, given):
    """Per class j, the mean p(j) over the samples labelled j (1 for a class nobody carries)."""
    return np.array([probs[given == j, j].mean() if (given == j).any() else 1.0 for j in range(probs.shape[1])])


def disagreement(probs, given):
    """Share of samples whose predicted class is not their given label."""
    return float((probs.argmax(1) != given).mean())


def confident_joint(probs, given):
    """Confident learning (Northcutt et al., JAIR 2021): per-class thresholds at the mean probability
    of each class among the samples labelled with it (comining.noise_rate.confident_joint_noise_rate)."""
    return noise_rate.confident_joint_noise_rate(probs, given)


def cleanlab_off_diagonal(probs, given):
    """cleanlab's own count of label issues without calibration (``estimation_method="off_diagonal"``),
    as a share; cleanlab is a test dependency (pip install -e '.[test]')."""
    from cleanlab.count import num_label_issues
    return num_label_issues(given, probs, estimation_method="off_diagonal") / len(given)


def gmm_and_joint_mean(probs, given):
    """The mean of the shipped mixture and confident learning's joint, whose errors differ in sign."""
    return (gmm(probs, given) + confident_joint(probs, given)) / 2


def anchors(probs, given, quantile=noise_rate.ANCHOR_QUANTILE):
    """Anchor points (Patrini et al., CVPR 2017; Xia et al., NeurIPS 2019), as `auto` now asks them
    where the mixture does not separate: comining.noise_rate.anchor_noise_rate, with the smoothing
    the warm-up trained with (no preset or recipe sets ε)."""
    return noise_rate.anchor_noise_rate(probs, given, default_epsilon(probs.shape[1]), quantile)


def gmm_else_anchors(probs, given):
    """The shipped mixture where its two components separate (Ashman's D ≥ 2); where they do not, the
    mixture itself says its split is unreliable, and the anchors (which need no split) answer."""
    fit = mixture_fit(probs[np.arange(len(given)), given])
    return fit.rate if fit.separated else anchors(probs, given)


ESTIMATORS = {"gmm (shipped)": gmm, "gmm per label": gmm_per_label, "gmm 10 starts": gmm_more_starts,
              "gmm on margin": gmm_margin, "gmm per-class scale": gmm_per_class_scale,
              "argmax ≠ label": disagreement, "confident joint": confident_joint,
              "cleanlab off-diagonal": cleanlab_off_diagonal, "mean of gmm and joint": gmm_and_joint_mean,
              "anchors q0.75": lambda p, g: anchors(p, g, 0.75), "anchors q0.9": anchors,
              "anchors q0.95": lambda p, g: anchors(p, g, 0.95), "gmm, else anchors": gmm_else_anchors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/estimators"))
    parser.add_argument("--seeds", default="4,5,6")
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--train-subset", type=int, default=3200, help="0: the whole training set")
    parser.add_argument("--compare", action="store_true", help="only compare the passes already saved")
    parser.add_argument("--after-epoch", type=int, default=None,
                        help="estimate from the pass after this warm-up epoch (default: the last)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    errors = {name: [] for name in ESTIMATORS}
    for row in args.rows.split(","):
        for seed in map(int, args.seeds.split(",")):
            path = args.out / f"{row}-seed{seed}.npz"
            if not path.exists():
                if args.compare:
                    continue
                np.savez_compressed(path, **warmup_probabilities(row, seed, args.dataset, args.train_subset))
            saved = np.load(path)
            probs = saved["probs" if args.after_epoch is None else f"probs{args.after_epoch}"]
            line = [f"{row:13s} seed {seed}: realised {float(saved['realised']):.3f}"]
            for name, estimator in ESTIMATORS.items():
                value = estimator(probs, saved["given"])
                errors[name].append(value - float(saved["realised"]))
                line.append(f"{name} {value:.3f}")
            print("  ".join(line), flush=True)
    for name, errs in errors.items():
        errs = np.abs(errs)
        print(f"{name:16s} mean |error| {errs.mean():.3f}, max {errs.max():.3f}, within 0.05: "
              f"{(errs <= 0.05).sum()}/{len(errs)}")


if __name__ == "__main__":
    main()
