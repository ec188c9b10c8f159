"""Candidate estimates of the share of wrong labels, from the testbed's saved evidence (issue 27).

Reads the ``<row>-seed<k>.npz`` files of experiments/noise_testbed.py and computes, for every run,
each candidate alone, then combinations, against the realised share of wrong labels (open-set images
counted as wrong). No training: every candidate sees the same evidence.

    python experiments/noise_estimates.py runs/testbed [runs/testbed-digits ...] [--choose ROWS] [--json FILE]

Candidates (``warm``: after the warm-up, where `auto` first estimates; ``later``: after as many
epochs of selection, the networks having trained on the shipped rule's clean sets):
  shipped          the rule shipped before issue 27 (mixture; confident joint and anchors where it does
                   not separate; a second estimate that may replace the first)
  mix@t            the two-component mixture on p(given label) of the un-augmented pass at time t
  oof-joint@t      confident learning's count on out-of-fold probabilities of cross-fitted linear heads
                   (5 folds, logistic regression on the penultimate features)
  oof-argmax@t     the share of samples whose out-of-fold prediction is not their label
  oof-mix@t        the mixture on the out-of-fold p(given label)
  knn@t            the share of samples whose k nearest neighbours (cosine, k = 10) vote for another class
  views@t          the clean share read off the samples whose weak and strong views agree with each
                   other and the label: 1 − P(p ≥ t95) / 0.95, t95 their 5 % quantile of p(given label)
  val@t            on the clean evaluation split: 1 − the mean probability the network gives the true
                   class, label smoothing undone (a network fitted to noisy labels models how often an
                   annotator gives each class to such an image)
  val-argmax@t     on the clean evaluation split: the share of images the network puts in another class
  argmax@t         in-sample: the share of samples whose most probable class is not their label (what
                   ``noise_rate.disagreement_share`` reads in a run)
  joint@t, anchor@t  the confident joint and anchor points on the in-sample probabilities
  expected@t       1 − the mean of max p, label smoothing undone: the noise rate if the network's
                   probabilities were the annotator's label distribution and each image's true class
                   its most likely label (docs/notes/2026-12-07-second-estimate-only-raises.md)
  expected-test@t  the same on the evaluation split's images, whose labels it does not read

The last block scores the interval runs reported before 2026-12-07's third reading (the rate in use
and argmax@later ± 0.06; ``noise_rate.rate_interval`` without a joint): its coverage on the rows its
margin was chosen on (synthetic and annotator-model) and on the held-out human-like rows. The
interval runs report now is scored by experiments/interval_rules.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from comining import noise_rate

FOLDS = 5
K = 10


def out_of_fold(feats: np.ndarray, labels: np.ndarray, classes: int, seed: int = 0) -> np.ndarray:
    """[N×C] out-of-fold probabilities of a logistic regression on the L2-normalised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    x = feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)
    oof = np.zeros((len(labels), classes))
    present = np.unique(labels)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    for train, held in folds.split(x, labels):
        model = LogisticRegression(max_iter=500, C=1.0).fit(x[train], labels[train])
        oof[np.ix_(held, model.classes_)] = model.predict_proba(x[held])
    oof[:, np.setdiff1d(np.arange(classes), present)] = 0
    return oof / oof.sum(1, keepdims=True).clip(1e-12)


def knn_votes(feats: np.ndarray, labels: np.ndarray, classes: int, k: int = K) -> np.ndarray:
    """[N×C] the share of each class among every sample's k nearest other samples (cosine)."""
    x = feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)
    votes = np.zeros((len(labels), classes))
    for start in range(0, len(x), 1024):
        sim = x[start:start + 1024] @ x.T
        sim[np.arange(sim.shape[0]), np.arange(start, start + sim.shape[0])] = -np.inf  # not itself
        nearest = np.argpartition(-sim, k, axis=1)[:, :k]
        for j in range(k):
            votes[np.arange(start, start + sim.shape[0]), labels[nearest[:, j]]] += 1 / k
    return votes


