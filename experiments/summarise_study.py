"""Tables of the issue-11 study (docs/RESULTS.md) from its run directories.

    python experiments/summarise_study.py study

Prints the screening table (each candidate's mean ± sample std over seeds, and in brackets the mean
paired difference to the default recipe on the same seeds) and the `--forget-rate auto` table (each
seed's estimates, the realised rate, and the accuracy with the estimate and with the true rate). The
comparison with the baselines is `comining table`'s own output (run its command again: every cell
exists, so nothing trains).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROWS = ["sym20", "sym50", "sym80", "asym40", "sym20-open20"]
CANDIDATES = {"default": "`default` recipe", "ww": "two weak views (`--aug ww`)",
              "ramp": "forget-rate ramp (`--forget-ramp`)", "warm2": "warm-up 2 epochs (`--warmup 2`)",
              "warm10": "warm-up 10 epochs (`--warmup 10`)",
              "reconf": "relabel from confident entries (`--re-confident-bank`)"}


def runs(folder: Path | list[Path], row: str, method: str = "comining") -> dict[int, dict]:
    """seed → results.json of the finished runs of one cell, in one folder or gathered from several."""
    found = {}
    for one in folder if isinstance(folder, list) else [folder]:
        for path in one.glob(f"{row}-{method}-seed*/results.json"):
            found[int(path.parent.name.rsplit("seed", 1)[1])] = json.loads(path.read_text())
    return found


# The CPU screening of 2026-11-25 (study/cpu-screen), each against `default` on the same machine.
CPU_CANDIDATES = {"default": "`default` recipe", "peer": "a second network picks C (`--select-by peer`)",
                  "given": "score on the given label (`--score-target given`)",
                  "weak": "score on the weak view (`--select-on weak`)",
                  "wre1": "relabelled D at full weight (`--w-re 1`)",
                  "eps02": "label smoothing ε 0.2 (`--epsilon 0.2`)"}

# The CPU screening on top of the default without the consistency term (study/cpu-screen3), each
# against that default's cells (study/cpu-screen2/wpc0).
WPC0_CANDIDATES = {"eps02": "label smoothing ε 0.2 (`--epsilon 0.2`)",
                   "ceweak": "labels fitted on the weak view only (`--ce-on weak`)",
                   "augww": "two weak views (`--aug ww`)",
                   "wre01": "relabelled D at weight 0.1 (`--w-re 0.1`)"}


def last_precision(run_dir: Path) -> float:
    """Label precision of the clean set in the run's last epoch."""
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["label_precision"]


def screening(folder: Path, candidates: dict, precision: bool = False, seeds=(1, 2, 3), reference: Path = None) -> str:
    """Each candidate's mean ± sample std over ``seeds`` per row, and in brackets the mean paired difference
    to the reference (``folder/default`` unless given) on the same seeds; with ``precision``, the mean
    label precision of the last clean set."""
    lines = ["| candidate (alone, on top of `default`) | " + " | ".join(ROWS) + " |",
             "|---|" + "---:|" * len(ROWS)]

    def cell(path, row):
        return {seed: result for seed, result in runs(path, row).items() if seed in seeds}

    paired_with = {row: cell(reference or folder / "default", row) for row in ROWS}
    for name, title in candidates.items():
        cells = []
        for row in ROWS:
            found = cell(folder / name, row)
            if not found:
                cells.append("—")
                continue
            means = [found[s]["last10_mean"] for s in sorted(found)]
            text = f"{np.mean(means):.2f} ± {np.std(means, ddof=1) if len(means) > 1 else 0:.2f}"
            if name != "default" or reference is not None:
                paired = [found[s]["last10_mean"] - paired_with[row][s]["last10_mean"]
                          for s in sorted(found) if s in paired_with[row]]
                text += f" ({np.mean(paired):+.2f})" if paired else ""
            if precision:
                text += f" [{np.mean([last_precision(folder / name / f'{row}-comining-seed{s}') for s in found]):.3f}]"
            if len(found) < 3:
                text += f" ({len(found)} seed{'s' if len(found) > 1 else ''})"
            cells.append(text)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(candidate, reference, rows=ROWS) -> str:
    """Per row: the reference's and the candidate's mean ± sample std over the seeds both have, each
    seed's difference candidate − reference, and the mean label precision of the last clean sets."""
    lines = ["| row | seeds | before | after | after − before, per seed (mean) | precision of C, before → after |",
             "|---|---|---:|---:|---|---|"]
    for row in rows:
        after, before = runs(candidate, row), runs(reference, row)
        seeds = sorted(set(after) & set(before))
        if not seeds:
            continue
        a, b = ([runs_[s]["last10_mean"] for s in seeds] for runs_ in (after, before))
        precision = [np.mean([runs_[s]["label_precision"] for s in seeds]) for runs_ in (before, after)]
        span = f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ", ".join(map(str, seeds))
        lines.append(f"| {row} | {span} | {np.mean(b):.2f} ± {np.std(b, ddof=1):.2f} | "
                     f"{np.mean(a):.2f} ± {np.std(a, ddof=1):.2f} | "
                     + ", ".join(f"{x - y:+.2f}" for x, y in zip(a, b)) + f" ({np.mean(a) - np.mean(b):+.2f}) | "
                     f"{precision[0]:.3f} → {precision[1]:.3f} |")
    return "\n".join(lines)


