"""``comining export RUN_DIR --out FILE``: a run's decisions as a label file to train on again.

Each training sample keeps the label ``labelfile.verdict_label`` gives it (a discarded one its given
label with ``keep_discarded``); samples the run itself left out stay left out. With a ``share``, the
user's count of wrong labels replaces the run's (``at_share``). The file is in the
format of comining/labelfile.py, so ``--labels FILE`` (and, for image sets, ``--train-csv FILE``) reads it back.
"""

from __future__ import annotations

import os

import numpy as np

from comining import labelfile
from comining.errors import UserError
from comining.rundir import VERDICT_COLUMNS, RunDir, check_output


def decided_labels(rows: list[dict], classes: list[str], keep_discarded: bool) -> list[int]:
    """The label each verdicts.csv row ends with: a class index, or -1 for a sample left out."""
    def index(name: str, row: dict) -> int:
        if name not in classes:
            raise UserError(f"verdicts.csv names class {name!r} for sample {row['sample']}, which the run's "
                            "data.json does not list: the run directory is inconsistent")
        return classes.index(name)

    labels = []
    for row in rows:
        verdict = "clean" if keep_discarded and row["verdict"] == "discarded" else row["verdict"]
        name = labelfile.verdict_label(verdict, row["given_label"], row.get("suggested_label"))
        labels.append(labelfile.LEFT_OUT if name is None else index(name, row))
    return labels


def at_share(rows: list[dict], share: float) -> list[dict]:
    """verdicts.csv ``rows`` with the user's count of wrong labels in place of the run's: the
    round(share·N) samples of lowest label quality (``api.lowest_quality``, the set
    ``find_label_issues(run, share=)`` returns; ties at the cut all taken) are set aside, keeping the
    run's relabelling where it suggested a class and discarded otherwise; every other sample is
    clean. A sample the run did not flag has no suggested class, since its label was never weighed
    against one, so it is discarded rather than guessed at."""
    from comining.api import lowest_quality, qualities

    flagged = lowest_quality(qualities(rows), share, name="--share ")
    return [{**row, "verdict": ("relabelled" if row["verdict"] == "relabelled" and row.get("suggested_label")
                                else "discarded") if flag else "clean"}
            for row, flag in zip(rows, flagged)]


def training_positions(run: RunDir, rows: list[dict], size: int) -> list[int]:
    """The position in the training set that each row of an in-memory run's verdicts.csv names."""
    positions = []
    for number, row in enumerate(rows, 2):
        if not row["sample"].isdigit() or int(row["sample"]) >= size:
            raise run.damaged("verdicts.csv", f"row {number} names sample {row['sample']!r}, not a position "
                                              f"in the run's training set of {size}")
        positions.append(int(row["sample"]))
    return positions


def export_run(run_dir, out, keep_discarded: bool = False, fmt: str | None = None, force: bool = False,
               share: float | None = None) -> dict:
    """Write the label file ``out`` (format ``fmt``, 'csv' or 'npy'; default from the extension) of the
    run in ``run_dir``; an existing ``out`` is replaced only with ``force``, the run's own files never.
    ``share``: set aside that share of the samples, those of lowest label quality, in place of the
    run's verdicts (``at_share``; not with ``keep_discarded``, which would keep them). Returns {"path",
    "format", "samples" (training samples of the run), "set_aside" (relabelled or discarded),
    "relabelled", "discarded" (left out as discarded), "untrained" (left out as the run did not train
    on them)}."""
    if share is not None and keep_discarded:
        raise UserError("--share sets the samples of lowest label quality aside and --keep-discarded keeps "
                        "them: pass one of the two")
    run = RunDir(run_dir)
    out = check_output(out, force, run_dir)
    rows = run.read_verdicts((*VERDICT_COLUMNS, "suggested_label", *(("label_quality",) if share is not None else ())))
    if share is not None:
        rows = at_share(rows, share)
    data = run.read_data_info(keys=("classes",))
    named = {".csv": "csv", ".npy": "npy"}.get(out.suffix.lower())
    if fmt and named and fmt != named:  # --labels reads a file by its extension
        raise UserError(f"--format {fmt} but {out} ends in {out.suffix}: name it .{fmt}, or drop --format")
    fmt = fmt or named
    if fmt not in ("csv", "npy"):
        raise UserError(f"cannot tell the format of {out}: name it .csv or .npy, or pass --format csv|npy")
    classes = data["classes"]
    labels = decided_labels(rows, classes, keep_discarded)
    summary = {"path": str(out), "format": fmt, "samples": len(rows),
               "set_aside": sum(r["verdict"] in ("relabelled", "discarded") for r in rows),
               "relabelled": sum(r["verdict"] == "relabelled" and bool(r.get("suggested_label")) for r in rows),
               "discarded": sum(y == labelfile.LEFT_OUT for y in labels), "untrained": 0}
    if data.get("root") is None:  # in-memory: samples are positions in the training set
        size = data.get("full_train_size") or data.get("train_size") or 0
        decided = np.full(max(size, len(rows)), labelfile.LEFT_OUT, dtype=np.int64)
        decided[training_positions(run, rows, len(decided))] = labels
        if fmt == "npy":
            labelfile.write_npy(out, decided)
        else:
            labelfile.write_csv(out, "index", [str(i) for i in range(len(decided))], decided, classes)
        summary["untrained"] = int((decided == labelfile.LEFT_OUT).sum()) - summary["discarded"]
        return summary
    if fmt == "npy":
        raise UserError("image sets are matched by path, which a .npy cannot hold: export to a .csv")
    root = data["root"]
    same_folder = os.path.abspath(out.parent) == os.path.abspath(root)
    paths = [r["sample"] if same_folder else os.path.join(root, r["sample"]) for r in rows]
    labelfile.write_csv(out, "path", paths, labels, classes)  # images it does not list are left out
    return summary
