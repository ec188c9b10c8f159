"""Label files from an annotator that no rule of issue 27 was chosen on: a check for `auto`.

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

    python experiments/holdout_annotator.py --out runs/holdout      # forest10.npy, forest30.npy, rows.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from comining.data import load_arrays
from noise_testbed import FM_SUBSET, tempered_draw

FIT = slice(40000, 50000)
TARGET, LOW = 0.30, 0.10


def forest_log_probs(images: np.ndarray, labels: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """[N×C] log-probabilities of a random forest on 30 PCA components, fitted on the rows ``fit``;
    a floor of 1e-3 before the log, so that tempering can reach every class."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier

    x = images.reshape(len(images), -1).astype(np.float32) / 255
    z = PCA(30, random_state=0).fit(x[fit]).transform(x)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=1).fit(z[fit], labels[fit])
    p = forest.predict_proba(z) + 1e-3
    return np.log(p / p.sum(1, keepdims=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/holdout"))
    args = parser.parse_args()
    arrays = load_arrays("fashion-mnist")
    images = np.asarray(arrays.train_images)
    clean = np.asarray(arrays.train_labels, dtype=np.int64)
    with threadpool_limits(1):  # PCA rounds differently with more threads, and so would the files
        logp = forest_log_probs(images, clean, np.arange(len(clean))[FIT])[:FM_SUBSET]
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = clean.copy()
    drawn[:FM_SUBSET] = tempered_draw(logp, clean[:FM_SUBSET], TARGET, seed=2)
    wrong = (drawn != clean)[:FM_SUBSET].mean()
    checked = np.random.RandomState(3).random_sample(len(clean)) >= LOW / wrong  # these keep the right label
    rows = {}
    for name, labels in ((f"forest{round(TARGET * 100)}", drawn), (f"forest{round(LOW * 100)}", np.where(checked, clean, drawn))):
        np.save(args.out / f"{name}.npy", labels)
        rows[name] = {"file": str(args.out / f"{name}.npy"), "flags": [],
                      "realised": float((labels[:FM_SUBSET] != clean[:FM_SUBSET]).mean())}
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps({k: v["realised"] for k, v in rows.items()}))


if __name__ == "__main__":
    main()