def estimates(run_dir: Path) -> str:
    """Every estimate a run made, from its metrics.jsonl: "0.807 (D 2.9) → 0.433 (D 2.9)", an estimate
    that was not used (its losses did not separate) struck through."""
    made = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "noise_separation" in record:
            used = "estimated_noise_rate" in record
            rate = record["estimated_noise_rate" if used else "unused_noise_rate"]
            text = f"{rate:.3f} (D {record['noise_separation']:.2f})"
            made.append(text if used else f"~~{text}~~")
    return " → ".join(made)


def auto_rate(auto_dir: Path, true_dir: Path | list[Path], rows=ROWS, every_estimate: bool = False) -> str:
    """Per row and seed: the realised and estimated noise rates of the `--forget-rate auto` runs in
    ``auto_dir``, and their accuracy beside that of the run given the true rate in ``true_dir``; with
    ``every_estimate``, also each estimate the run made (after warm-up, and again later)."""
    extra = " estimates made |" if every_estimate else ""
    lines = [f"| row | seed | realised |{extra} estimate used | error | accuracy, auto | accuracy, true rate | auto − true |",
             "|---|---:|---:|" + ("---|" if every_estimate else "") + "---:|---:|---:|---:|---:|"]
    for row in rows:
        auto, true = runs(auto_dir, row), runs(true_dir, row)
        for seed in sorted(auto):
            a = auto[seed]
            realised, estimate = a["noise"]["wrong_labels"], a["estimated_noise_rate"]
            t = true.get(seed)
            made = f" {estimates(auto_dir / f'{row}-comining-seed{seed}')} |" if every_estimate else ""
            lines.append(f"| {row} | {seed} | {realised:.3f} |{made} {estimate:.3f} | {estimate - realised:+.3f} | "
                         f"{a['last10_mean']:.2f} | {t['last10_mean'] if t else float('nan'):.2f} | "
                         f"{a['last10_mean'] - t['last10_mean'] if t else float('nan'):+.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    study = Path(sys.argv[1] if len(sys.argv) > 1 else "study")
    print(screening(study / "screen", CANDIDATES), "\n")
    print(screening(study / "cpu-screen", CPU_CANDIDATES, precision=True), "\n")
    print(auto_rate(study / "auto", study / "none"), "\n")
    # 2026-11-25, on the CPU: candidates on top of today's default (w_pc 0), and `auto` with it
    print(screening(study / "cpu-screen3", WPC0_CANDIDATES, precision=True, reference=study / "cpu-screen2/wpc0"), "\n")
    print(auto_rate(study / "auto2", study / "cpu-final/none"), "\n")
    # 2026-11-25, third session: `auto` estimates once more after 5 epochs of selection
    print(auto_rate(study / "auto3", study / "cpu-final/none", every_estimate=True), "\n")
    print(auto_rate(study / "heldout-auto", study / "heldout-true", ["sym40-open20", "sym65"], every_estimate=True))
    print(auto_rate(study / "auto3-more", study / "heldout-true", ["asym40"], every_estimate=True))
    # 2026-11-25, eighth session: the forget rate ramped in (now the default), against the default before
    before = [study / "cpu-screen2/wpc0", study / "cpu-final/none", study / "cpu-more/none"]
    print("\n" + paired([study / "ramp80", study / "ramp-rows"], before), "\n")
    print(paired(study / "heldout-ramp", study / "heldout-true", ["asym40", "sym40-open20", "sym65"]), "\n")
    print(auto_rate(study / "ramp-auto", [study / "ramp80", study / "ramp-rows"], every_estimate=True))
