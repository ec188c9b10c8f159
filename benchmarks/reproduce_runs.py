"""Does a refactor keep behaviour? Trains the same five runs with two commits and compares them digit for digit.

Evidence (docs/RESULTS.md, "Reproduction across the refactor"): the five runs below, trained with the
commit before issue 25's change and with the commit after it, on one machine, one thread per run.

    python benchmarks/reproduce_runs.py --before COMMIT [--after COMMIT|worktree] [--out DIR] [--jobs 2]
                                        [--runs demo,coteaching,folder]   # a quick check: the three short runs

The runs:
  demo          `comining train` (digits, symmetric 40 %, the default Co-mining)
  fm-sym50      Fashion-MNIST, 3,200 images, symmetric 50 %, seed 4, default Co-mining
  fm-asym40     Fashion-MNIST, 3,200 images, pair flip 40 %, seed 4, default Co-mining
  coteaching    digits, symmetric 40 %, Co-teaching (a baseline)
  folder        an image folder written from digits (PNG), 6 epochs, the noise rate estimated (auto)

Exact digits hold only on one CPU kind and one thread count, so this is a benchmark, not a CI test:
each commit is checked out into a temporary worktree and both sides run here, now. Compared: every
number of results.json except wall-clock time, and verdicts.csv and pred_probs.npy byte for byte.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FM = ["--dataset", "fashion-mnist", "--train-subset", "3200", "--test-subset", "2000", "--seed", "4"]
RUNS = {
    "demo": [],
    "fm-sym50": [*FM, "--closed-rate", "0.5"],
    "fm-asym40": [*FM, "--noise-type", "asymmetric", "--closed-rate", "0.4"],
    "coteaching": ["--method", "coteaching"],
    "folder": ["--dataset", "folder", "--data-root", "{folder}", "--arch", "small", "--weights", "none",
               "--rescale-size", "16", "--crop-size", "16", "--epochs", "6", "--warmup-epochs", "2",
               "--batch-size", "64", "--backbone", "finetune"],
}
TIME_KEYS = {"seconds", "wall_seconds", "started", "finished"}


def write_digits_folder(root: Path) -> Path:
    """Digits as 16-px PNGs in train/<class>/ and val/<class>/, a fifth of the training labels moved to
    the next class, so the run has real noise to estimate."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.RandomState(0)
    labels = digits.target.copy()
    flip = rng.rand(len(labels)) < 0.2
    for i, (image, label) in enumerate(zip(digits.images, labels)):
        split = "val" if i % 5 == 0 else "train"
        given = (label + 1) % 10 if split == "train" and flip[i] else label
        folder = root / split / f"class{given}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).resize((16, 16), Image.NEAREST).save(folder / f"{i:04d}.png")
    return root


def run_one(tree: Path, name: str, out: Path, folder: Path) -> tuple[str, int]:
    args = [a.replace("{folder}", str(folder)) for a in RUNS[name]]
    if "--backbone" in args and '"frozen"' not in (tree / "comining" / "config.py").read_text():
        args = args[:args.index("--backbone")] + args[args.index("--backbone") + 2:]  # a commit that only fine-tunes
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg"}
    log = out.with_suffix(".log")
    with open(log, "w") as fh:
        proc = subprocess.run([sys.executable, "-m", "comining", "train", *args, "--quiet", "--out", str(out)],
                              cwd=tree, env=env, stdout=fh, stderr=subprocess.STDOUT)
    return name, proc.returncode


def train_all(tree: Path, dest: Path, folder: Path, jobs: int, names: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    todo = [n for n in names if not (dest / n / "results.json").exists()]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for name, code in pool.map(lambda n: run_one(tree, n, dest / n, folder), todo):
            print(f"  {dest.name}/{name}: {'done' if code == 0 else f'FAILED ({code}), see {dest / name}.log'}",
                  flush=True)


def numbers(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in TIME_KEYS}


def compare(before: Path, after: Path, names: list[str]) -> bool:
    same = True
    for name in names:
        a, b = before / name, after / name
        missing = [str(d) for d in (a, b) if not (d / "results.json").exists()]
        if missing:
            print(f"{name:11s} not compared: no results.json in {', '.join(missing)}")
            same = False
            continue
        diffs = []
        ra, rb = (numbers(json.loads((d / "results.json").read_text())) for d in (a, b))
        # A key the later version adds (e.g. why the precision was chosen) is new, not a changed number.
        diffs += [f"results.json {k}: {ra.get(k)} -> {rb.get(k)}" for k in sorted(ra) if ra.get(k) != rb.get(k)]
        for file in ("verdicts.csv", "pred_probs.npy"):
            if (a / file).read_bytes() != (b / file).read_bytes():
                diffs.append(f"{file} differs")
        print(f"{name:11s} last10 {ra.get('last10_mean')} -> {rb.get('last10_mean')}: "
              + ("same to the digit" if not diffs else "; ".join(diffs)))
        same &= not diffs
    return same


def checkout(commit: str, parent: Path) -> Path:
    tree = parent / f"tree-{commit[:10]}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit],
                       check=True, capture_output=True)
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="commit before the change")
    parser.add_argument("--after", default="worktree", help="commit after the change, or worktree (this checkout)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "reproduce")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated names of the runs to compare")
    args = parser.parse_args()
    names = [n for n in args.runs.split(",") if n]
    if unknown := set(names) - set(RUNS):
        parser.error(f"unknown run(s) {', '.join(sorted(unknown))}: choose from {', '.join(RUNS)}")

    import torch
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, "
          f"one thread per run, {args.jobs} at once")
    args.out = args.out.resolve()  # each run starts in its commit's worktree: a relative path would land there
    args.out.mkdir(parents=True, exist_ok=True)
    folder = args.out / "digits-folder"
    if not folder.exists():
        write_digits_folder(folder)
    scratch = Path(tempfile.mkdtemp(prefix="reproduce-"))
    try:
        sides = {}
        for side, commit in (("before", args.before), ("after", args.after)):
            if commit == "worktree":
                tree, label = REPO, "worktree"
                shutil.rmtree(args.out / f"{side}-{label}", ignore_errors=True)  # the code may have changed
            else:
                sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", commit], check=True,
                                     capture_output=True, text=True).stdout.strip()
                tree, label = checkout(sha, scratch), sha[:10]
            sides[side] = args.out / f"{side}-{label}"
            print(f"{side}: {label}")
            train_all(tree, sides[side], folder, args.jobs, names)
        return 0 if compare(sides["before"], sides["after"], names) else 1
    finally:
        for tree in scratch.glob("tree-*"):
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
