"""Issue 27's scorecard of `--forget-rate auto`, row by row, on saved evidence, with the reason for
each miss measured rather than argued.

For every run of ``experiments/noise_testbed.py evidence`` (10 epochs, Co-mining; the estimate after
epoch 10 is the one a 40-epoch run trains and flags with, since both train alike until then):

  estimate    the rate the run adopted at its second estimate (``shipped_after10``), and what set it:
              "first" (the first estimate stood), "raised" or "lowered" (the second mixture replaced
              it, higher or lower), or "cap" (the disagreement capped either)
  within      |estimate − realised| ≤ 0.05, the issue's estimate target
  count       the verdicts flag round(estimate·N) samples (``verdicts.lowest_share``, which adds ties),
              so the count target (within 15 % of the wrong labels, or 3 % of all samples where
              looser) is inferred to hold where |estimate − realised| ≤ max(0.15·realised, 0.03)
  interval    whether the run's recorded interval holds the realised rate

and the network's disagreement with the labels, split into what makes it err. With ρ the realised
rate, ``e`` the share of right labels the network puts in another class (its own mistakes) and ``s``
the share of wrong labels it puts in their given class (wrong labels it has learned):

    disagreement = ρ + e·(1 − ρ) − s·ρ

exactly, on the pass the second estimate read (``probs_later``). Where the cap sets the rate (the
estimate is the disagreement), e·(1 − ρ) − s·ρ is the estimate's error; the split says which of the
two terms makes it. ``s`` is also given for the open-set images alone (``s_open``), whose labels are
wrong by construction: a network that puts them in their given class cannot count them.

    python experiments/estimate_scorecard.py runs/testbed runs/testbed-digits
    python experiments/estimate_scorecard.py --runs runs/testbed     # each run's readings instead
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from two_readings import estimates

WITHIN = 0.05
COUNT_SHARE, COUNT_FLOOR = 0.15, 0.03


def score(path: Path) -> dict:
    """One run's line of the scorecard."""
    d = np.load(path)
    given, true, probs = d["given"], d["true"], d["probs_later"]
    realised, estimate = float(d["realised"]), float(d["shipped_after10"])
    wrong = given != true
    assert np.isclose(wrong.mean(), realised), f"{path}: realised {realised} but {wrong.mean()} labels wrong"
    agrees = probs.argmax(1) == given
    open_set = true >= int(d["num_classes"])
    history = json.loads(str(d["history"]))
    second = history[-1]
    assert np.isclose(second["estimated_noise_rate"] if "estimated_noise_rate" in second else estimate, estimate)
    logged = estimates(history)  # the first estimate, and the second mixture's own rate
    first, mixture = logged["first"], logged["mixture"]
    replaced = "unused_noise_rate" not in second
    low, high = second["noise_rate_interval"]
    error = estimate - realised
    return {
        "realised": realised, "estimate": estimate, "error": error,
        "within": abs(error) <= WITHIN,
        "count": abs(error) <= max(COUNT_SHARE * realised, COUNT_FLOOR),
        "interval": low <= realised <= high,
        "set_by": "cap" if "uncapped_noise_rate" in second else
                  "first" if not replaced else "raised" if mixture > first else "lowered",
        "first": first, "mixture": mixture, "replaced": replaced,
        "joint": second.get("confident_joint_noise_rate"), "concentration": logged.get("concentration"),
        "disagreement": float((~agrees).mean()),
        "e": float((~agrees[~wrong]).mean()),
        "s": float(agrees[wrong].mean()) if wrong.any() else 0.0,
        "s_open": float(agrees[open_set].mean()) if open_set.any() else None,
    }


def rows_of(folder: Path) -> dict[str, list[dict]]:
    """Scorecard lines by row, in the order of the folder's rows.json where it has one, seeds in order."""
    rows = defaultdict(list)
    for path in sorted(folder.glob("*-seed*.npz"), key=lambda p: int(re.search(r"-seed(\d+)$", p.stem)[1])):
        rows[re.sub(r"-seed\d+$", "", path.stem)].append(score(path))
    listed = folder / "rows.json"
    order = list(json.loads(listed.read_text())) if listed.exists() else []
    return dict(sorted(rows.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0])))


def fmt(x: float) -> str:
    return f"{x:+.3f}"


def table(rows: dict[str, list[dict]]) -> str:
    lines = ["| row | realised | estimates (set by) | median error | within 0.05 | count within target | interval holds "
             "| e·(1−ρ) | −s·ρ | s on open-set |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    totals = defaultdict(int)
    for row, runs in rows.items():
        rho = float(np.mean([r["realised"] for r in runs]))  # the labels are fixed per row
        estimates = ", ".join(f"{r['estimate']:.3f} ({r['set_by']})" for r in runs)
        own = np.mean([r["e"] * (1 - r["realised"]) for r in runs])
        learned = np.mean([r["s"] * r["realised"] for r in runs])
        s_open = [r["s_open"] for r in runs if r["s_open"] is not None]
        counts = {k: sum(r[k] for r in runs) for k in ("within", "count", "interval")}
        for k, v in counts.items():
            totals[k] += v
        totals["runs"] += len(runs)
        lines.append(f"| {row} | {rho:.3f} | {estimates} | {fmt(float(np.median([r['error'] for r in runs])))} "
                     f"| {counts['within']} of {len(runs)} | {counts['count']} of {len(runs)} "
                     f"| {counts['interval']} of {len(runs)} | {fmt(own)} | {fmt(-learned)} "
                     f"| {f'{np.mean(s_open):.2f}' if s_open else '–'} |")
    n = totals["runs"]
    lines.append(f"| all | | | | {totals['within']} of {n} | {totals['count']} of {n} | {totals['interval']} of {n} | | | |")
    return "\n".join(lines)


def readings(rows: dict[str, list[dict]]) -> str:
    """Each run's readings at the second estimate, and whether its mixture replaced the first estimate."""
    lines = ["| row | seed | realised | first | second mixture | replaced it | disagreement | joint | concentration "
             "| rate used (set by) |", "|---|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for row, runs in rows.items():
        for seed, r in enumerate(runs, 1):
            concentration = "–" if r["concentration"] is None else f"{r['concentration']:.2f}"
            lines.append(f"| {row} | {seed} | {r['realised']:.3f} | {r['first']:.3f} | {r['mixture']:.3f} "
                         f"| {'yes' if r['replaced'] else 'no'} | {r['disagreement']:.3f} | {r['joint']:.3f} "
                         f"| {concentration} | {r['estimate']:.3f} ({r['set_by']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of noise_testbed.py evidence files")
    parser.add_argument("--runs", action="store_true", help="each run's readings (seeds numbered in order) instead")
    args = parser.parse_args()
    for folder in args.folders:
        print(f"\n### {folder}\n")
        print(readings(rows_of(folder)) if args.runs else table(rows_of(folder)))


if __name__ == "__main__":
    main()
