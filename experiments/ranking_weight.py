"""Does the ranking of labels need the estimated noise rate? (issue 27: ``ranked_by="label_quality"``
should not depend on the estimate.)

The final verdicts rank samples by ``verdicts.label_quality``: the final model's margin, blended with
the training history's trust at a weight. Until 2026-12-07 that weight was max(0.1, 1 − disagreement /
prior), where the prior is the forget rate (the estimate under `auto`): ``shipped`` below, against
which every candidate is compared. This recomputes, from finished run directories (pred_probs.npy, the selection log in checkpoint.pt, verdicts.csv for the truth), the
ranking under each weight and scores it against the true labels:
AUROC of label_quality for wrong against right labels, and the F1 of the lowest-quality samples at
the true count of wrong labels (so no estimate enters the score).

  shipped    max(0.1, 1 − disagreement / the run's forget rate)
  true       the same given the realised rate (what a perfect estimate would give it)
  first      max(0.25, 1 − disagreement / the disagreement logged at the first estimate; for a run
             given the rate, its `auto` sibling's, which trained the same until then): a rate-free
             reading of memorisation (docs/notes/2026-12-06-rate-free-ranking.md)
  w          a fixed weight w (for Standard, whose final network fits every label, a fixed weight
             stands for a rule that gives it the history alone, as its memorised share does: the
             note's candidate; the table prints the fixed weight)
  method     the method's own ``history_weight`` (Standard 1, JoCoR 0.4, the others 0.25): the
             candidate of docs/notes/2026-12-07-history-weight-per-method.md, the rule since

    python experiments/ranking_weight.py RUN_DIR [RUN_DIR ...]

The last table: per group of runs (a run's name without its seed), the mean change of each weight
against ``shipped``, and the worst group and the mean of the groups.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from comining import verdicts
from comining.methods import METHODS
from comining.rundir import RunDir

FIXED = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5)


def shipped_weight(disagree: float, prior: float) -> float:
    """The rule until 2026-12-07: max(0.1, 1 − disagreement / prior), clipped to [0, 1]."""
    return max(0.1, float(np.clip(1.0 - disagree / prior, 0.0, 1.0))) if prior > 0 else 0.1


def load(run: Path):
    stored = RunDir(run)
    rows = stored.read_verdicts()
    index = {name: i for i, name in enumerate(stored.read_data_info(("classes",))["classes"])}
    given = np.array([index[r["given_label"]] for r in rows])
    true = np.array([index.get(r["true_label"], -1) for r in rows])  # open-set images: no known class
    pred = stored.read_pred_probs().astype(np.float64)
    ledger = stored.load_checkpoint()["ledger"]
    history = torch.where(ledger["epochs_ranked"] > 0, ledger["rank_mean"], float("nan")).numpy()
    return given, true, pred, history, float(stored.read_results()["forget_rate"]), stored.read_config()["method"]


def first_disagreement(run: Path) -> float | None:
    """The disagreement share logged at the run's first estimate, or its `auto` sibling's."""
    for candidate in (run, run.with_name(run.name.replace("-true-", "-auto-"))):
        for record in RunDir(candidate).read_history(required=False):
            if "disagreement_share" in record:
                return record["disagreement_share"]
    return None


def scores(quality: np.ndarray, wrong: np.ndarray) -> tuple[float, float]:
    flagged = verdicts.lowest_share(quality, wrong.mean())
    tp = (flagged & wrong).sum()
    f1 = 2 * tp / (flagged.sum() + wrong.sum())
    return roc_auc_score(wrong, -quality), f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    names = ["shipped", "true", "first", *(f"{w}" for w in FIXED), "method"]
    table, groups = {}, defaultdict(list)
    for run in args.runs:
        given, true, pred, history, prior, method = load(run)
        wrong = given != true
        disagree = float((pred.argmax(1) != given).mean())
        first = first_disagreement(run)
        weights = {"shipped": shipped_weight(disagree, prior), "true": shipped_weight(disagree, wrong.mean()),
                   "first": max(0.25, 1 - disagree / first) if first else None, **{f"{w}": w for w in FIXED},
                   "method": METHODS[method].history_weight}
        row = {n: scores(verdicts.label_quality(pred, given, history, w), wrong) if w is not None else (np.nan, np.nan)
               for n, w in weights.items()}
        table[run.name] = (wrong.mean(), prior, weights["shipped"], row)
        groups[f"{run.parent.name}/{re.sub(r'-seed[0-9]+$', '', run.name)}"].append(
            [np.subtract(row[n], row["shipped"]) for n in names])
    print("| run | realised | prior | w(shipped) | " + " | ".join(f"AUROC {n}" for n in names)
          + " | " + " | ".join(f"F1 {n}" for n in names) + " |")
    print("|" + "---|" * (4 + 2 * len(names)))
    for name, (realised, prior, wp, row) in table.items():
        print(f"| {name} | {realised:.3f} | {prior:.3f} | {wp:.2f} | "
              + " | ".join(f"{row[n][0]:.3f}" for n in names) + " | " + " | ".join(f"{row[n][1]:.3f}" for n in names) + " |")
    print("\nmean change against `shipped`, per group of runs\n")
    print("| group | runs | " + " | ".join(f"ΔAUROC {n}" for n in names[1:]) + " | "
          + " | ".join(f"ΔF1 {n}" for n in names[1:]) + " |")
    print("|" + "---|" * (2 + 2 * (len(names) - 1)))
    means = {}
    for group, rows in groups.items():
        means[group] = np.nanmean(rows, axis=0)[1:]  # [weight × (AUROC, F1)], without `shipped` itself
        print(f"| {group} | {len(rows)} | " + " | ".join(f"{m:+.3f}" for m in means[group][:, 0]) + " | "
              + " | ".join(f"{m:+.3f}" for m in means[group][:, 1]) + " |")
    stacked = np.stack(list(means.values()))
    for label, value in (("worst group", np.nanmin(stacked, axis=0)), ("mean of groups", np.nanmean(stacked, axis=0))):
        print(f"| {label} | | " + " | ".join(f"{m:+.3f}" for m in value[:, 0]) + " | "
              + " | ".join(f"{m:+.3f}" for m in value[:, 1]) + " |")


if __name__ == "__main__":
    main()
