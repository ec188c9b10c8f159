"""Where the noise-rate estimate's two special cases for losses that do not separate act, and what
dropping each changes (issue 27; docs/notes/2026-12-07-fewer-rules-without-split.md).

S1 acts on a run whose first estimate did not separate and whose anchor points read above the
confident joint (the rate is then the anchors'); S2 on a run whose second estimate did not separate.
Given the shipped runs (`comining table ... --forget-rate auto` run directories), prints for each
run its readings and which candidates act on it; given ``--against DIR`` (a candidate's runs of the
same names), also the candidate's rate and last-10 accuracy beside the shipped run's, and the
check's three clauses over the runs that differ.

    python experiments/without_split_rules.py runs/simpler/shipped/*/*-seed?
    python experiments/without_split_rules.py runs/simpler/shipped/*/*-seed? --against runs/simpler/s1
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from comining import noise_rate
from two_readings import from_run, row_name

WITHIN = 0.05
COLLAPSE = 10.0  # points below the shipped row's median


def reading(run: Path) -> dict:
    """``two_readings.from_run``'s readings of ``run``, with its row, seed and the rate it used."""
    readings = from_run(run)
    return {**readings, "row": row_name(run), "seed": int(re.search(r"seed(\d+)$", run.name).group(1)),
            "rate": readings["shipped"]}


def acts(r: dict) -> str:
    s1 = "first_anchors" in r and r["first_anchors"] > r["first_joint"]
    s2 = r.get("separation", np.inf) < noise_rate.MIN_SEPARATION
    return ",".join(name for name, on in (("S1", s1), ("S2", s2)) if on) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="the shipped rule's run directories")
    parser.add_argument("--against", type=Path, help="a candidate's runs: DIR/<dataset>/<run name>")
    args = parser.parse_args()
    finished = [run for run in args.runs if (run / "results.json").exists()]
    shipped = [reading(run) for run in finished]
    medians = {row: np.median([r["accuracy"] for r in shipped if r["row"] == row]) for row in {r["row"] for r in shipped}}
    print("| row | seed | realised | first D | joint | anchors | second D | acts | rate (error) | acc. |"
          + (" candidate rate (error) | acc. |" if args.against else ""))
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|" + ("---|---:|" if args.against else ""))
    changed = defaultdict(list)
    for r, run in sorted(zip(shipped, finished), key=lambda p: (p[0]["row"], p[0]["seed"])):
        joint = f"{r['first_joint']:.3f}" if "first_joint" in r else "–"
        anchors = f"{r['first_anchors']:.3f}" if "first_anchors" in r else "–"
        line = (f"| {r['row']} | {r['seed']} | {r['realised']:.3f} | {r['first_separation']:.2f} | {joint} | "
                f"{anchors} | {r.get('separation', float('nan')):.2f} | {acts(r)} | {r['rate']:.3f} "
                f"({r['rate'] - r['realised']:+.3f}) | {r['accuracy']:.2f} |")
        other = args.against / run.parent.name / run.name if args.against else None
        if other is not None and (other / "results.json").exists():
            c = reading(other)
            line += f" {c['rate']:.3f} ({c['rate'] - c['realised']:+.3f}) | {c['accuracy']:.2f} |"
            changed[r["row"]].append((r, c))
        elif other is not None:
            line += " same | |"
        print(line)
    if not changed:
        return
    pairs = [p for row in changed.values() for p in row]
    near = lambda x: abs(x["rate"] - x["realised"]) <= WITHIN
    collapsed = lambda x: x["accuracy"] <= medians[x["row"]] - COLLAPSE
    print(f"\nruns made again: {len(pairs)}")
    print(f"1. within {WITHIN}: shipped {sum(near(s) for s, _ in pairs)}, candidate {sum(near(c) for _, c in pairs)}")
    print(f"2. mean accuracy, candidate − shipped: {np.mean([c['accuracy'] - s['accuracy'] for s, c in pairs]):+.2f}; "
          f"collapsed: shipped {sum(collapsed(s) for s, _ in pairs)}, candidate {sum(collapsed(c) for _, c in pairs)}")
    for row in sorted(medians):
        same = [r for r in shipped if r["row"] == row]
        swapped = {c["seed"]: c for s, c in changed.get(row, [])}
        mean = lambda runs: np.mean([x["rate"] - x["realised"] for x in runs])
        print(f"3. {row}: mean error shipped {mean(same):+.3f}, "
              f"candidate {mean([swapped.get(r['seed'], r) for r in same]):+.3f}")


if __name__ == "__main__":
    main()
