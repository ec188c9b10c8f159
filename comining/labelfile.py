"""Label files: training labels that come from a file rather than from the data set.

Formats (docs/DATA.md, "Label files"):

- CSV with a header row holding a ``label`` column and a key column: ``index`` (in-memory data sets:
  the position in the training set) or ``path`` (image sets: as in verdicts.csv ``sample``). A label
  is a class name or an integer class index; an empty label or -1 leaves the sample out of training,
  and so does a sample the file does not list.
- ``.npy``: one integer per training sample, in the training set's order; -1 = left out.
- ``.pt``: the CIFAR-N format, a ``torch.save``d dict of integer arrays with one entry per training
  sample (``clean_label``, ``aggre_label``, ``worse_label``, ``noisy_label``, ...), one of which is
  picked by key. Read with ``weights_only`` loading: a file that would run code is refused.

Every reader returns an int64 array aligned with the training samples, -1 where a sample is left out,
and raises UserError with one line naming the file and the fix. ``comining export`` and the review page
write files with ``write_csv`` / ``write_npy``.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path

import numpy as np

from comining.errors import UserError

LEFT_OUT = -1
DEFAULT_KEYS = ("aggre_label", "noisy_label")  # CIFAR-10N's and CIFAR-100N's usual noisy labels
KEY_COLUMNS = ("index", "path")


# -- reading ------------------------------------------------------------------------------------

def verdict_label(verdict: str, given: str, suggested: str | None) -> str | None:
    """The label a sample keeps when nobody decides otherwise (``export``, and the review page's
    default): clean → the given label, relabelled → the suggested one, discarded → left out (None).
    A sample no step judged (``unseen``) keeps its given label: the run had no reason to doubt it."""
    if verdict == "discarded":
        return None
    if verdict == "relabelled" and suggested:
        return suggested
    return given


def read_by_position(path, num_samples: int, classes: list[str], key: str | None = None) -> np.ndarray:
    """Labels of an in-memory training set of ``num_samples`` (the whole set, before any subset).

    ``path``: a ``.npy``, a CIFAR-N ``.pt`` (``key`` picks the array) or a CSV with header
    ``index,label``. Returns int64 [num_samples], class indices into ``classes`` or -1 (left out).
    """
    path = Path(path)
    kind = file_kind(path)
    if key is not None and kind != "pt":
        raise UserError(f"--label-key {key} picks an array of a .pt label file, but {path} is a .{kind}: drop it")
    if kind == "csv":
        column, rows = read_table(path)
        if column != "index":
            raise UserError(f"{path} lists samples by path, but this data set is in memory: its samples are "
                            "numbered, so give a CSV with header index,label (or a .npy)")
        labels = np.full(num_samples, LEFT_OUT, dtype=np.int64)
        for line, index, text in rows:
            position = _integer(index)
            if position is None or not 0 <= position < num_samples:
                raise UserError(f"{path} line {line}: index {index!r} is not a training sample "
                                f"(0..{num_samples - 1}): fix or remove the row")
            labels[position] = class_index(text, classes, f"{path} line {line}")
        return labels
    values = read_npy(path) if kind == "npy" else read_cifar_n(path, key)
    if len(values) != num_samples:
        raise UserError(f"{path} holds {len(values)} labels but the training set has {num_samples} samples: "
                        "a label file covers the whole training set (before --train-subset), one label per sample")
    return check_range(values, len(classes), path)


def read_by_path(path, names: list[str], root, classes: list[str], key: str | None = None) -> np.ndarray:
    """Labels of an image set whose samples are ``names`` (paths relative to ``root``, or absolute).

    ``path``: a CSV with header ``path,label``; its paths are relative to ``root`` (as verdicts.csv
    names samples) or absolute. Returns int64 [len(names)]: class indices, -1 for samples left out
    (an empty label, -1, or not listed). Listed paths that are not training samples are ignored.
    ``key`` must be None: it names an array of a .pt, which cannot match images by path.
    """
    path = Path(path)
    kind = file_kind(path)
    if kind != "csv" or key is not None:
        raise UserError(f"{path}: the labels of an image set are matched by path; give a CSV with header "
                        "path,label and no --label-key (a .npy or .pt only fits in-memory data sets)")
    column, rows = read_table(path)
    if column != "path":
        raise UserError(f"{path} numbers its samples (index column), but image sets are matched by path: "
                        "give a CSV with header path,label")
    given: dict[str, int] = {}
    for line, name, text in rows:
        where = _absolute(root, name)
        if where in given:
            raise UserError(f"{path} line {line}: {name} is listed twice: keep one row per image")
        given[where] = class_index(text, classes, f"{path} line {line}")
    return np.array([given.get(_absolute(root, n), LEFT_OUT) for n in names], dtype=np.int64)


def file_kind(path: Path) -> str:
    """'csv', 'npy' or 'pt' from the file's extension; UserError for anything else or a missing file."""
    kind = {".csv": "csv", ".npy": "npy", ".pt": "pt", ".pth": "pt"}.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"label file {path} is neither .csv, .npy nor .pt: save it in one of those formats "
                        "(docs/DATA.md, Label files)")
    if not path.is_file():
        raise UserError(f"label file {path} not found: check the path given to --labels")
    return kind


