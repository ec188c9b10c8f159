"""The second estimate as the mean of its two readings, against the shipped rule (issue 27;
docs/notes/2026-12-06-two-readings-estimate.md).

At the second estimate of `--forget-rate auto` a run logs the mixture's rate and the disagreement
share (the share of samples whose most probable class is not their label), read in one pass. The
candidate rate is their mean where the losses separate (Ashman's D ≥ 2), else the first estimate.
Both rules train the same until then, so one `auto` run of the shipped code, stopped after its
second estimate, gives both. Reads run directories (metrics.jsonl, results.json; the realised rate
is results.json's wrong labels over training images) or the testbed's saved evidence (``*.npz``,
experiments/noise_testbed.py), and prints per row (a run's name without its seed) the mean error of
each rule, then how many runs each lands within 0.05 and its mean absolute error.

    python experiments/two_readings.py runs/est-check/*-seed? runs/testbed/*-seed?.npz
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from comining import noise_rate

RULES = ("shipped", "candidate")


def from_run(run: Path) -> dict:
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    results = json.loads((run / "results.json").read_text())
    first, *later = [r for r in history if "noise_separation" in r]
    second = later[0] if later else None
    readings = {"realised": results["n_wrong_labels"] / results["train_size"], "shipped": results["forget_rate"],
                "first": first["estimated_noise_rate"]}
    if second is not None:
        mixture = next(second[k] for k in ("mixture_noise_rate", "unused_noise_rate", "estimated_noise_rate") if k in second)
        readings.update(mixture=mixture,
                        disagreement=second["disagreement_share"], separation=second["noise_separation"])
    return readings


def from_evidence(path: Path) -> dict:
    saved = np.load(path)
    history = json.loads(str(saved["history"]))
    first, second = [r for r in history if "noise_separation" in r][:2]
    return {"realised": float(saved["realised"]), "shipped": float(saved["shipped"]),
            "first": first["estimated_noise_rate"],
            "mixture": second.get("unused_noise_rate", second.get("estimated_noise_rate")),
            "disagreement": noise_rate.disagreement_share(saved["probs_later"], saved["given"]),
            "separation": second["noise_separation"]}


def candidate(readings: dict) -> float:
    if "mixture" not in readings or readings["separation"] < noise_rate.MIN_SEPARATION:
        return readings["first"]
    return (readings["mixture"] + readings["disagreement"]) / 2


def intervals(readings: dict) -> dict:
    """Each rule's interval (``noise_rate.rate_interval``) at the second estimate: the shipped one from
    the rate in use to the disagreement; the candidate's from the mixture to the disagreement, whose
    mean its rate is (from the first estimate where the losses do not separate)."""
    disagreement = readings.get("disagreement")
    low_reading = readings["mixture"] if candidate(readings) != readings["first"] else readings["first"]
    return {"shipped": noise_rate.rate_interval(readings["shipped"], disagreement),
            "candidate": noise_rate.rate_interval(low_reading, disagreement)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories or testbed .npz files")
    args = parser.parse_args()
    rows = defaultdict(list)
    for path in args.runs:
        readings = from_evidence(path) if path.suffix == ".npz" else from_run(path)
        readings["candidate"] = candidate(readings)
        rows[f"{path.parent.name}/{re.sub(r'-seed[0-9]+$', '', path.stem if path.suffix else path.name)}"].append(readings)
    print("| row | runs | realised | " + " | ".join(f"{r} error" for r in RULES) + " |")
    print("|---|---:|---:|" + "---:|" * len(RULES))
    for row, runs in rows.items():
        realised = np.mean([r["realised"] for r in runs])
        print(f"| {row} | {len(runs)} | {realised:.3f} | "
              + " | ".join(f"{np.mean([r[rule] - r['realised'] for r in runs]):+.3f}" for rule in RULES) + " |")
    every = [r for runs in rows.values() for r in runs]
    for rule in RULES:
        errors = np.abs([r[rule] - r["realised"] for r in every])
        spans = [intervals(r)[rule] for r in every]
        covered = sum(low <= r["realised"] <= high for (low, high), r in zip(spans, every))
        print(f"{rule}: within 0.05 in {int((errors <= 0.05).sum())} of {len(errors)}, mean absolute error "
              f"{errors.mean():.3f}; its interval holds the realised rate in {covered} of {len(every)}, "
              f"mean width {np.mean([high - low for low, high in spans]):.2f}")


if __name__ == "__main__":
    main()
