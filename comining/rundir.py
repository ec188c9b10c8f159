"""The run directory as one schema: every file in it, the writers of the training run, and the one
reader of each file that inspect, review, export, predict, table and the Python API go through.

A run directory (``comining train --out RUN``) holds:

  config.json       the run's settings (``Config.to_dict()``); written when training starts or resumes
  data.json         what is needed of the data after training (``DATA_TYPES``; root is None for in-memory
                    sets, backbone only for --backbone frozen); written when training starts or resumes, and at its end
  metrics.jsonl     one JSON object per finished epoch (``EPOCH_TYPES``, losses, selection metrics, ...)
  checkpoint.pt     what resuming needs (``CHECKPOINT_TYPES``; the ledger is the selection log), weights-only
  results.json      the run's summary (``RESULT_TYPES``: test accuracy, noise, verdict counts); at the end
  verdicts.csv      a row per training sample, with the columns ``write_verdicts`` lists; at the end
  pred_probs.npy    N×C float32, the final model's class probabilities per verdicts.csv row; at the end
  skipped_files.txt image sets: one ``path<TAB>reason`` line per unreadable file
  curves.png        the per-epoch curves of metrics.jsonl (comining/report.py)

and what other commands write into it: contact_sheet.png (inspect), review.html with its sprite sheets
in review/ (review) and reviewed_labels.csv (review --serve, a label file as comining/labelfile.py reads).

data.json's ``"format"`` (``FORMAT``; 0 where absent) versions the layout as a whole; a run of a newer
format than this version knows is refused rather than misread. A reader turns a file that is missing
(where needed), truncated or damaged into one ``UserError`` line naming the file and how to get it
back. Every file is written to a temporary file and renamed over the old one, so a crash mid-write
leaves the previous complete file (and any broken line is damage).
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

from comining.config import ADDED_LATER, Config, noise_tag
from comining.errors import UserError
from comining.selection import SELECTION_METRICS, SELECTIONS
from comining.verdicts import VERDICTS

FORMAT = 1  # data.json's "format"; raise it when a file changes in a way older readers would misread

NUMBER, NONE = (int, float), type(None)
# The type of each key a reader uses (keys not listed pass as they are; None where a run may hold null).
CONFIG_TYPES = {"dataset": str, "method": str, "arch": str, "precision": str, "recipe": (str, NONE),
                "synthetic": (str, NONE), "data_root": (str, NONE), "train_subset": (int, NONE),
                "noise_type": str, "closed_rate": NUMBER, "open_ratio": NUMBER}
DATA_TYPES = {"format": int, "dataset": str, "root": (str, NONE), "classes": list, "channels": int,
              "image_size": int, "crop_size": int, "normalize": (list, NONE), "train_size": int,
              "full_train_size": int, "skipped_files": int, "backbone": dict}
RESULT_TYPES = {"last10_mean": NUMBER, "last10_std": NUMBER, "best_acc": NUMBER, "best_epoch": int,
                "epochs": int, "seconds": NUMBER, "estimated_noise_rate": NUMBER,
                "estimated_noise_rate_interval": (list, NONE), "noise": dict}
RESULT_KEYS = ("last10_mean", "last10_std", "best_acc", "best_epoch", "epochs", "seconds")  # always written
EPOCH_TYPES = {"epoch": int, "test_acc": NUMBER, **{key: (*NUMBER, NONE) for key in SELECTION_METRICS}}
VERDICT_COLUMNS = ("sample", "given_label", "verdict")  # every verdicts.csv has them, older ones too
NUMBER_COLUMNS = {"label_quality": False, "outlier_score": False, "score": True}  # True: empty allowed (no score)
# What `comining train --resume RUN` writes again from checkpoint.pt (it finishes an unfinished run first).
REWRITTEN_ON_RESUME = {"config.json", "data.json", "results.json", "verdicts.csv", "pred_probs.npy"}


# The files a training run writes into its directory: no other command writes over them.
RUN_FILES = ("config.json", "data.json", "metrics.jsonl", "checkpoint.pt", "results.json", "verdicts.csv",
             "pred_probs.npy", "skipped_files.txt", "curves.png")
# What other commands write into it: inspect's contact sheet, review's page and the folder of its sprite
# sheets, and review --serve's saved labels.
COMMAND_FILES = ("contact_sheet.png", "review.html", "review", "reviewed_labels.csv")


# What a run writes before its first checkpoint; once it has more (metrics, a checkpoint, results), it
# holds a run, even where its checkpoint was later deleted to save disk.
BEFORE_FIRST_CHECKPOINT = {"config.json", "data.json", "skipped_files.txt"}


def holds_a_run(folder: Path) -> bool:
    """Whether ``folder`` holds a training run: its config.json, and a file a run writes from its first
    checkpoint on."""
    return (folder / "config.json").is_file() and any(
        (folder / name).is_file() for name in set(RUN_FILES) - BEFORE_FIRST_CHECKPOINT)


def check_output(path, force: bool, run_dir=None, inputs=(), flag: str = "--out") -> Path:
    """``path`` where a command may write its output there: never over a file a training run wrote,
    of ``run_dir`` or of any other run, nor over one of the command's ``inputs`` (even with
    ``force``); over any other existing file only with ``force``. UserError otherwise."""
    path = Path(path)
    target = path.resolve()
    if run_dir is not None and target.parent == Path(run_dir).resolve() and target.name in RUN_FILES:
        raise UserError(f"{path} is the run's own {target.name}: choose another {flag}")
    if target.name in RUN_FILES and holds_a_run(target.parent):
        raise UserError(f"{path} is the {target.name} of the run in {path.parent}: choose another {flag}")
    if any(target == Path(p).resolve() for p in inputs):
        raise UserError(f"{path} is one of the files this command reads: choose another {flag}")
    if (path.exists() or path.is_symlink()) and not force:
        raise UserError(f"{path} already exists: pass --force to replace it, or choose another {flag}")
    return path


def foreign_entry(out: Path) -> str | None:
    """Why training may not write into the existing folder ``out``: the name of an entry it did not
    make; None where ``out`` is new, empty, or holds only what a run
    that stopped before its first checkpoint wrote (its config.json a whole run's settings). Hidden
    entries (.DS_Store) are passed over: a run writes none, so none is replaced. A folder that holds a
    run (``holds_a_run``) is the caller's to refuse first."""
    if not out.is_dir():
        return None
    entries = sorted(entry.name for entry in out.iterdir() if not entry.name.startswith("."))
    for name in entries:
        if name not in BEFORE_FIRST_CHECKPOINT:
            return name
    if not entries:
        return None
    try:  # a run writes config.json first, with every setting
        written = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return "config.json" if "config.json" in entries else entries[0]
    if not isinstance(written, dict) or set(Config().to_dict()) - set(written):
        return "config.json"
    return None


def default_out(cfg: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.dataset}-{noise_tag(cfg)}-{cfg.method}-{stamp}"


_UMASK = os.umask(0o022)  # reading the umask means setting it: put it back at once
os.umask(_UMASK)


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


def write_verdicts(run: "RunDir", selections, data, final) -> None:
    """verdicts.csv (the columns below, a row per training sample whose file did not break) and pred_probs.npy
    of a finished run, from ``final`` (``comining.verdicts.Verdicts``) and the last step's ``selections``."""
    def name(label):
        return classes[label] if 0 <= label < len(classes) else f"open:{label}"

    def scores(values, empty=False):
        return ["" if empty and math.isnan(v) else f"{v:.4f}" for v in values.tolist()]

    classes, true = data.classes, data.true_labels
    columns = {"sample": data.sample_names(), "given_label": [name(y) for y in data.labels.tolist()],
               **({"true_label": [name(y) for y in true.tolist()]} if true is not None else {}),
               "verdict": [VERDICTS[v] for v in final.verdict.tolist()],
               "suggested_label": [name(y) if y >= 0 else "" for y in final.suggested.tolist()],
               "label_quality": scores(final.label_quality), "outlier_score": scores(final.outlier_score),
               "selection": [SELECTIONS[s] for s in selections.status.tolist()],
               "score": scores(selections.score, empty=True)}
    rows = [row for i, row in enumerate(zip(*columns.values())) if i not in data.failed_positions]
    atomic_csv(run.verdicts, list(columns), rows)
    buffer = io.BytesIO()
    np.save(buffer, final.pred_probs.astype(np.float32))
    atomic_write(run.pred_probs, buffer.getvalue())


def write_data_files(run: "RunDir", dataset: str, data, normalize, backbone: dict | None = None) -> None:
    """data.json and, for image sets, skipped_files.txt, as listed above; ``normalize`` is the evaluation
    view's (mean, std), ``backbone`` the --backbone frozen record of comining/models/backbone.py."""
    root = data.root
    atomic_json(run.data_info, {
        "format": FORMAT, "dataset": dataset, "root": str(root.resolve()) if root is not None else None,
        "classes": list(data.classes), "channels": data.channels, "image_size": data.image_size,
        "crop_size": data.crop_size, "normalize": normalize, "train_size": len(data),
        "full_train_size": data.full_size,  # what a label file covers (export)
        "skipped_files": len(data.skipped_files), **({"backbone": backbone} if backbone else {})})
    if data.reads_files:
        lines = "".join(f"{path}\t{reason}\n" for path, reason in data.skipped_files.items())
        atomic_write(run.skipped_files, lines.encode())


JSON_KINDS = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list",
              dict: "an object", NONE: "null"}
