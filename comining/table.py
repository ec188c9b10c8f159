"""A grid of methods × noise settings on one data set, and its table in the paper's format.

Each cell is one ordinary run in its own run directory (``<out>/<noise>-<method>``, or one per seed,
``<out>/<noise>-<method>-seed<k>``, with ``--seeds``); a run whose ``results.json`` exists is not
trained again and a run with only a checkpoint is resumed, so an interrupted grid continues where it
stopped. A cell already on disk must have been made with the same settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import numpy as np

from tqdm import tqdm

from comining.config import (FROZEN_ONLY, RUNTIME_SETTINGS, Config, backbone_mode, comparable, from_stored,
                             method_options, validate)
from comining.errors import UserError
from comining import report
from comining.rundir import RunDir, atomic_csv, atomic_write
from comining.methods import METHODS, titles
from comining.noise import noise_title, parse_noise

PAPER_NOISE = ["sym20", "sym50", "sym80", "asym20", "asym40"]
# The paper's Tables 1-3: one data set each, every method, five noise settings.
TABLE_PRESETS = {"table1": "cifar10nc", "table2": "cifar100nc", "table3": "cifar80no"}


def run_name(noise: str, method: str, seed: int | None) -> str:
    """A cell's folder: one per seed when the grid has --seeds."""
    return f"{noise}-{method}" + ("" if seed is None else f"-seed{seed}")


def grid(base: Config, methods: list[str], noises: list[str], seeds=None) -> list[tuple[str, str, int | None, Config]]:
    """(noise, method, seed, config) of every run, validated before anything trains. ``seeds`` None:
    one run per cell with the base settings' seed. The seeds vary the training only: the noisy labels
    stay those of --noise-seed."""
    cells = []
    for noise in noises:
        kind, rate, open_ratio = parse_noise(noise)
        for method in methods:
            for seed in seeds or [None]:
                cfg = replace(base, method=method, noise_type=kind, closed_rate=rate, out=None,
                              open_ratio=base.open_ratio if open_ratio is None else open_ratio,
                              seed=base.seed if seed is None else seed)
                validate(cfg)
                cells.append((noise, method, seed, cfg))
    return cells


def check_cell(run_dir: Path, cfg: Config) -> None:
    """UserError unless the run already in ``run_dir`` was made with ``cfg``'s settings."""
    stored = comparable(from_stored(RunDir(run_dir).read_config()))
    method = METHODS[cfg.method]
    # A cell is the same run whatever the settings it does not read: other methods' options, the recipe
    # of a method without recipes, the baselines' view for a method that chooses its own.
    others = {f.name for name, options in method_options().items() if name != cfg.method
              for f in dataclasses.fields(options)}
    frozen = backbone_mode(cfg) == "frozen"
    ignored = (RUNTIME_SETTINGS | others | (set() if method.uses_baseline_aug else {"baseline_aug"})
               | (set() if method.uses_recipe else {"recipe"}) | (set() if frozen else set(FROZEN_ONLY))
               | ({"feature_stages"} if cfg.backbone_file else set()))
    wanted = comparable(cfg.to_dict())
    differ = [f"{key} {stored.get(key)!r} (now {value!r})" for key, value in wanted.items()
              if key not in ignored and stored.get(key) != value]
    if differ:
        raise UserError(f"{run_dir} was made with other settings ({'; '.join(differ[:3])}"
                        f"{'; …' if len(differ) > 3 else ''}): pass another --out or delete that folder")


def run_grid(base: Config, methods: list[str], noises: list[str], out: Path, seeds=None) -> dict:
    """Train every missing run; return {(noise, method): [results of each seed]} for all cells."""
    from comining import engine
    cells = grid(base, methods, noises, seeds)
    out = Path(out)
    for noise, method, seed, cfg in cells:  # before anything trains
        run = RunDir(out / run_name(noise, method, seed))
        if run.results.exists() or run.checkpoint.exists():
            check_cell(run.path, cfg)
    results = {}
    todo = [c for c in cells if not RunDir(out / run_name(*c[:3])).results.exists()]
    with tqdm(total=len(cells), initial=len(cells) - len(todo), desc="grid", unit="run",
              disable=base.quiet) as bar:
        for noise, method, seed, cfg in cells:
            run = RunDir(out / run_name(noise, method, seed))
            runs = results.setdefault((noise, method), [])
            if run.results.exists():
                runs.append({**run.read_results(), "seed": cfg.seed})
                continue
            bar.set_postfix_str(f"{noise} {method}" + ("" if seed is None else f" seed {seed}"))
            if run.checkpoint.exists():  # interrupted: continue it, as its message said
                trainer = engine.Trainer.resume(run.path, {k: getattr(cfg, k) for k in RUNTIME_SETTINGS - {"out"}})
            else:
                trainer = engine.Trainer(cfg, run.path)
            runs.append({**trainer.fit(), "seed": cfg.seed})
            bar.update(1)
    return results


