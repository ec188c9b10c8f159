"""Plots of finished runs: a run's per-epoch curves and a grid's table as bars (the table's text is table.py's)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: training machines have no screen
import matplotlib.pyplot as plt  # noqa: E402

from comining.rundir import atomic_write  # noqa: E402
from comining.methods import titles  # noqa: E402
from comining.noise import noise_title  # noqa: E402
from comining.selection import SELECTION_METRICS  # noqa: E402


def plot_run(history: list[dict], path: Path, title: str = "") -> None:
    """Test accuracy per epoch (left) and the quality of the clean set where the truth is known (right)."""
    epochs = [r["epoch"] for r in history]
    selection = [k for k in SELECTION_METRICS if any(r.get(k) is not None for r in history)]
    fig, axes = plt.subplots(1, 2 if selection else 1, figsize=(11 if selection else 6, 4), squeeze=False)
    ax = axes[0][0]
    nets = len(history[0].get("test_acc_nets", [])) if history else 0
    if nets > 1:
        for i in range(nets):
            ax.plot(epochs, [r["test_acc_nets"][i] for r in history], lw=0.8, alpha=0.6, label=f"network {i + 1}")
    ax.plot(epochs, [r["test_acc"] for r in history], lw=1.8, label="test accuracy" + (" (mean)" if nets > 1 else ""))
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if selection:
        ax = axes[0][1]
        for key in selection:
            points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
            ax.plot(*zip(*points), label=key.replace("_", " "))
        ax.set(xlabel="epoch", ylabel="share", ylim=(0, 1.02), title="selection (against the true labels)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a PNG atomically (a temporary file of its own, then a rename), so neither a crash nor two
    table commands writing into one folder at once leave half a picture."""
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, dpi=110, format="png")
    plt.close(fig)
    atomic_write(path, png.getvalue())


def plot_table(results: dict, methods: list[str], noises: list[str], path: Path, title: str = "") -> None:
    """Grouped bars: one group per noise setting, one bar per method, whiskers at ± the last-10 std."""
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(noises) * max(1, len(methods) / 4)), 4))
    for i, m in enumerate(methods):
        xs = [g + (i - (len(methods) - 1) / 2) * width for g in range(len(noises))]
        ax.bar(xs, [results[n, m]["last10_mean"] for n in noises], width,
               yerr=[results[n, m]["last10_std"] for n in noises], capsize=2, label=titles().get(m, m))
    ax.set_xticks(range(len(noises)), [noise_title(n) for n in noises])
    ax.set(ylabel="test accuracy, mean of last 10 epochs (%)", title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(methods), 4), loc="lower left")
    save_figure(fig, path)
