"""A grid of methods × noise settings on one data set, and its table in the paper's format.

Each cell is one ordinary run in its own run directory (``<out>/<noise>-<method>``); a run whose
``results.json`` exists is not trained again and a run with only a checkpoint is resumed, so an
interrupted grid continues where it stopped. A cell already on disk must have been made with the
same settings: a grid never reports a result made under other ones.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from comining.config import Config, validate
from comining.errors import UserError
from comining import report
from comining.rundir import atomic_write
from comining.titles import METHOD_TITLES, noise_title, parse_noise

PAPER_METHODS = list(METHOD_TITLES)
PAPER_NOISE = ["sym20", "sym50", "sym80", "asym20", "asym40"]
# The paper's Tables 1-3: one data set each, every method, five noise settings.
TABLE_PRESETS = {"table1": "cifar10nc", "table2": "cifar100nc", "table3": "cifar80no"}


def grid(base: Config, methods: list[str], noises: list[str]) -> list[tuple[str, str, Config]]:
    """(noise, method, config) of every cell, validated before anything trains."""
    cells = []
    for noise in noises:
        kind, rate = parse_noise(noise)
        for method in methods:
            cfg = replace(base, method=method, noise_type=kind, closed_rate=rate, out=None)
            validate(cfg)
            cells.append((noise, method, cfg))
    return cells


# Settings that change how a run is executed or shown, not its numbers.
RUNTIME_SETTINGS = {"out", "quiet", "workers", "eval_batch_size", "device"}


def check_cell(run_dir: Path, cfg: Config) -> None:
    """UserError unless the run already in ``run_dir`` was made with ``cfg``'s settings."""
    from comining.methods import METHODS
    try:
        stored = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{run_dir} holds a result but no readable config.json: delete that folder "
                        "or pass another --out") from None
    ignored = RUNTIME_SETTINGS | (set() if METHODS[cfg.method].uses_baseline_aug else {"baseline_aug"})
    wanted = cfg.to_dict()
    differ = [f"{key} {stored.get(key)!r} (now {value!r})" for key, value in wanted.items()
              if key not in ignored and stored.get(key) != value]
    if differ:
        raise UserError(f"{run_dir} was made with other settings ({'; '.join(differ[:3])}"
                        f"{'; …' if len(differ) > 3 else ''}): pass another --out or delete that folder")


def run_grid(base: Config, methods: list[str], noises: list[str], out: Path) -> dict:
    """Train every missing cell; return {(noise, method): results} for all cells."""
    from comining import engine
    from comining.methods import METHODS
    for method in methods:
        if method not in METHODS:
            raise UserError(f"unknown method '{method}': choose from {', '.join(METHODS)}")
    cells = grid(base, methods, noises)
    out = Path(out)
    for noise, method, cfg in cells:  # before anything trains
        run_dir = out / f"{noise}-{method}"
        if (run_dir / "results.json").exists() or (run_dir / "checkpoint.pt").exists():
            check_cell(run_dir, cfg)
    results = {}
    todo = [c for c in cells if not (out / f"{c[0]}-{c[1]}" / "results.json").exists()]
    with tqdm(total=len(cells), initial=len(cells) - len(todo), desc="grid", unit="run",
              disable=base.quiet) as bar:
        for noise, method, cfg in cells:
            run_dir = out / f"{noise}-{method}"
            if (run_dir / "results.json").exists():
                results[noise, method] = json.loads((run_dir / "results.json").read_text())
                continue
            bar.set_postfix_str(f"{noise} {method}")
            if (run_dir / "checkpoint.pt").exists():  # interrupted: continue it, as its message said
                trainer = engine.Trainer.resume(run_dir, {k: getattr(cfg, k) for k in RUNTIME_SETTINGS - {"out"}})
            else:
                trainer = engine.Trainer(cfg, run_dir)
            results[noise, method] = trainer.fit()
            bar.update(1)
    return results


def markdown_table(results: dict, methods: list[str], noises: list[str]) -> str:
    """Rows are noise settings, columns methods, cells mean±std of the last 10 epochs, best in bold."""
    lines = ["| Noise | " + " | ".join(METHOD_TITLES.get(m, m) for m in methods) + " |",
             "|---|" + "---:|" * len(methods)]
    for noise in noises:
        means = {m: results[noise, m]["last10_mean"] for m in methods}
        best = max(means.values())
        cells = []
        for m in methods:
            cell = f"{means[m]:.2f}±{results[noise, m]['last10_std']:.2f}"
            cells.append(f"**{cell}**" if means[m] == best else cell)
        lines.append(f"| {noise_title(noise)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(results: dict, methods: list[str], noises: list[str], out: Path, title: str = "") -> str:
    """table.md, table.csv and table.png in ``out``; returns the Markdown."""
    out = Path(out)
    text = markdown_table(results, methods, noises)
    atomic_write(out / "table.md", ((f"### {title}\n\n" if title else "") + text).encode())
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["noise", "method", "last10_mean", "last10_std", "best_acc", "best_epoch", "epochs",
                     "label_precision", "seconds"])
    for noise in noises:
        for m in methods:
            r = results[noise, m]
            writer.writerow([noise, m, f"{r['last10_mean']:.4f}", f"{r['last10_std']:.4f}", f"{r['best_acc']:.4f}",
                             r["best_epoch"], r["epochs"], r.get("label_precision", ""), f"{r['seconds']:.1f}"])
    atomic_write(out / "table.csv", rows.getvalue().encode())
    report.plot_table(results, methods, noises, out / "table.png", title)
    return text
