"""The pre-registered checks of the probe's count: in the frozen mode
(docs/notes/2026-12-07-frozen-probe-estimate.md), when fine-tuning from the same backbone
(docs/notes/2026-12-07-finetune-probe-estimate.md), and the frozen mode's un-augmented first view
(docs/notes/2026-12-07-frozen-views.md).

For each study folder written by experiments/frozen_backbone_study.py (its runs of the rule before in
STUDY, the probe rule's in STUDY-probe; the fine-tuning runs given the realised rate in STUDY), per
arm and seed: the estimated noise rate against the
realised one, test accuracy, the verdicts' F1 at their own count, the F1 of three rankings at the true
count (the run's label_quality, the probe's normalised margin, their mean), the mean's F1 at the run's
own count (its forget-rate target), and cleanlab's F1 on the same frozen features (5-fold logistic
regression, stratified and shuffled by the seed).

    python experiments/frozen_probe_check.py runs/frozen-study runs/frozen-check-a runs/frozen-big
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "experiments"))
HEADS = ("frozen-linear-K2", "frozen-mlp-K2", "frozen-mlp-K2-ts", "finetune", "finetune-true-rate")
SEEDS = (1, 2, 3)


def check(study: Path) -> list[dict]:
    import comining
    from comining.probe import out_of_fold_probabilities
    from comining.rundir import RunDir
    from frozen_backbone_study import cleanlab_f1, frozen_features
    from label_issues_vs_cleanlab import scores

    truth = json.loads((study / "truth.json").read_text())
    rows = []
    for seed in SEEDS:
        x, given, wrong = frozen_features(study, truth, seed)
        n, count = len(given), int(wrong.sum())
        index = np.arange(n)

        def f1_at(quality, k=count):
            flagged = np.zeros(n, dtype=bool)
            flagged[np.argsort(quality, kind="stable")[:k]] = True
            return scores(flagged, wrong)["f1"]

        probe = out_of_fold_probabilities(x, given, int(given.max()) + 1, seed)
        other = probe.copy()
        other[index, given] = -np.inf
        probe_quality = 0.5 * (1 + probe[index, given] - other.max(1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cleanlab = cleanlab_f1(x, given, wrong, seed)
        for rule, folder in (("shipped", study), ("probe", study.with_name(study.name + "-probe"))):
            for head in HEADS:
                run = folder / f"{head}-seed{seed}"
                if not (run / "results.json").is_file():
                    continue
                results = RunDir(run).read_results()
                quality = np.array([float(r["label_quality"]) for r in comining.load_verdicts(run)])
                rows.append({"study": study.name, "rule": rule, "head": head, "seed": seed,
                             "realised": float(wrong.mean()),
                             "estimate": results.get("estimated_noise_rate", float("nan")),  # nan: rate given
                             "accuracy": results["last10_mean"],
                             "f1": scores(comining.find_label_issues(run), wrong)["f1"],
                             "f1_true_run": f1_at(quality), "f1_true_probe": f1_at(probe_quality),
                             "f1_true_blend": f1_at(0.5 * (quality + probe_quality)),
                             "f1_blend": f1_at(0.5 * (quality + probe_quality), round(results["forget_rate"] * n)),
                             "cleanlab": cleanlab})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path)
    args = parser.parse_args()
    rows = [row for study in args.studies for row in check(study.resolve())]
    keys = ("estimate", "accuracy", "f1", "f1_true_run", "f1_true_probe", "f1_true_blend", "f1_blend", "cleanlab")
    print("| study | rule | head | realised | " + " | ".join(keys) + " |")
    print("|---" * (4 + len(keys)) + "|")
    groups = sorted({(r["study"], r["rule"], r["head"]) for r in rows}, key=lambda g: (g[0], g[1] != "shipped", g[2]))
    for study, rule, head in groups:
        cell = [r for r in rows if (r["study"], r["rule"], r["head"]) == (study, rule, head)]
        means = [f"{np.mean([r[k] for r in cell]):.3f}" for k in keys]
        print(f"| {study} | {rule} | {head} | {cell[0]['realised']:.3f} | " + " | ".join(means) + f" | ({len(cell)} seeds)")
    (Path("runs") / "frozen-probe-check.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