def unsmoothed(probs: np.ndarray, epsilon: float) -> np.ndarray:
    """The label distribution a network trained on ε-smoothed targets has learned: it fits
    (1 − ε)·P(label) + ε/(C − 1)·(1 − P(label)) per class, which this inverts (clipped, renormalised)."""
    c = probs.shape[1]
    a = epsilon / (c - 1)
    p = np.clip((probs - a) / (1 - epsilon - a), 0, None)
    return p / p.sum(1, keepdims=True).clip(1e-12)


def given_p(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return probs[np.arange(len(labels)), labels]


def mixture(p: np.ndarray) -> float:
    return noise_rate.estimate_noise_rate(-np.log(np.clip(p, 1e-12, 1))).rate


def candidates(d) -> dict:
    labels, classes = d["given"], int(d["num_classes"])
    out = {"shipped": float(d["shipped"])}
    epsilon = float(d["epsilon"])
    for t in ("warm", "later"):
        probs, feats = d[f"probs_{t}"], d[f"feats_{t}"]
        test = unsmoothed(d[f"test_{t}"], epsilon) if f"test_{t}" in d else None  # the evaluation split's
        out[f"mix@{t}"] = mixture(given_p(probs, labels))
        oof = out_of_fold(feats, labels, classes)
        out[f"oof-joint@{t}"] = noise_rate.confident_joint_noise_rate(oof, labels)
        out[f"oof-argmax@{t}"] = float((oof.argmax(1) != labels).mean())
        out[f"oof-mix@{t}"] = mixture(given_p(oof, labels))
        out[f"knn@{t}"] = float((knn_votes(feats, labels, classes).argmax(1) != labels).mean())
        out[f"argmax@{t}"] = noise_rate.disagreement_share(probs, labels)
        out[f"joint@{t}"] = noise_rate.confident_joint_noise_rate(probs, labels)
        out[f"anchor@{t}"] = noise_rate.anchor_noise_rate(probs, labels, epsilon)
        out[f"expected@{t}"] = float((1 - unsmoothed(probs, epsilon).max(1)).mean())
        if test is not None:
            out[f"expected-test@{t}"] = float((1 - test.max(1)).mean())
        weak, strong = d[f"weak_{t}"].argmax(1), d[f"strong_{t}"].argmax(1)
        anchors = (weak == strong) & (weak == labels)
        p = given_p(probs, labels)
        t95 = np.quantile(p[anchors], 0.05) if anchors.sum() >= 10 else 0.5
        out[f"views@{t}"] = float(np.clip(1 - (p >= t95).mean() / 0.95, 0, 1))
        if test is not None:  # the clean evaluation split: how often the learned labelling agrees with the truth
            truth = d["test_true"]
            out[f"val-argmax@{t}"] = float((d[f"test_{t}"].argmax(1) != truth).mean())
            out[f"val@{t}"] = 1 - float(test[np.arange(len(truth)), truth].mean())
    return out


def load(folders: list[Path], cache: Path | None) -> list[dict]:
    """One record per run: row, seed, data set, realised, and every candidate (cached in ``cache``)."""
    done = json.loads(cache.read_text()) if cache and cache.exists() else {}
    runs = []
    for folder in folders:
        for path in sorted(folder.glob("*-seed*.npz")):
            key = str(path)
            if key not in done:
                d = np.load(path)
                row, seed = path.stem.rsplit("-seed", 1)
                done[key] = {"row": row, "seed": int(seed), "dataset": folder.name, "realised": float(d["realised"]),
                             **candidates(d)}
                if cache:
                    cache.write_text(json.dumps(done, indent=1))
            runs.append(done[key])
    return runs


def summarise(runs: list[dict], names: list[str], title: str) -> str:
    lines = [f"### {title} ({len(runs)} runs)", "", "| estimate | within 0.05 | mean abs error | mean error | worst |",
             "|---|---|---|---|---|"]
    for name in names:
        err = np.array([r[name] - r["realised"] for r in runs])
        worst = runs[int(np.argmax(np.abs(err)))]
        lines.append(f"| {name} | {(np.abs(err) <= 0.05).sum()} of {len(err)} | {np.abs(err).mean():.3f} | "
                     f"{err.mean():+.3f} | {err[np.argmax(np.abs(err))]:+.3f} ({worst['row']} s{worst['seed']}) |")
    return "\n".join(lines)


def per_row(runs: list[dict], names: list[str]) -> str:
    rows = sorted({(r["dataset"], r["row"]) for r in runs})
    lines = ["| data | row | realised | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 3)]
    for dataset, row in rows:
        mine = [r for r in runs if r["dataset"] == dataset and r["row"] == row]
        realised = np.mean([r["realised"] for r in mine])
        cells = [f"{np.mean([r[n] - r['realised'] for r in mine]):+.3f}" for n in names]
        lines.append(f"| {dataset} | {row} | {realised:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread_intervals(runs: list[dict], names: list[str], top: int = 5) -> str:
    """The pairs and triples of readings whose range (minimum to maximum) most often contains the
    realised rate, narrowest first among equals: could the readings' disagreement be the interval?"""
    import itertools

    found = []
    for size in (2, 3):
        for combo in itertools.combinations(names, size):
            low = np.array([min(r[n] for n in combo) for r in runs])
            high = np.array([max(r[n] for n in combo) for r in runs])
            realised = np.array([r["realised"] for r in runs])
            found.append((int(((low <= realised) & (realised <= high)).sum()), float(np.mean(high - low)), combo))
    found.sort(key=lambda f: (-f[0], f[1]))
    return "\n".join(f"{covered} of {len(runs)} covered, mean width {width:.2f}: {', '.join(combo)}"
                     for covered, width, combo in found[:top])


def interval_coverage(runs: list[dict], readings=("shipped", "argmax@later"),
                      margin: float = noise_rate.INTERVAL_MARGIN) -> str:
    """How often an interval (the hull of ``readings``, ``margin`` wider each side, within [0, 1];
    by default the one of the rule before 2026-12-07's third reading) contains the realised rate: on the Fashion-MNIST rows its margin was
    chosen on, on the held-out human-like rows, on other data sets, and per row; with its mean width
    and how often it is wide."""
    def score(group):
        if not group:
            return "no runs"
        bounds = [(max(0.0, min(r[n] for n in readings) - margin), min(1.0, max(r[n] for n in readings) + margin))
                  for r in group]
        inside = [lo <= r["realised"] <= hi for (lo, hi), r in zip(bounds, group)]
        widths = [hi - lo for lo, hi in bounds]
        wide = sum(w > noise_rate.WIDE_INTERVAL for w in widths)
        return f"{sum(inside)} of {len(group)} ({np.mean(inside):.0%}), mean width {np.mean(widths):.2f}, {wide} wide"

    fm = [r for r in runs if r["dataset"] == "testbed"]
    chosen = [r for r in fm if not r["row"].startswith("human")]
    held = [r for r in fm if r["row"].startswith("human")]
    other = [r for r in runs if r["dataset"] != "testbed"]
    lines = [f"{' + '.join(readings)} ± {margin}: chosen on {score(chosen)}; held out (human-like) {score(held)}; "
             f"other data sets {score(other)}; all {score(runs)}", ""]
    for dataset, row in sorted({(r["dataset"], r["row"]) for r in runs}):
        lines.append(f"{dataset} {row}: {score([r for r in runs if r['dataset'] == dataset and r['row'] == row])}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--cache", type=Path, help="JSON file keeping the candidates computed so far")
    args = parser.parse_args()
    runs = load(args.folders, args.cache)
    names = [k for k in runs[0] if k not in ("row", "seed", "dataset", "realised")]
    print(summarise(runs, names, "all runs"))
    print()
    print("mean error (estimate − realised) per row, over its seeds:\n")
    print(per_row(runs, names))
    print("\nthe readings' range as an interval:\n")
    print(spread_intervals(runs, names))
    print("\nthe interval a run reports (noise_rate.rate_interval):\n")
    print(interval_coverage(runs))
    print("\nrule B, the confident joint as a third reading (docs/notes/2026-12-06-noise-interval.md):\n")
    print(interval_coverage(runs, ("shipped", "argmax@later", "joint@later")))


if __name__ == "__main__":
    main()
