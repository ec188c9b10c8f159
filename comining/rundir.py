"""The run directory as one schema: every file in it, the writers of the training run, and the one
reader of each file that inspect, review, export, predict, table and the Python API go through.

A run directory (``comining train --out RUN``) holds:

  config.json       the run's settings (``Config.to_dict()``); written when training starts or resumes
  data.json         what is needed of the data after training: format, dataset, root (image sets; None
                    for in-memory data sets), classes, channels, image_size, crop_size, normalize (the
                    evaluation view's (mean, std) or None), train_size, full_train_size, skipped_files,
                    and for --backbone frozen ``backbone`` (what it is, its file and SHA-256, feature width:
                    comining/models/backbone.py); written when training starts or resumes and again at its end
  metrics.jsonl     one JSON object per finished epoch (epoch, test_acc, losses, selection metrics, ...);
                    replaced as a whole after every epoch
  checkpoint.pt     what resuming needs (config, epoch, step, method, optimizer, ledger: the selection log, rng, history);
                    weights-only torch.save, replaced after every epoch and on a stop
  results.json      the run's summary (test accuracy, noise, verdict counts); written at the end
  verdicts.csv      per training sample: sample, given_label, [true_label], verdict, suggested_label,
                    label_quality, outlier_score, selection, score (see ``write_verdicts``); at the end
  pred_probs.npy    N×C float32, the final model's class probabilities per verdicts.csv row; at the end
  skipped_files.txt image sets: one ``path<TAB>reason`` line per unreadable file
  curves.png        the per-epoch curves of metrics.jsonl (comining/report.py)

and what other commands write into it: contact_sheet.png (inspect), review.html with its sprite sheets
in review/ (review) and reviewed_labels.csv (review --serve, a label file as comining/labelfile.py reads).

Format: data.json's ``"format"`` (``FORMAT``) versions the layout as a whole. It lives there because
data.json is the run's description of itself, written from the first epoch on, while results.json,
verdicts.csv and pred_probs.npy are compared byte for byte across versions and config.json is read
back as settings. A run written before the key existed has the same files and reads as format 0; a
run of a newer format than this version knows is refused rather than misread.

Every reader checks what it reads: a file that is missing (where it is needed), truncated or damaged
is one ``UserError`` line naming the file and how to get it back, never a traceback or a partial
result. Every file that is replaced as a whole is written to a temporary file in the same directory
and renamed over the old one, so a crash or a full disk mid-write leaves the previous complete file;
metrics.jsonl is one of them, so even a run in progress never shows a partial line, and any broken
line is damage.
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
from comining.selection import SELECTIONS
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
                "epochs": int, "seconds": NUMBER, "estimated_noise_rate": NUMBER, "noise": dict}
RESULT_KEYS = ("last10_mean", "last10_std", "best_acc", "best_epoch", "epochs", "seconds")  # always written
EPOCH_TYPES = {"epoch": int, "test_acc": NUMBER, "label_precision": (*NUMBER, NONE),
               "label_recall": (*NUMBER, NONE), "relabel_acc": (*NUMBER, NONE), "open_discarded": (*NUMBER, NONE)}
VERDICT_COLUMNS = ("sample", "given_label", "verdict")  # every verdicts.csv has them, older ones too
NUMBER_COLUMNS = {"label_quality": False, "outlier_score": False, "score": True}  # True: empty allowed (no score)
# What `comining train --resume RUN` writes again from checkpoint.pt (it finishes an unfinished run first).
REWRITTEN_ON_RESUME = {"config.json", "data.json", "results.json", "verdicts.csv", "pred_probs.npy"}


# The files a training run writes into its directory: no other command writes over them.
RUN_FILES = ("config.json", "data.json", "metrics.jsonl", "checkpoint.pt", "results.json", "verdicts.csv",
             "pred_probs.npy", "skipped_files.txt", "curves.png")


def check_output(path, force: bool, run_dir=None, inputs=(), flag: str = "--out") -> Path:
    """``path`` where a command may write its output there: never over a file the training run of
    ``run_dir`` wrote, nor over one of the command's ``inputs`` (even with ``force``); over any other
    existing file only with ``force``. UserError otherwise."""
    path = Path(path)
    target = path.resolve()
    if run_dir is not None and target.parent == Path(run_dir).resolve() and target.name in RUN_FILES:
        raise UserError(f"{path} is the run's own {target.name}: choose another {flag}")
    if any(target == Path(p).resolve() for p in inputs):
        raise UserError(f"{path} is one of the files this command reads: choose another {flag}")
    if (path.exists() or path.is_symlink()) and not force:
        raise UserError(f"{path} already exists: pass --force to replace it, or choose another {flag}")
    return path


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


def write_verdicts(run: "RunDir", selections, data, final) -> None:
    """verdicts.csv and pred_probs.npy of a finished run.

    verdicts.csv has, per training sample: sample, given_label, [true_label], verdict (the final
    verdict), suggested_label, label_quality, outlier_score, selection (the last step's selection)
    and score (its selection score); ``final`` is a ``comining.verdicts.Verdicts``.
    pred_probs.npy holds ``final.pred_probs`` (N×C float32, one row per training sample).
    """
    classes = data.classes
    status, score = selections.status.tolist(), selections.score.tolist()
    verdict, suggested = final.verdict.tolist(), final.suggested.tolist()
    quality, outlier = final.label_quality.tolist(), final.outlier_score.tolist()
    given = data.labels.tolist()
    true = data.true_labels.tolist() if data.true_labels is not None else None
    names = data.sample_names()
    failed = data.failed_positions  # image files that broke during training

    def name(label):
        return classes[label] if 0 <= label < len(classes) else f"open:{label}"

    rows = [[names[i], name(given[i]), *([name(true[i])] if true else []), VERDICTS[verdict[i]],
             name(suggested[i]) if suggested[i] >= 0 else "", f"{quality[i]:.4f}", f"{outlier[i]:.4f}",
             SELECTIONS[status[i]], "" if math.isnan(score[i]) else f"{score[i]:.4f}"]
            for i in range(len(names)) if i not in failed]
    header = ["sample", "given_label", *(["true_label"] if true else []), "verdict", "suggested_label",
              "label_quality", "outlier_score", "selection", "score"]
    atomic_csv(run.verdicts, header, rows)
    buffer = io.BytesIO()
    np.save(buffer, final.pred_probs.astype(np.float32))
    atomic_write(run.pred_probs, buffer.getvalue())


def write_data_files(run: "RunDir", dataset: str, data, normalize, backbone: dict | None = None) -> None:
    """data.json (what predict and inspect need: classes, image geometry, the evaluation view's
    normalisation, the data root, and for --backbone frozen the ``backbone`` record of
    comining/models/backbone.py) and, for image folders, skipped_files.txt (path<TAB>reason)."""
    root = data.root
    atomic_json(run.data_info, {
        "format": FORMAT, "dataset": dataset, "root": str(root.resolve()) if root is not None else None,
        "classes": list(data.classes), "channels": data.channels, "image_size": data.image_size,
        "crop_size": data.crop_size, "normalize": normalize, "train_size": len(data),
        "full_train_size": data.full_size,  # what a label file covers (export)
        "skipped_files": len(data.skipped_files), **({"backbone": backbone} if backbone else {})})
    if data.reads_files:
        lines = "".join(f"{path}\t{reason}\n" for path, reason in data.skipped_files.items())
        atomic_write(run.path / "skipped_files.txt", lines.encode())


def _json_kind(value) -> str:
    """How JSON would name ``value``'s type, for messages."""
    for kinds, name in ((bool, "true/false"), (NUMBER, "a number"), (str, "a string"), (list, "a list"),
                        (dict, "an object"), (NONE, "null")):
        if isinstance(value, kinds):
            return name
    return type(value).__name__


def _first_line(err: BaseException) -> str:
    """The first sentence of an exception's message, for a one-line error."""
    return (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0][:120]


class RunDir:
    """Paths, writers and readers of one run directory."""

    def __init__(self, path):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.data_info = self.path / "data.json"
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

    # -- what to do about a file that cannot be read ----------------------------------------------

    def remedy(self, name: str, missing: bool = False) -> str:
        """How to get ``name`` back, as the end of a one-line error."""
        if name == "metrics.jsonl" and missing:
            return "train the run again to record its per-epoch history"
        if name in REWRITTEN_ON_RESUME and self.checkpoint.is_file():
            return (f"`comining train --resume {self.path}` writes it again from checkpoint.pt "
                    "(finishing the run first if it had not finished)")
        if name == "checkpoint.pt":
            return "pass the --out folder of a run that has one, or start a new run"
        if name == "metrics.jsonl":
            return "remove it to go on without the per-epoch history, or train the run again"
        return "train the run again (it has no checkpoint.pt to rewrite it from)"

    def damaged(self, name: str, reason: str) -> UserError:
        """The one-line error for a file of this run that is truncated, damaged or inconsistent."""
        return UserError(f"{self.path / name} is damaged ({reason}): {self.remedy(name)}")

    def _existing(self, name: str, required: bool) -> Path | None:
        """The path of ``name``; None when it is missing and not ``required``, else a UserError."""
        path = self.path / name
        if path.is_file():
            return path
        if not self.path.is_dir():
            raise UserError(f"run directory {self.path} not found: pass the --out folder of a comining train run")
        if required:
            raise UserError(f"no {name} in {self.path}: {self.remedy(name, missing=True)}")
        return None

    def _text(self, name: str, required: bool = True) -> str | None:
        path = self._existing(name, required)
        if path is None:
            return None
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise self.damaged(name, f"not UTF-8 text at byte {err.start}") from None
        if not text.strip():
            raise self.damaged(name, "empty")
        return text

    def _checked(self, name: str, record, types: dict, keys=(), where: str = "") -> dict:
        """``record`` if it is a JSON object holding ``keys`` with every key of ``types`` of its type."""
        where = f"{where} " if where else ""
        if not isinstance(record, dict):
            raise self.damaged(name, f"{where}holds {_json_kind(record)}, not a JSON object")
        missing = [key for key in keys if key not in record]
        if missing:
            raise self.damaged(name, f"{where}has no {', '.join(missing)}")
        for key, kinds in types.items():
            if key in record and not isinstance(record[key], kinds):
                raise self.damaged(name, f"{where}{key} is {_json_kind(record[key])}")
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
        text = self._text("metrics.jsonl", required)
        if text is None:
            return []
        if not text.endswith("\n"):
            raise self.damaged("metrics.jsonl", "it ends in the middle of a line: truncated")
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
        text = self._text(name)
        if not text.endswith("\n"):
            raise self.damaged(name, "it ends in the middle of a row: truncated")
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
            for column in ("verdict", "selection"):
                if column in row and row[column] not in SELECTIONS:
                    raise self.damaged(name, f"row {number} gives {row['sample']!r} the {column} {row[column]!r}, "
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
        kinds = {"config": dict, "epoch": int, "step": int, "method": dict, "optimizer": dict, "ledger": dict,
                 "rng": dict, "history": list}
        if not isinstance(state, dict) or any(not isinstance(state.get(k), t) for k, t in kinds.items()):
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
        backbone = info.get("backbone")
        if backbone is not None:  # --backbone frozen: heads on the features of a recorded backbone
            from comining.models.backbone import FrozenNet, restore_backbone
            frozen = restore_backbone(backbone, self.path).to(device)
        nets = []
        for i in range(count):
            if backbone is None:
                net = build_model(cfg["arch"], info["channels"], len(info["classes"]), info["crop_size"])
            else:
                net = build_model(cfg.get("head", "linear"), backbone["dim"], len(info["classes"]), 1)
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