CHECKPOINT_TYPES = {"config": dict, "epoch": int, "step": int, "method": dict, "optimizer": dict, "ledger": dict,
                    "rng": dict, "history": list}


def _problem(record, types: dict, keys=()) -> str | None:
    """What is wrong with ``record`` as an object holding ``keys`` and every key of ``types`` of its
    type (the kinds named as JSON names them), or None."""
    def kind(value):
        return JSON_KINDS.get(type(value), type(value).__name__)

    if not isinstance(record, dict):
        return f"holds {kind(record)}, not a JSON object"
    missing = [key for key in keys if key not in record]
    if missing:
        return f"has no {', '.join(missing)}"
    return next((f"{key} is {kind(record[key])}" for key, kinds in types.items()
                 if key in record and not isinstance(record[key], kinds)), None)


def _first_line(err: BaseException) -> str:
    """The first sentence of an exception's message, for a one-line error."""
    return (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0][:120]


class RunDir:
    """Paths, writers and readers of one run directory."""

    def __init__(self, path):
        self.path = Path(path)
        (self.config, self.data_info, self.metrics, self.checkpoint, self.results, self.verdicts, self.pred_probs,
         self.skipped_files, self.curves) = (self.path / name for name in RUN_FILES)
        self.contact_sheet, self.review_page, self.review_sheets, self.reviewed_labels = (
            self.path / name for name in COMMAND_FILES)

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create run directory {self.path} ({err.strerror}): choose another --out") from None

    def write_metrics(self, history: list[dict]) -> None:
        """Rewrite metrics.jsonl from the history (atomic, so a resumed run never duplicates lines)."""
        atomic_write(self.metrics, "".join(json.dumps(r) + "\n" for r in history).encode())

    # -- what to do about a file that cannot be read ----------------------------------------------

    def remedy(self, name: str, missing: bool = False) -> str:
        """How to get ``name`` back, as the end of a one-line error."""
        if name in REWRITTEN_ON_RESUME and self.checkpoint.is_file():
            return (f"`comining train --resume {self.path}` writes it again from checkpoint.pt "
                    "(finishing the run first if it had not finished)")
        fixes = {"checkpoint.pt": "pass the --out folder of a run that has one, or start a new run",
                 "metrics.jsonl": "train the run again to record its per-epoch history" if missing
                 else "remove it to go on without the per-epoch history, or train the run again"}
        return fixes.get(name, "train the run again (it has no checkpoint.pt to rewrite it from)")

    def damaged(self, name: str, reason: str) -> UserError:
        """The one-line error for a file of this run that is truncated, damaged or inconsistent."""
        return UserError(f"{self.path / name} is damaged ({reason}): {self.remedy(name)}")

    def _existing(self, name: str, required: bool) -> Path | None:
        """The path of ``name``; None when it is missing and not ``required``, else a UserError."""
        path = self.path / name
        if path.is_file():
            return path
        if not self.path.is_dir():
            what = f"{self.path} is a file, not a run directory" if self.path.exists() else \
                f"run directory {self.path} not found"
            raise UserError(f"{what}: pass the --out folder of a comining train run")
        if required:
            raise UserError(f"no {name} in {self.path}: {self.remedy(name, missing=True)}")
        return None

    def _text(self, name: str, required: bool = True, unit: str = "") -> str | None:
        """The file's text; a text in ``unit``s (line, row) must end with a whole one."""
        path = self._existing(name, required)
        if path is None:
            return None
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise self.damaged(name, f"not UTF-8 text at byte {err.start}") from None
        if not text.strip():
            raise self.damaged(name, "empty")
        if unit and not text.endswith("\n"):
            raise self.damaged(name, f"it ends in the middle of a {unit}: truncated")
        return text

    def _checked(self, name: str, record, types: dict, keys=(), where: str = "") -> dict:
        """``record``, or the error for what ``_problem`` finds wrong with it (``where`` in ``name``)."""
        problem = _problem(record, types, keys)
        if problem:
            raise self.damaged(name, f"{where} {problem}".lstrip())
        return record

    def _json(self, name: str, types: dict, keys=(), required: bool = True) -> dict | None:
        text = self._text(name, required)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except ValueError as err:
            raise self.damaged(name, f"not complete JSON: {getattr(err, 'msg', err)}, line "
                                     f"{getattr(err, 'lineno', '?')}") from None
        return self._checked(name, value, types, keys)

    # -- the readers: one per file ------------------------------------------------------------------

    def read_config(self) -> dict:
        """config.json: the run's settings as stored (``comining.config.from_stored`` reads them)."""
        return self._json("config.json", CONFIG_TYPES)

    def read_data_info(self, keys=()) -> dict:
        """data.json, which must hold ``keys``; a run of a newer format than ``FORMAT`` is refused."""
        info = self._json("data.json", DATA_TYPES, keys)
        if info.get("format", 0) > FORMAT:
            raise UserError(f"{self.data_info} is of run format {info['format']}, newer than this comining "
                            f"reads ({FORMAT}): read the run with the comining that wrote it, or upgrade")
        if not all(isinstance(name, str) for name in info.get("classes", ())):
            raise self.damaged("data.json", "classes holds something other than names")
        return info

    def read_results(self, required: bool = True) -> dict:
        """results.json ({} when it is missing and not ``required``: a run that has not finished)."""
        return self._json("results.json", RESULT_TYPES, RESULT_KEYS, required) or {}

    def read_history(self, required: bool = True) -> list[dict]:
        """metrics.jsonl as per-epoch records ([] when it is missing and not ``required``)."""
        text = self._text("metrics.jsonl", required, unit="line")
        if text is None:
            return []
        history = []
        for number, line in enumerate(text.split("\n")[:-1], 1):
            try:
                record = json.loads(line)
            except ValueError:
                raise self.damaged("metrics.jsonl", f"line {number} is not JSON") from None
            history.append(self._checked("metrics.jsonl", record, EPOCH_TYPES, where=f"line {number}"))
        return history

    def read_verdicts(self, columns=VERDICT_COLUMNS) -> list[dict]:
        """verdicts.csv as one dict per row keyed by column name, in training-set order; the file must
        have ``columns``. Verdicts and selections must be known ones, scores numbers."""
        name = "verdicts.csv"
        text = self._text(name, unit="row")
        try:
            header, *lines = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as err:
            raise self.damaged(name, f"not CSV: {_first_line(err)}") from None
        missing = [column for column in columns if column not in header]
        if missing:
            raise UserError(f"{self.verdicts} has no column {', '.join(missing)} (damaged, or written by an older "
                            f"comining): {self.remedy(name)}")
        rows = []
        for number, fields in enumerate(lines, 2):
            if len(fields) != len(header):
                raise self.damaged(name, f"row {number} has {len(fields)} fields, expected {len(header)}")
            row = dict(zip(header, fields))
            unknown = next((c for c in ("verdict", "selection") if row.get(c, SELECTIONS[0]) not in SELECTIONS), None)
            if unknown:
                raise self.damaged(name, f"row {number} gives {row['sample']!r} the {unknown} {row[unknown]!r}, "
                                         f"not one of {', '.join(SELECTIONS)}")
            for column, may_be_empty in NUMBER_COLUMNS.items():
                value = row.get(column)
                if value is not None and not (may_be_empty and value == ""):
                    try:
                        float(value)
                    except ValueError:
                        raise self.damaged(name, f"row {number} has {column} {value!r}, not a number") from None
            rows.append(row)
        return rows

    def read_pred_probs(self) -> np.ndarray:
        """pred_probs.npy: N×C float probabilities, one row per verdicts.csv row."""
        path = self._existing("pred_probs.npy", required=True)
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":  # np.load would read anything else as a pickle
                raise self.damaged("pred_probs.npy", "not a .npy file")
        try:
            probs = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:  # truncated, or an object array
            raise self.damaged("pred_probs.npy", f"an incomplete .npy array: {_first_line(err)}") from None
        if not isinstance(probs, np.ndarray) or probs.ndim != 2 or probs.dtype.kind != "f":
            raise self.damaged("pred_probs.npy", f"holds {getattr(probs, 'dtype', 'no')} data of shape "
                                                 f"{getattr(probs, 'shape', '?')}, not N×C probabilities")
        return probs

    def load_checkpoint(self) -> dict:
        """checkpoint.pt, weights-only, with every part a resume needs."""
        self._existing("checkpoint.pt", required=True)
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated, not a torch file, or holds code
            raise UserError(f"checkpoint {self.checkpoint} cannot be loaded ({_first_line(err)}): "
                            "it is damaged or not a comining checkpoint; start a new run") from None
        if _problem(state, CHECKPOINT_TYPES, keys=CHECKPOINT_TYPES):
            raise UserError(f"checkpoint {self.checkpoint} is not a comining checkpoint (parts missing or of the "
                            "wrong kind): start a new run")
        return state

    def read_networks(self, device) -> tuple[list[torch.nn.Module], dict, dict]:
        """(the run's networks in eval mode on ``device``, data.json, settings), rebuilt from
        checkpoint.pt with data.json's geometry and the checkpoint's settings (config.json where it has none)."""
        from comining.models import build_model  # the networks' code only where networks are built

        info = self.read_data_info(keys=("classes", "channels", "image_size", "crop_size"))
        state = self.load_checkpoint()
        cfg = state["config"] or self.read_config()
        method = state["method"]
        count = 1 + max((int(k.split(".")[1]) for k in method if k.startswith("nets.")), default=-1)
        if count == 0:
            raise UserError(f"checkpoint {self.checkpoint} holds no networks: it is not a comining checkpoint")
        backbone, classes = info.get("backbone"), len(info["classes"])
        if backbone is not None:  # --backbone frozen: heads on the features of a recorded backbone
            from comining.models.backbone import FrozenNet, restore_backbone
            frozen = restore_backbone(backbone, self.path).to(device)
        nets = []
        for i in range(count):
            net = (build_model(cfg["arch"], info["channels"], classes, info["crop_size"]) if backbone is None
                   else build_model(cfg.get("head", ADDED_LATER["head"]), backbone["dim"], classes, 1))
            prefix = f"nets.{i}."
            try:
                net.load_state_dict({k[len(prefix):]: v for k, v in method.items() if k.startswith(prefix)})
            except RuntimeError as err:
                raise UserError(f"checkpoint {self.checkpoint} does not fit its config.json "
                                f"({_first_line(err)[:100]}): the run directory is inconsistent; train again") from None
            nets.append((net if backbone is None else FrozenNet(frozen, net)).to(device).eval())
        return nets, info, cfg


def read_run(run_dir, columns=VERDICT_COLUMNS) -> tuple[list[dict], dict, dict]:
    """(verdicts.csv rows, data.json, config.json) of a finished run: what inspect and review show."""
    run = RunDir(run_dir)
    return run.read_verdicts(columns), run.read_data_info(), run.read_config()
