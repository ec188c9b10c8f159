"""``comining review RUN_DIR``: write RUN_DIR/review.html, a page to look at a run's verdicts and decide.

The page is one file with its styles, script and data inlined (nothing is fetched from another
host); the thumbnails are sprite sheets in RUN_DIR/review/ (see thumbs.py). Everything the page
shows comes from the run directory, read through comining/rundir.py: verdicts.csv, config.json,
data.json and, where the run has them, results.json and metrics.jsonl.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from html import escape
from pathlib import Path

from comining.errors import UserError
from comining.selection import SELECTIONS
from comining.review import thumbs
from comining.review.chart import history_chart
from comining.labelfile import verdict_label
from comining.review.decisions import label_file_kind, verdict_right
from comining.rundir import RunDir, atomic_write, read_run
from comining.summary import page_rows
from comining.data.decode import usable_cpus
from comining.verdicts_view import class_table, training_arrays

HERE = Path(__file__).parent
PAGE_SIZE = 200  # cards per page of the grid
SUSPECT_VERDICTS = ("discarded", "relabelled")  # what the page shows first


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def suspicion_order(rows: list[dict]) -> list[int]:
    """Row positions, most suspect first: discarded and relabelled before the rest, then the lowest
    label_quality (or, in runs without it, the highest selection score); unknown values last."""
    has_quality = bool(rows) and "label_quality" in rows[0]

    def key(i):
        row = rows[i]
        value = _number(row.get("label_quality")) if has_quality else _number(row.get("score"))
        doubt = math.inf if value is None else (value if has_quality else -value)
        return (row["verdict"] not in SUSPECT_VERDICTS, doubt, i)

    return sorted(range(len(rows)), key=key)


def run_classes(rows: list[dict], data: dict) -> list[str]:
    """The classes a sample may be given: data.json's, or (a run without them) the given labels seen."""
    return list(data.get("classes") or sorted({r["given_label"] for r in rows}))


def page_data(run: Path, rows: list[dict], data: dict, cfg: dict, results: dict) -> dict:
    """Everything the page's script needs, column by column (class names as indices into ``names``)."""
    classes = run_classes(rows, data)
    label_columns = ("given_label", "suggested_label", "true_label")
    names = classes + sorted({r[c] for r in rows for c in label_columns if r.get(c)} - set(classes))
    index = {name: i for i, name in enumerate(names)}
    has_truth = bool(rows) and "true_label" in rows[0]
    has_quality = bool(rows) and "label_quality" in rows[0]

    def label(name):
        return -1 if name is None or name == "" else index[name]

    columns = {
        "sample": [r["sample"] for r in rows],
        "given": [index[r["given_label"]] for r in rows],
        "suggested": [label(r.get("suggested_label")) for r in rows],
        "verdict": [SELECTIONS.index(r["verdict"]) for r in rows],
        "score": [_number(r.get("score")) for r in rows],
        "fallback": [label(verdict_label(r["verdict"], r["given_label"], r.get("suggested_label"))) for r in rows],
    }
    if has_quality:
        columns["quality"] = [_number(r.get("label_quality")) for r in rows]
    if rows and "outlier_score" in rows[0]:
        columns["outlier"] = [_number(r.get("outlier_score")) for r in rows]
    if has_truth:
        columns["truth"] = [index[r["true_label"]] for r in rows]
        columns["right"] = [int(verdict_right(r["verdict"], r["given_label"], r.get("suggested_label"),
                                              r["true_label"])) for r in rows]
    digest = hashlib.sha1(RunDir(run).verdicts.read_bytes()).hexdigest()[:16]
    return {"run": {"name": run.resolve().name, "id": f"{run.resolve().name}:{digest}",
                    "kind": label_file_kind(data.get("root"))},
            "summary": page_rows(cfg, data, results, len(rows), run),
            "classes": classes, "names": names, "verdicts": list(SELECTIONS),
            "counts": [list(r) for r in class_table(rows, classes)],
            "page_size": PAGE_SIZE, "columns": columns}


def script_json(obj) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' appear literally, so no name can
    close the element (``</script>``) or open a comment; JSON.parse reads the escapes back."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_thumbnails(run: Path, rows: list[dict], data: dict, cfg: dict, order: list[int]) -> dict | None:
    """Sprite sheets in RUN/review/ with row ``order[slot]`` in cell ``slot``; None if no images."""
    folder = RunDir(run).review_sheets
    if data.get("root"):
        return thumbs.file_sheets(Path(data["root"]), [rows[i]["sample"] for i in order], folder, usable_cpus())
    images = training_arrays(cfg)
    if images is None:
        return None
    try:
        positions = [int(rows[i]["sample"]) for i in order]
    except ValueError:
        return None
    if positions and max(positions) >= len(images):
        return None  # verdicts of another data set than the one found: show no pictures rather than wrong ones
    return thumbs.array_sheets(images, positions, folder)


def content_policy(script: str) -> str:
    """The page's Content-Security-Policy: nothing from other hosts, and only its own script runs
    (named by its hash), so even markup that slipped into the page could not run code."""
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
            "img-src 'self' blob: data:; connect-src 'self'")


def render(template_dir: Path, title: str, chart: str, data_json: str) -> str:
    """The page: page.html with its stylesheet, script, chart and data put in place."""
    page = (template_dir / "page.html").read_text()
    script = (template_dir / "page.js").read_text()
    parts = {"{{CSP}}": content_policy(script), "{{CSS}}": (template_dir / "page.css").read_text(),
             "{{JS}}": script, "{{CHART}}": chart, "{{TITLE}}": escape(title)}
    for marker, text in parts.items():
        page = page.replace(marker, text)
    return page.replace("{{DATA}}", data_json)  # last, so nothing in the data is read as a marker


def build_review(run_dir) -> Path:
    """Write RUN_DIR/review.html and its thumbnails in RUN_DIR/review/; returns the page's path."""
    run = Path(run_dir)
    rows, data, cfg = read_run(run)
    results = RunDir(run).read_results(required=False)
    chart = history_chart(RunDir(run).read_history(required=False))  # read before anything is written
    order = suspicion_order(rows)
    content = page_data(run, rows, data, cfg, results)
    slots = [0] * len(rows)
    for slot, i in enumerate(order):
        slots[i] = slot
    content["columns"]["slot"] = slots
    try:
        content["thumbs"] = write_thumbnails(run, rows, data, cfg, order)
        page = RunDir(run).review_page
        atomic_write(page, render(HERE, f"review of {run.resolve().name}", chart, script_json(content)).encode())
    except OSError as err:
        raise UserError(f"cannot write the review page into {run} ({err.strerror or err}): "
                        "free space or make the run directory writable") from None
    return page
