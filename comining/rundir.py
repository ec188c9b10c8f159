"""The run directory: config, per-epoch metrics, results, checkpoint, verdicts, pred_probs, plots.

Every file that is replaced as a whole is written to a temporary file in the same directory and
renamed over the old one, so a crash or a full disk mid-write leaves the previous complete file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from comining.config import Config, noise_tag
from comining.errors import UserError


def default_out(cfg: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.dataset}-{noise_tag(cfg)}-{cfg.method}-{stamp}"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a run's files are ordinary files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def atomic_torch_save(path: Path, obj) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, buffer.getvalue())


def atomic_csv(path: Path, header: list[str], rows) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(path, text.getvalue().encode())


def write_verdicts(run: "RunDir", ledger, data, final) -> None:
    """verdicts.csv and pred_probs.npy of a finished run.

    verdicts.csv has, per training sample: sample, given_label, [true_label], verdict (the final
    verdict), suggested_label, label_quality, outlier_score, selection (the last step's selection)
    and score (its selection score); ``final`` is a ``comining.label_issues.Verdicts``.
    pred_probs.npy holds ``final.pred_probs`` (N×C float32, one row per training sample).
    """
    from comining.metrics import SELECTIONS

    classes = data.classes
    status, score = ledger.status.tolist(), ledger.score.tolist()
    verdict, suggested = final.verdict.tolist(), final.suggested.tolist()
    quality, outlier = final.label_quality.tolist(), final.outlier_score.tolist()
    given = data.labels.tolist()
    true = data.true_labels.tolist() if data.true_labels is not None else None
    names = data.sample_names()
    failed = getattr(data, "failed", ())  # image files that broke during training

    def name(label):
        return classes[label] if 0 <= label < len(classes) else f"open:{label}"

    rows = [[names[i], name(given[i]), *([name(true[i])] if true else []), SELECTIONS[verdict[i]],
             name(suggested[i]) if suggested[i] >= 0 else "", f"{quality[i]:.4f}", f"{outlier[i]:.4f}",
             SELECTIONS[status[i]], "" if math.isnan(score[i]) else f"{score[i]:.4f}"]
            for i in range(len(names)) if i not in failed]
    header = ["sample", "given_label", *(["true_label"] if true else []), "verdict", "suggested_label",
              "label_quality", "outlier_score", "selection", "score"]
    atomic_csv(run.verdicts, header, rows)
    buffer = io.BytesIO()
    np.save(buffer, final.pred_probs.astype(np.float32))
    atomic_write(run.pred_probs, buffer.getvalue())


def write_data_files(run: "RunDir", dataset: str, data, normalize) -> None:
    """data.json (what predict and inspect need: classes, image geometry, the evaluation view's
    normalisation, the data root) and, for image folders, skipped_files.txt (path<TAB>reason)."""
    root = getattr(data, "root", None)
    atomic_json(run.path / "data.json", {
        "dataset": dataset, "root": str(root.resolve()) if root is not None else None,
        "classes": list(data.classes), "channels": data.channels, "image_size": data.image_size,
        "crop_size": data.crop_size, "normalize": normalize, "train_size": len(data),
        "full_train_size": getattr(data, "full_size", len(data)),  # what a label file covers (export)
        "skipped_files": len(getattr(data, "skipped", ()))})
    if hasattr(data, "skipped"):
        lines = "".join(f"{path}\t{reason}\n" for path, reason in data.skipped.items())
        atomic_write(run.path / "skipped_files.txt", lines.encode())


class RunDir:
    """Paths and writers of one run directory."""

    def __init__(self, path):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.jsonl"
        self.results = self.path / "results.json"
        self.checkpoint = self.path / "checkpoint.pt"
        self.verdicts = self.path / "verdicts.csv"
        self.pred_probs = self.path / "pred_probs.npy"

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create run directory {self.path} ({err.strerror}): choose another --out") from None

    def write_metrics(self, history: list[dict]) -> None:
        """Rewrite metrics.jsonl from the history (atomic, so a resumed run never duplicates lines)."""
        atomic_write(self.metrics, "".join(json.dumps(r) + "\n" for r in history).encode())

    def load_checkpoint(self) -> dict:
        if not self.checkpoint.exists():
            raise UserError(f"no checkpoint in {self.path}: pass a run directory that has checkpoint.pt")
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated, not a torch file, or holds code
            reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
            raise UserError(f"checkpoint {self.checkpoint} cannot be loaded ({reason}): "
                            "it is damaged or not a comining checkpoint; start a new run") from None
        kinds = {"config": dict, "epoch": int, "step": int, "method": dict, "optimizer": dict, "ledger": dict,
                 "rng": dict, "history": list}
        if not isinstance(state, dict) or any(not isinstance(state.get(k), t) for k, t in kinds.items()):
            raise UserError(f"checkpoint {self.checkpoint} is not a comining checkpoint (parts missing or of the "
                            "wrong kind): start a new run")
        return state
