"""The issue-30 table: DivideMix against the default Co-mining, from the study's run directories.

    COMMON="--dataset fashion-mnist --train-subset 3200 --test-subset 2000" \
        experiments/run_cells.sh 2 experiments/dividemix_queue.txt
    python experiments/summarise_dividemix.py runs/dm-study
    python experiments/summarise_dividemix.py runs/human-rows comining-true   # or comining-auto
    python experiments/summarise_dividemix.py runs/testbed-acc comining-true dividemix-lu0   # DivideMix at λ_u 0
    python experiments/summarise_dividemix.py runs/dm-study comining dividemix runs/dm-study-tau07   # a rerun row

Per row: each method's mean ± sample std over seeds of the last-10 mean test accuracy, the paired
difference Co-mining − DivideMix per seed, the F1 of each run's final verdicts at finding the wrong
labels (verdicts.csv's true_label against given_label; open-set samples count as wrong), and the
median seconds per run as results.json records them. Only seeds where both methods finished are
paired; a row shows how many.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np



def run_record(run: Path) -> dict:
    """{accuracy, f1, seconds} of one finished run: the last-10 mean, the F1 of its final verdicts at
    finding the wrong labels, and its seconds."""
    with open(run / "verdicts.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    wrong = np.array([r["true_label"] != r["given_label"] for r in rows])
    flagged = np.array([r["verdict"] != "clean" for r in rows])
    caught = (wrong & flagged).sum()
    f1 = 2 * caught / max(wrong.sum() + flagged.sum(), 1)
    record = json.loads((run / "results.json").read_text())
    return {"accuracy": record["last10_mean"], "f1": float(f1), "seconds": record["seconds"]}


def cell(folder: Path, row: str, method: str) -> dict[int, dict]:
    """seed → {accuracy, f1, seconds} of the finished runs of one (row, method) cell."""
    return {int(results.parent.name.rsplit("seed", 1)[1]): run_record(results.parent)
            for results in sorted(folder.glob(f"{row}-{method}-seed*/results.json"))}


def mean_std(values: list[float], digits: int = 2) -> str:
    if not values:
        return "–"
    std = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.{digits}f} ± {std:.{digits}f}"


def print_pairs(runs: Path, pairs: list[tuple[str, str, str, str, str]]) -> None:
    """Paired tables from ``pairs`` of (table, row, arm, base pattern, arm pattern), each pattern a run
    directory under ``runs`` with {s} for the seed: per pair the base's and the arm's mean ± sample std
    of the last-10 mean, the differences arm − base per seed, and both verdict F1s. Only seeds where
    both finished are paired; a pair with none is left out."""
    table = None
    for name, row, arm, base, new in pairs:
        seeds = [s for s in range(1, 10) if (runs / base.format(s=s) / "results.json").exists()
                 and (runs / new.format(s=s) / "results.json").exists()]
        if not seeds:
            continue
        if name != table:
            print(f"\n{name}\n\n| row | arm | seeds | base | arm | arm − base per seed (mean) | F1 base / arm |")
            print("|---|---|---|---:|---:|---|---|")
            table = name
        a = [run_record(runs / base.format(s=s)) for s in seeds]
        b = [run_record(runs / new.format(s=s)) for s in seeds]
        diffs = [y["accuracy"] - x["accuracy"] for x, y in zip(a, b)]
        print(f"| {row} | {arm} | {','.join(map(str, seeds))} | {mean_std([x['accuracy'] for x in a])} "
              f"| {mean_std([y['accuracy'] for y in b])} | {', '.join(f'{d:+.2f}' for d in diffs)} "
              f"({np.mean(diffs):+.2f}) | {np.mean([x['f1'] for x in a]):.3f} / {np.mean([y['f1'] for y in b]):.3f} |")


def main(folder: Path, comining: str = "comining", dividemix: str = "dividemix", dm_folder: str = "") -> int:
    """``comining``, ``dividemix``: the names the two methods' run directories carry, before "-seed"
    (testbed_accuracy_queue.sh runs Co-mining given the realised rate, "comining-true", and with auto,
    "comining-auto"; DivideMix at another λ_u is e.g. "dividemix-lu0"). ``dm_folder``: where DivideMix's
    runs are, when not in ``folder`` (a row rerun with another setting)."""
    names = {"comining": (folder, comining), "dividemix": (Path(dm_folder) if dm_folder else folder, dividemix)}
    rows = sorted(set.intersection(*({p.name.split(f"-{name}-seed")[0] for p in where.glob(f"*-{name}-seed*")}
                                     for where, name in names.values())))
    print("| noise | seeds | Co-mining | DivideMix | Co-mining − DivideMix per seed (mean) "
          "| verdict F1 Co-mining | verdict F1 DivideMix | s per run (Co-mining / DivideMix) |")
    print("|---|---|---:|---:|---|---:|---:|---:|")
    for row in rows:
        runs = {method: cell(where, row, name) for method, (where, name) in names.items()}
        seeds = sorted(set(runs["comining"]) & set(runs["dividemix"]))
        if not seeds:
            continue
        pick = {m: {k: [runs[m][s][k] for s in seeds] for k in ("accuracy", "f1", "seconds")} for m in ("comining", "dividemix")}
        diffs = [runs["comining"][s]["accuracy"] - runs["dividemix"][s]["accuracy"] for s in seeds]
        shown = ", ".join(f"{d:+.2f}" for d in diffs)
        print(f"| {row} | {','.join(map(str, seeds))} | {mean_std(pick['comining']['accuracy'])} "
              f"| {mean_std(pick['dividemix']['accuracy'])} | {shown} ({np.mean(diffs):+.2f}) "
              f"| {mean_std(pick['comining']['f1'], 3)} | {mean_std(pick['dividemix']['f1'], 3)} "
              f"| {np.median(pick['comining']['seconds']):.0f} / {np.median(pick['dividemix']['seconds']):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/dm-study"), *sys.argv[2:5]))