def aggregate(runs: list[dict]) -> dict:
    """One cell from its runs: with one run its last-10 mean ± last-10 std; with several, the mean ±
    sample standard deviation over the runs of their last-10 means."""
    means = np.array([r["last10_mean"] for r in runs], dtype=float)
    if len(runs) == 1:
        return {"last10_mean": float(means[0]), "last10_std": float(runs[0]["last10_std"]), "runs": 1}
    return {"last10_mean": float(means.mean()), "last10_std": float(means.std(ddof=1)), "runs": len(runs)}


def paired_lead(results: dict, methods: list[str], noise: str) -> tuple[str, str, list[float]] | None:
    """(best method, runner-up, per-seed differences best − runner-up) of a row run over several seeds."""
    cells = {m: aggregate(results[noise, m])["last10_mean"] for m in methods}
    if len(methods) < 2 or len(results[noise, methods[0]]) < 2:
        return None
    best, second = sorted(methods, key=lambda m: -cells[m])[:2]
    by_seed = {m: {r["seed"]: r["last10_mean"] for r in results[noise, m]} for m in (best, second)}
    shared = sorted(set(by_seed[best]) & set(by_seed[second]))
    return best, second, [by_seed[best][s] - by_seed[second][s] for s in shared]


def markdown_table(results: dict, methods: list[str], noises: list[str]) -> str:
    """Rows are noise settings, columns methods, best in bold. Cells: mean±std of the last 10 epochs
    (one seed), or mean±std over seeds of each run's last-10 mean; then the paired per-seed lead of
    each row's best method over its runner-up."""
    cells = {key: aggregate(runs) for key, runs in results.items()}
    lines = ["| Noise | " + " | ".join(titles().get(m, m) for m in methods) + " |",
             "|---|" + "---:|" * len(methods)]
    for noise in noises:
        best = max(cells[noise, m]["last10_mean"] for m in methods)
        row = []
        for m in methods:
            text = f"{cells[noise, m]['last10_mean']:.2f}±{cells[noise, m]['last10_std']:.2f}"
            row.append(f"**{text}**" if cells[noise, m]["last10_mean"] == best else text)
        lines.append(f"| {noise_title(noise)} | " + " | ".join(row) + " |")
    seeds = {cell["runs"] for cell in cells.values()}
    if seeds != {1}:
        lines += ["", f"Mean ± sample std over {'/'.join(str(s) for s in sorted(seeds))} seeds of each run's "
                      "last-10 mean. Lead of each row's best over its runner-up, per seed:", ""]
        for noise in noises:
            lead = paired_lead(results, methods, noise)
            if lead:
                best_m, second, diffs = lead
                lines.append(f"- {noise_title(noise)}: {titles().get(best_m, best_m)} − "
                             f"{titles().get(second, second)} = "
                             + ", ".join(f"{d:+.2f}" for d in diffs)
                             + f" (mean {np.mean(diffs):+.2f}" + (f", min {min(diffs):+.2f})" if diffs else ")"))
    return "\n".join(lines) + "\n"


def write_table(results: dict, methods: list[str], noises: list[str], out: Path, title: str = "") -> str:
    """table.md, table.csv and table.png in ``out``; returns the Markdown."""
    out = Path(out)
    text = markdown_table(results, methods, noises)
    atomic_write(out / "table.md", ((f"### {title}\n\n" if title else "") + text).encode())
    header = ["noise", "method", "seed", "last10_mean", "last10_std", "best_acc", "best_epoch", "epochs",
              "label_precision", "estimated_noise_rate", "seconds"]
    atomic_csv(out / "table.csv", header, (  # every run's own figure
        [noise, m, r.get("seed", ""), f"{r['last10_mean']:.4f}", f"{r['last10_std']:.4f}", f"{r['best_acc']:.4f}",
         r["best_epoch"], r["epochs"], r.get("label_precision", ""), r.get("estimated_noise_rate", ""),
         f"{r['seconds']:.1f}"] for noise in noises for m in methods for r in results[noise, m]))
    report.plot_table({key: aggregate(runs) for key, runs in results.items()}, methods, noises,
                      out / "table.png", title)
    return text
