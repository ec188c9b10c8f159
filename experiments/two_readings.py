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
from comining.forget_rate import last_interval_record
from comining.rundir import RunDir

RULES = ("shipped", "candidate")


def from_run(run: Path) -> dict:
    directory = RunDir(run)
    results = directory.read_results()
    return {"realised": results["n_wrong_labels"] / results["train_size"], "shipped": results["forget_rate"],
            "accuracy": results.get("last10_mean"), "interval": results.get("estimated_noise_rate_interval"),
            **estimates(directory.read_history())}


def from_evidence(path: Path) -> dict:
    saved = np.load(path)
    history = json.loads(str(saved["history"]))
    readings = estimates(history)
    # saved before the disagreement was logged: read it from the saved probabilities of that pass
    readings["disagreement"] = noise_rate.disagreement_share(saved["probs_later"], saved["given"])
    return {"realised": float(saved["realised"]), "shipped": float(saved["shipped"]),
            "interval": last_interval_record(history).get("noise_rate_interval"), **readings}


def estimates(history: list[dict]) -> dict:
    """The first estimate's rate and separation (and its confident joint and anchor points, where
    logged) and, where a second estimate was made, its mixture's rate, its separation, and its
    disagreement share and concentration (where logged), from a run's per-epoch records."""
    first, *later = [r for r in history if "noise_separation" in r]
    readings = {"first": first["estimated_noise_rate"], "first_separation": first["noise_separation"]}
    for key, name in (("confident_joint_noise_rate", "first_joint"), ("anchor_noise_rate", "first_anchors")):
        if key in first:
            readings[name] = first[key]
    if later:
        second = later[0]
        # the mixture's own rate, under whichever key the run stored it (replaced, held, used and capped
        # at the disagreement, or used)
        readings.update(mixture=next(second[k] for k in ("mixture_noise_rate", "unused_noise_rate",
                                                         "uncapped_noise_rate", "estimated_noise_rate")
                                     if k in second),
                        separation=second["noise_separation"])
        if "disagreement_share" in second:
            readings["disagreement"] = second["disagreement_share"]
        if "disagreement_concentration" in second:
            readings["concentration"] = second["disagreement_concentration"]
    return readings


def separates(readings: dict) -> bool:
    """Whether the run made a second estimate whose losses separate (the candidate then uses it)."""
    return "mixture" in readings and readings["separation"] >= noise_rate.MIN_SEPARATION


def candidate(readings: dict) -> float:
    return (readings["mixture"] + readings["disagreement"]) / 2 if separates(readings) else readings["first"]


def intervals(readings: dict) -> dict:
    """Each rule's interval (``noise_rate.rate_interval`` without the confident joint, which these
    runs did not log) at the second estimate: the shipped one from the rate in use to the
    disagreement; the candidate's from the mixture to the disagreement, whose
    mean its rate is (from the first estimate where the losses do not separate)."""
    disagreement = readings.get("disagreement")
    reading = readings["mixture"] if separates(readings) else readings["first"]
    return {"shipped": noise_rate.rate_interval(readings["shipped"], disagreement),
            "candidate": noise_rate.rate_interval(reading, disagreement)}


def row_name(path: Path) -> str:
    """A run's row: its folder and its name without the seed (``path`` a run directory or a testbed .npz)."""
    return f"{path.parent.name}/{re.sub(r'-seed[0-9]+$', '', path.stem if path.suffix else path.name)}"


def accuracy(rule: str, runs: list[dict]) -> str:
    """How close ``rule``'s rate comes to the realised rate over ``runs`` (readings with both)."""
    errors = np.abs([r[rule] - r["realised"] for r in runs])
    return f"{rule}: within 0.05 in {int((errors <= 0.05).sum())} of {len(errors)}, mean absolute error {errors.mean():.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories or testbed .npz files")
    args = parser.parse_args()
    rows = defaultdict(list)
    for path in args.runs:
        readings = from_evidence(path) if path.suffix == ".npz" else from_run(path)
        readings["candidate"] = candidate(readings)
        rows[row_name(path)].append(readings)
    print("| row | runs | realised | " + " | ".join(f"{r} error" for r in RULES) + " |")
    print("|---|---:|---:|" + "---:|" * len(RULES))
    for row, runs in rows.items():
        realised = np.mean([r["realised"] for r in runs])
        print(f"| {row} | {len(runs)} | {realised:.3f} | "
              + " | ".join(f"{np.mean([r[rule] - r['realised'] for r in runs]):+.3f}" for rule in RULES) + " |")
    every = [r for runs in rows.values() for r in runs]
    for rule in RULES:
        spans = [intervals(r)[rule] for r in every]
        covered = sum(low <= r["realised"] <= high for (low, high), r in zip(spans, every))
        print(f"{accuracy(rule, every)}; its interval holds the realised rate in {covered} of {len(every)}, "
              f"mean width {np.mean([high - low for low, high in spans]):.2f}")


if __name__ == "__main__":
    main()
