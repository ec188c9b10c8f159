"""What a review decides per training sample, and the label file that carries the decisions.

The label file is the one `comining export` writes and `comining train --labels` reads: a CSV with
the header ``index,label`` (in-memory data sets) or ``path,label`` (image sets), one row per
training sample named as in verdicts.csv, the label a class name, empty = left out of training.
"""

from __future__ import annotations

import csv
import io


def verdict_right(verdict: str, given: str, suggested: str | None, true: str) -> bool:
    """Whether a verdict agrees with the known true label: clean is right when the given label is,
    relabelled when the suggestion is, discarded when the given label was wrong."""
    if verdict == "discarded":
        return given != true
    if verdict == "relabelled":
        return suggested == true
    return given == true


def label_file_kind(dataset_root) -> str:
    """The first column's name: ``path`` for image sets (a data root on disk), ``index`` otherwise."""
    return "path" if dataset_root else "index"


def check_label_file(text: str, kind: str, samples: list[str], classes: list[str]) -> str | None:
    """None when ``text`` is a complete label file for these samples (every one once, in any order,
    each label a class name or empty); otherwise a one-line reason why not."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or rows[0] != [kind, "label"]:
        return f"the header must be '{kind},label'"
    known, names, seen = set(samples), set(classes), set()
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            return f"line {number} has {len(row)} fields, not 2"
        sample, label = row
        if sample not in known:
            return f"line {number} names a sample the run does not have"
        if sample in seen:
            return f"line {number} repeats a sample"
        if label and label not in names:
            return f"line {number} has a label that is not one of the run's classes"
        seen.add(sample)
    if len(seen) != len(known):
        return f"{len(known) - len(seen)} training samples are missing"
    return None
