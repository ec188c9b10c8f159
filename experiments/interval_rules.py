"""Rules for the interval `--forget-rate auto` reports, scored on saved evidence (issue 27;
docs/notes/2026-12-07-interval-third-reading.md).

Rule A, the interval before that note, spans two readings made at the second estimate, the rate
(the mixture's, or the first estimate it keeps, before the cap) and the network's disagreement
with the labels, ± 0.06. Where the errors sit on images the network
finds ambiguous and few labels are wrong, both readings are high: the disagreement counts the
network's own mistakes on right labels as wrong labels. A third reading that leaves out the
disagreements the network is unsure of might reach below them. Candidates for it, each from the
same un-augmented pass (``probs_later`` of experiments/noise_testbed.py's ``evidence`` files):

  joint       the confident joint (``noise_rate.confident_joint_noise_rate``): a disagreement
              counts only where the other class's probability reaches that class's own mean
  sure50      the share of samples put outside their label with a probability of at least 0.5
  own-error   the disagreement less the network's expected error, the mean of 1 − max p with
              the label smoothing undone, on the samples it agrees with

Each rule is the hull of A's readings and, for B-*, one of these, ± a margin; the last table, the
joint's hull with less margin below than above. The shipped rule (``noise_rate.rate_interval``) is
its row 0.04 / 0.06. For each: the share of runs whose interval holds the realised rate (open-set
images count as wrong), the mean width, and the share wider than ``noise_rate.WIDE_INTERVAL``.

    python experiments/interval_rules.py runs/testbed runs/testbed-digits runs/holdout   # choice
    python experiments/interval_rules.py runs/holdout-knn                                # check
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from comining import noise_rate
from noise_estimates import unsmoothed

MARGINS = (0.03, 0.04, 0.05, 0.06, 0.07, 0.08)
BELOW = (0.0, 0.02, 0.04)


def readings(path: Path) -> dict:
    """The realised rate, rule A's two readings and the third readings, for one run."""
    d = np.load(path)
    labels, probs = d["given"], d["probs_later"]
    history = json.loads(str(d["history"]))
    second = history[-1]  # the record of the second estimate (the evidence run stops after it)
    assert "disagreement_concentration" in second, f"{path}: no second estimate in its last record"
    first = next(r for r in history if "estimated_noise_rate" in r)
    # The rate the shipped interval spans: the second estimate's before the cap, or the first's where it held.
    rate = second.get("uncapped_noise_rate", second.get("estimated_noise_rate", first["estimated_noise_rate"]))
    shipped = tuple(sorted((rate, second["disagreement_share"])))
    recorded = noise_rate.rate_interval(*shipped, second.get("confident_joint_noise_rate"))  # by the code it ran
    assert np.allclose(recorded, second["noise_rate_interval"]), path
    dis = noise_rate.disagreement_share(probs, labels)
    agree = probs.argmax(1) == labels
    own = 1 - unsmoothed(probs, float(d["epsilon"])).max(1)
    return {"realised": float(d["realised"]), "shipped": shipped, "disagreement": dis,
            "joint": noise_rate.confident_joint_noise_rate(probs, labels),
            "sure50": float(((~agree) & (probs.max(1) >= 0.5)).mean()),
            "own-error": dis - float(own[agree].mean()) * float(agree.mean())}


def interval(run: dict, third: str | None, margin: float, below: float | None = None) -> tuple[float, float]:
    """``noise_rate.rate_interval`` of A's readings and ``third`` in the joint's place: ``below`` lower
    and ``margin`` higher (``below`` = ``margin`` unless given; without a third reading, ± ``margin``)."""
    return noise_rate.rate_interval(*run["shipped"], run[third] if third else None, margin=margin,
                                    below_joint=margin if below is None else below)


def score(runs: dict, third: str | None, margin: float, below: float | None = None) -> str:
    """One table row's cells: coverage, mean width, how many wide, the rows missed and how often."""
    held, widths, missed = 0, [], defaultdict(int)
    for name, run in runs.items():
        low, high = interval(run, third, margin, below)
        ok = low <= run["realised"] <= high
        held += ok
        widths.append(high - low)
        if not ok:
            missed[name.rsplit("-seed", 1)[0]] += 1
    wide = sum(w > noise_rate.WIDE_INTERVAL for w in widths)
    return (f"{held} of {len(runs)} ({held / len(runs):.0%}) | {np.mean(widths):.2f} | {wide} of {len(runs)} | "
            + ", ".join(f"{k} {v}" for k, v in missed.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    runs = {}
    for folder in args.folders:
        for path in sorted(folder.glob("*-seed*.npz")):
            runs[f"{folder.name}/{path.stem}"] = readings(path)
    rows = defaultdict(list)
    for name, run in runs.items():
        rows[name.rsplit("-seed", 1)[0]].append(run)
    print(f"{len(runs)} runs\n\nper row, mean over seeds (reading − realised):")
    print("| row | realised | A's lower | A's higher | disagreement | joint | sure50 | own-error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row, members in rows.items():
        r = np.mean([m["realised"] for m in members])
        cells = [np.mean([m["shipped"][0] for m in members]) - r, np.mean([m["shipped"][1] for m in members]) - r,
                 *[np.mean([m[k] for m in members]) - r for k in ("disagreement", "joint", "sure50", "own-error")]]
        print(f"| {row} | {r:.3f} | " + " | ".join(f"{c:+.3f}" for c in cells) + " |")
    print("\n| rule | margin | covered | mean width | wider than 0.2 | rows not always covered |")
    print("|---|---:|---:|---:|---:|---|")
    for third in (None, "joint", "sure50", "own-error"):
        for margin in MARGINS:
            rule = "A (rate, disagreement)" if third is None else f"B-{third}"
            print(f"| {rule} | {margin:.2f} | {score(runs, third, margin)} |")
    print("\nthe joint's hull with a smaller margin below than above (0.04 / 0.06: the shipped rule):\n")
    print("| margin below | margin above | covered | mean width | wider than 0.2 | rows not always covered |")
    print("|---:|---:|---:|---:|---:|---|")
    for below in BELOW:
        for margin in MARGINS[2:]:
            print(f"| {below:.2f} | {margin:.2f} | {score(runs, 'joint', margin, below)} |")


if __name__ == "__main__":
    main()
