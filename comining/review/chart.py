"""The review page's chart: test accuracy and the selection metrics per epoch, as inline SVG.

Drawn here from metrics.jsonl rather than in the browser so the page needs no plotting code; every
string in it is fixed or a number, and what is not is escaped.
"""

from __future__ import annotations

from html import escape

from comining.selection import SELECTION_METRICS

WIDTH, HEIGHT, PAD = 420, 220, 36
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _panel(title: str, epochs: list[int], series: dict[str, list], top: float, unit: str) -> str:
    """One plot: lines of ``series`` (name → values per epoch, None = missing) on 0..top."""
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    first, last = (epochs[0], epochs[-1]) if epochs else (1, 1)

    def x(epoch):
        return PAD + (inner_w * (epoch - first) / (last - first) if last > first else inner_w / 2)

    def y(value):
        return PAD + inner_h * (1 - min(max(value / top, 0.0), 1.0))

    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
             f'<title>{escape(title)}</title>',
             f'<text x="{PAD}" y="16" class="chart-title">{escape(title)}</text>',
             f'<rect x="{PAD}" y="{PAD}" width="{inner_w}" height="{inner_h}" class="chart-frame"/>']
    for tick in (0, 0.5, 1):
        parts.append(f'<text x="{PAD - 4}" y="{y(tick * top) + 4:.1f}" text-anchor="end" class="chart-tick">'
                     f'{tick * top:g}{unit}</text>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - PAD + 14}" class="chart-tick">epoch {first}</text>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 14}" text-anchor="end" class="chart-tick">'
                 f'epoch {last}</text>')
    for n, (name, values) in enumerate(series.items()):
        points = [(x(e), y(v)) for e, v in zip(epochs, values) if v is not None]
        colour = COLOURS[n % len(COLOURS)]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py in points[-1:] if len(points) > 1 else points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{PAD + 6}" y="{PAD + 14 + 14 * n}" fill="{colour}" class="chart-key">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def history_chart(history: list[dict]) -> str:
    """SVG of the test accuracy per epoch and, where the truth was known, the selection metrics
    (shares of 0..1); an empty string when the run recorded no epochs."""
    if not history:
        return ""
    epochs = [int(r.get("epoch", n + 1)) for n, r in enumerate(history)]
    out = [_panel("test accuracy (%)", epochs, {"test accuracy": [r.get("test_acc") for r in history]}, 100, "")]
    selection = {key.replace("_", " "): [r.get(key) for r in history]
                 for key in SELECTION_METRICS if any(r.get(key) is not None for r in history)}
    if selection:
        out.append(_panel("selection, against the true labels", epochs, selection, 1, ""))
    return "".join(out)
