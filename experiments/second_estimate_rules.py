"""Rules for `--forget-rate auto`'s second estimate, read off finished `auto` runs (issue 27;
docs/notes/2026-12-07-disagreement-cap.md).

Every rule here trains the same as the shipped code until the second estimate, so one `auto` run
of the shipped code, stopped after it (`--epochs 10` on the Fashion-MNIST and digits presets),
gives the rate each rule would use from then on:

  shipped  the rate the run used (``noise_rate.why_first_holds``: the first estimate, raised by a
           higher second mixture, lowered to it under class-dependent noise)
  mean     the mean of the second mixture and the disagreement where they separate (the candidate
           of docs/notes/2026-12-06-two-readings-estimate.md, not kept)
  cap      the shipped rate, but never above the disagreement read at the second estimate
  min      the first estimate, lowered to the disagreement where that is lower and the second
           estimate's losses separate; no other rule
  cap-1, cap-2, cap-3
           the cap, with one of the three reasons for keeping the first estimate dropped: 1, a second
           estimate whose losses do not separate (a reason of its own in the rule these runs were made
           with, kept here for them; the shipped rule counts such an estimate without a split,
           docs/notes/2026-12-07-fewer-rules-without-split.md); 2, a lower one where the first was
           counted without a split; 3, a lower one under disagreements spread over the classes (runs
           that logged the concentration only)
  raise    the first estimate, raised to the second mixture where its losses separate and it is
           higher, never lowered to it; then capped at the disagreement (the candidate of
           docs/notes/2026-12-07-second-estimate-only-raises.md)

Prints per row (a run's name without its seed) each rule's mean error, then per rule how many runs
land within 0.05 of the realised rate and the mean absolute error, then per row how many runs'
recorded intervals (the shipped rule's) hold the realised rate.

    python experiments/second_estimate_rules.py runs/est10/*-seed?
    python experiments/second_estimate_rules.py runs/testbed/*-seed?.npz    # the testbed's evidence
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from comining import noise_rate
from two_readings import accuracy, from_evidence, from_run, row_name, separates

RULES = ("shipped", "mean", "cap", "min", "cap-1", "cap-2", "cap-3", "raise")


def rates(readings: dict) -> dict:
    """Each rule's rate from one run's readings (``two_readings.from_run``)."""
    out = {"shipped": readings["shipped"], "mean": readings["shipped"], "cap": readings["shipped"],
           "min": readings["first"]}
    if "disagreement" in readings:
        d = readings["disagreement"]
        out["cap"] = min(readings["shipped"], d)
        if separates(readings):
            out["mean"] = (readings["mixture"] + d) / 2
            out["min"] = min(readings["first"], d)
    for reason in (1, 2, 3):
        out[f"cap-{reason}"] = without_reason(readings, reason)
    out["raise"] = raised_then_capped(readings)
    return out


def raised_then_capped(readings: dict) -> float:
    """The ``raise`` rule's rate; the shipped rate of a run without a second estimate."""
    if "disagreement" not in readings:
        return readings["shipped"]
    raised = separates(readings) and readings["mixture"] > readings["first"]
    return noise_rate.capped_by_disagreement(readings["mixture"] if raised else readings["first"],
                                             readings["disagreement"])


def without_reason(readings: dict, reason: int) -> float:
    """The capped rate ``ForgetRate.adopt_second`` would use with reason ``reason`` (1, 2 or 3, as
    in the module docstring) of ``noise_rate.why_first_holds`` dropped; the shipped rate of a run
    without a second estimate."""
    if "disagreement" not in readings or "concentration" not in readings:
        return readings["shipped"]
    second = noise_rate.NoiseEstimate(
        rate=readings["mixture"], separated=reason == 1 or separates(readings), separation=readings["separation"],
        low_mean=0.0, high_mean=0.0, concentration=1.0 if reason == 3 else readings["concentration"],
        disagreement=readings["disagreement"])
    first_separation = np.inf if reason == 2 else readings["first_separation"]
    held = (reason != 1 and not separates(readings)) or \
        noise_rate.why_first_holds(second, readings["first"], first_separation) is not None
    return noise_rate.capped_by_disagreement(readings["first"] if held else second.rate, second.disagreement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+",
                        help="run directories of `auto` runs past their second estimate, or testbed .npz files")
    args = parser.parse_args()
    rows = defaultdict(list)
    for path in args.runs:
        readings = from_evidence(path) if path.suffix == ".npz" else from_run(path)
        interval = readings["interval"]  # None where the run recorded none (made before the interval)
        covered = interval is not None and interval[0] <= readings["realised"] <= interval[1]
        rows[row_name(path)].append({**readings, **rates(readings), "covered": covered})
    print("| row | runs | realised | first | mixture | disagreement | " + " | ".join(f"{r}" for r in RULES) + " |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * len(RULES))
    for row, runs in rows.items():
        realised = np.mean([r["realised"] for r in runs])
        err = lambda key: f"{np.mean([r.get(key, np.nan) - r['realised'] for r in runs]):+.3f}"
        print(f"| {row} | {len(runs)} | {realised:.3f} | {err('first')} | {err('mixture')} | {err('disagreement')} | "
              + " | ".join(err(rule) for rule in RULES) + " |")
    every = [r for runs in rows.values() for r in runs]
    print()
    for rule in RULES:
        print(accuracy(rule, every))
    print("\nthe interval each run recorded (results.json) holds the realised rate:")
    for row, runs in rows.items():
        print(f"  {row}: {sum(r['covered'] for r in runs)} of {len(runs)}")
    print(f"  all: {sum(r['covered'] for r in every)} of {len(every)}")


if __name__ == "__main__":
    main()
