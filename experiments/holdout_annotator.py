"""Label files from annotators that no rule of issue 27 was chosen on: checks for `auto`.

The testbed's annotator (experiments/noise_testbed.py) is a logistic regression on PCA components;
every reading and rule so far was looked at on its rows. This one is another kind of model, a
random forest on 30 PCA components of the pixels, fitted on Fashion-MNIST training images
40,000–49,999 (no run trains on them, and the testbed's annotator did not see them), and it
relabels the 3,200 images a run trains on by drawing from its own tempered predictive
distribution, calibrated to 30 % wrong among them (the file's other rows keep their own labels:
`--train-subset 3200` never reads them). Its mistakes fall on the images it finds ambiguous,
towards the classes it confuses them with, which need not be the logistic regression's. The forest
errs on 17 % of these images even at its most confident, so the 10 % row keeps that draw on a
random share of the images and the right label elsewhere (as if a careful annotator checked the
rest): its errors still sit where the forest finds the images ambiguous.
One BLAS thread, so that the files are the same on every machine of this kind.

`--annotator knn` is a third kind, written for the interval's check of 2026-12-07 (seventh session)
before any of its runs: 25 nearest neighbours on 40 PCA components, fitted on images 50,000–59,999
(seen by neither other annotator), the same draw at 30 % and 10 %, and the 30 % row again with
open-set images (`knn30-open`, `--open-ratio 0.2`). `--annotator mlp`, a fourth, written for the
next check after the knn rows had been scored: a one-hidden-layer perceptron (64 units) on 50 PCA
components, fitted on images 10,000–19,999, at 35 % and 15 %, and 35 % with open-set images.

    python experiments/holdout_annotator.py --out runs/holdout      # forest10.npy, forest30.npy, rows.json
    python experiments/holdout_annotator.py --annotator knn --out runs/holdout-knn
    python experiments/holdout_annotator.py --annotator mlp --out runs/holdout-mlp
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from comining.data import load_arrays
from noise_testbed import FM_SUBSET, tempered_draw



def pca_log_probs(images: np.ndarray, labels: np.ndarray, fit: np.ndarray, components: int, model) -> np.ndarray:
    """[N×C] log-probabilities of ``model`` on ``components`` PCA components of the pixels, both
    fitted on the rows ``fit``; a floor of 1e-3 before the log, so that tempering can reach every class."""
    from sklearn.decomposition import PCA

    x = images.reshape(len(images), -1).astype(np.float32) / 255
    z = PCA(components, random_state=0).fit(x[fit]).transform(x)
    p = model.fit(z[fit], labels[fit]).predict_proba(z) + 1e-3
    return np.log(p / p.sum(1, keepdims=True))


def forest_log_probs(images, labels, fit):
    from sklearn.ensemble import RandomForestClassifier
    return pca_log_probs(images, labels, fit, 30, RandomForestClassifier(n_estimators=100, max_depth=10,
                                                                          random_state=0, n_jobs=1))


def knn_log_probs(images, labels, fit):
    from sklearn.neighbors import KNeighborsClassifier
    return pca_log_probs(images, labels, fit, 40, KNeighborsClassifier(n_neighbors=25, n_jobs=1))


def mlp_log_probs(images, labels, fit):
    from sklearn.neural_network import MLPClassifier
    return pca_log_probs(images, labels, fit, 50, MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0))


# annotator: (its log-probabilities, the training images it is fitted on, its two rates: the draw's and
# the checked row's, with open-set rows too)
ANNOTATORS = {"forest": (forest_log_probs, slice(40000, 50000), (0.30, 0.10), False),
              "knn": (knn_log_probs, slice(50000, 60000), (0.30, 0.10), True),
              "mlp": (mlp_log_probs, slice(10000, 20000), (0.35, 0.15), True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/holdout"))
    parser.add_argument("--annotator", choices=tuple(ANNOTATORS), default="forest")
    args = parser.parse_args()
    log_probs, fit, (target, low), with_open = ANNOTATORS[args.annotator]
    arrays = load_arrays("fashion-mnist")
    images = np.asarray(arrays.train_images)
    clean = np.asarray(arrays.train_labels, dtype=np.int64)
    with threadpool_limits(1):  # PCA rounds differently with more threads, and so would the files
        logp = log_probs(images, clean, np.arange(len(clean))[fit])[:FM_SUBSET]
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = clean.copy()
    drawn[:FM_SUBSET] = tempered_draw(logp, clean[:FM_SUBSET], target, seed=2)
    wrong = (drawn != clean)[:FM_SUBSET].mean()
    checked = np.random.RandomState(3).random_sample(len(clean)) >= low / wrong  # these keep the right label
    rows = {}
    for rate, labels in ((target, drawn), (low, np.where(checked, clean, drawn))):
        name = f"{args.annotator}{round(rate * 100)}"
        np.save(args.out / f"{name}.npy", labels)
        rows[name] = {"file": str(args.out / f"{name}.npy"), "flags": [],
                      "realised": float((labels[:FM_SUBSET] != clean[:FM_SUBSET]).mean())}
        if with_open and rate == target:  # its realised rate counts the open-set images: the run's own
            rows[f"{name}-open"] = {**rows[name], "flags": ["--open-ratio", "0.2"], "realised": None}
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps({k: v["realised"] for k, v in rows.items()}))


if __name__ == "__main__":
    main()
