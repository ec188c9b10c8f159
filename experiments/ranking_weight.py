"""Does the ranking of labels need the estimated noise rate? (issue 27: ``ranked_by="label_quality"``
should not depend on the estimate.)

The final verdicts rank samples by ``verdicts.label_quality``: the final model's margin blended with
the training history's trust, the history's share being max(0.1, ``memorised_share``), which reads
the prior (the estimated rate). This recomputes, from finished run directories (pred_probs.npy,
verdicts.csv, the selection log in checkpoint.pt), the ranking under three history weights and
scores each against the true labels: AUROC of label_quality for wrong against right labels, and the
F1 of the lowest-quality samples at the true count of wrong labels (so no estimate enters the score).

  weight=prior   the shipped rule, with the run's own forget rate as prior
  weight=true    the same rule given the realised rate (what a perfect estimate would give)
  weight=w       a fixed weight w, no estimate at all

    python experiments/ranking_weight.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from comining import verdicts

FIXED = (0.1, 0.2, 0.3, 0.5)


def load(run: Path):
    rows = list(csv.DictReader(open(run / "verdicts.csv")))
    classes = json.loads((run / "data.json").read_text())["classes"]
    index = {name: i for i, name in enumerate(classes)}
    given = np.array([index[r["given_label"]] for r in rows])
    true = np.array([index.get(r["true_label"], -1) for r in rows])  # open-set images: no known class
    pred = np.load(run / "pred_probs.npy").astype(np.float64)
    ledger = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["ledger"]
    history = torch.where(ledger["epochs_ranked"] > 0, ledger["rank_mean"], float("nan")).numpy()
    results = json.loads((run / "results.json").read_text())
    return given, true, pred, history, float(results["forget_rate"])


def scores(quality: np.ndarray, wrong: np.ndarray) -> tuple[float, float]:
    flagged = verdicts.lowest_share(quality, wrong.mean())
    tp = (flagged & wrong).sum()
    f1 = 2 * tp / (flagged.sum() + wrong.sum())
    return roc_auc_score(wrong, -quality), f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    names = ["prior", "true", *(f"{w}" for w in FIXED)]
    table = {}
    for run in args.runs:
        given, true, pred, history, prior = load(run)
        wrong = given != true
        disagree = float((pred.argmax(1) != given).mean())
        weights = {"prior": max(verdicts.HISTORY_WEIGHT, verdicts.memorised_share(disagree, prior)),
                   "true": max(verdicts.HISTORY_WEIGHT, verdicts.memorised_share(disagree, wrong.mean())),
                   **{f"{w}": w for w in FIXED}}
        row = {n: scores(verdicts.label_quality(pred, given, history, weights[n]), wrong) for n in names}
        table[run.name] = (wrong.mean(), prior, weights["prior"], weights["true"], row)
    print("| run | realised | prior | w(prior) | w(true) | " + " | ".join(f"AUROC {n}" for n in names)
          + " | " + " | ".join(f"F1 {n}" for n in names) + " |")
    print("|" + "---|" * (5 + 2 * len(names)))
    for name, (realised, prior, wp, wt, row) in table.items():
        print(f"| {name} | {realised:.3f} | {prior:.3f} | {wp:.2f} | {wt:.2f} | "
              + " | ".join(f"{row[n][0]:.3f}" for n in names) + " | " + " | ".join(f"{row[n][1]:.3f}" for n in names) + " |")
    mean = {n: np.mean([v[4][n] for v in table.values()], axis=0) for n in names}
    print("| mean | | | | | " + " | ".join(f"{mean[n][0]:.3f}" for n in names) + " | "
          + " | ".join(f"{mean[n][1]:.3f}" for n in names) + " |")


if __name__ == "__main__":
    main()