def read_table(path: Path) -> tuple[str, list[tuple[int, str, str]]]:
    """(key column 'index' or 'path', [(line number, key, label text)]) of a label CSV.

    The header must name a ``label`` column and one key column; other columns are ignored.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheets write a BOM
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            keys = [c for c in KEY_COLUMNS if c in header]
            if "label" not in header or len(keys) != 1:
                raise UserError(f"{path} needs a header row with the columns index,label (in-memory data sets) "
                                f"or path,label (image sets); its first row is {','.join(header) or 'empty'}")
            k, lab = header.index(keys[0]), header.index("label")
            rows = [(reader.line_num, row[k].strip(), row[lab].strip() if lab < len(row) else "")
                    for row in reader if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path} is not a readable UTF-8 CSV ({err}): save it as CSV (UTF-8)") from None
    except IndexError:
        raise UserError(f"{path} has a row with fewer columns than its header: fix the row") from None
    return keys[0], rows


def class_index(text: str, classes: list[str], where: str) -> int:
    """The class index a CSV label names: a class name, an integer 0..C-1, or -1 / empty (left out)."""
    if text == "" or text == str(LEFT_OUT):
        return LEFT_OUT
    if text in classes:
        return classes.index(text)
    number = _integer(text)
    if number is not None and 0 <= number < len(classes):
        return number
    shown = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
    raise UserError(f"{where}: label {text!r} is neither a class ({shown}) nor a class number "
                    f"0..{len(classes) - 1}; use -1 or leave it empty to leave the sample out")


def read_npy(path: Path) -> np.ndarray:
    """The 1-D integer array in a .npy file (never unpickles: object arrays are refused)."""
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":  # np.load would take anything else for a pickle
            raise UserError(f"{path} is not a valid .npy file (no NumPy header): save it with np.save")
    try:
        values = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise UserError(f"{path} holds Python objects, not integers: save the labels with "
                            "np.save(file, labels.astype(np.int64))") from None
        raise UserError(f"{path} is not a valid .npy file ({err}): save it with np.save") from None
    except (OSError, EOFError) as err:
        raise UserError(f"{path} cannot be read as .npy ({err}): save it with np.save") from None
    return as_label_array(values, path)


def read_cifar_n(path: Path, key: str | None) -> np.ndarray:
    """The array ``key`` (default aggre_label or noisy_label) of a CIFAR-N style .pt file."""
    import torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols: the error says enough
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  not a torch file, damaged, or asks for code to run
        reason = " ".join(str(err).split())
        if "GLOBAL" in reason or "Unsupported global" in reason or "Can only build" in reason:
            raise UserError(f"{path} asks to run code or build objects when loaded, which is refused: a label "
                            "file holds only arrays of integers (see docs/DATA.md)") from None
        raise UserError(f"{path} cannot be read as a torch file (damaged, or not written by torch.save): "
                        "save the dict of label arrays with torch.save") from None
    if not isinstance(content, dict):
        return as_label_array(content, path)
    keys = [str(k) for k in content]
    if key is None:
        key = next((k for k in DEFAULT_KEYS if k in content), None)
        if key is None:
            raise UserError(f"{path} holds {', '.join(keys) or 'nothing'}: pick the labels with --label-key KEY")
    elif key not in content:
        raise UserError(f"--label-key {key} is not in {path}; it holds {', '.join(keys)}")
    return as_label_array(content[key], path, key)


def as_label_array(values, path: Path, key: str | None = None) -> np.ndarray:
    """``values`` (array, tensor or list) as a 1-D int64 array; UserError unless whole numbers."""
    what = f"{path}[{key}]" if key else str(path)
    if hasattr(values, "numpy"):  # a torch tensor
        values = values.detach().cpu().numpy()
    try:
        values = np.asarray(values)
    except (TypeError, ValueError):
        values = np.asarray([], dtype=object)
    if values.ndim != 1 or values.dtype.kind not in "uifb" or (
            values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values == np.round(values)))):
        raise UserError(f"{what} should be a list of integer labels, one per training sample, but is "
                        f"{values.dtype} of shape {values.shape}")
    return values.astype(np.int64)


def check_range(labels: np.ndarray, num_classes: int, path: Path) -> np.ndarray:
    """``labels`` unchanged if every one is -1 or a class 0..num_classes-1; else UserError naming one."""
    bad = np.flatnonzero((labels < LEFT_OUT) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise UserError(f"{path}: label {labels[i]} of sample {i} is outside 0..{num_classes - 1} "
                        f"({bad.size} such labels); -1 leaves a sample out")
    return labels


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _absolute(root, name: str) -> str:
    """One spelling per file: relative names joined to ``root``, then normalised (links not followed)."""
    return os.path.abspath(os.path.join(root, name))


def _numpy_globals() -> list:
    """What unpickling plain numpy arrays needs, under numpy 2's and numpy 1's module names."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    kinds = "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64".split()
    return [np.ndarray, np.dtype, multiarray._reconstruct,
            (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
            (multiarray._reconstruct, "numpy._core.multiarray._reconstruct"),
            *{type(np.dtype(k)) for k in kinds}]


# -- writing ------------------------------------------------------------------------------------

def write_csv(path, column: str, keys: list[str], labels, classes: list[str]) -> None:
    """Write a label CSV atomically: header ``column,label``, one row per key, the label a class name
    (empty for -1, left out). ``column`` is 'index' or 'path'."""
    from comining.rundir import atomic_csv

    names = [classes[y] if y >= 0 else "" for y in np.asarray(labels, dtype=np.int64).tolist()]
    _written(path, lambda: atomic_csv(Path(path), [column, "label"], zip(keys, names)))


def write_npy(path, labels) -> None:
    """Write a .npy of int64 labels (-1 = left out), one per training sample, atomically."""
    from comining.rundir import atomic_write

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(labels, dtype=np.int64))
    _written(path, lambda: atomic_write(Path(path), buffer.getvalue()))


def _written(path, write) -> None:
    try:
        write()
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror or err}): choose another --out") from None
