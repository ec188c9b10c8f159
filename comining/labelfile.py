"""Label files: training labels that come from a file rather than from the data set.

The formats are docs/DATA.md's ("Label files"): a CSV keyed by ``index`` (in-memory data sets: the
position in the training set) or ``path`` (image sets: as verdicts.csv names the sample), a ``.npy`` of
one integer per training sample, or a CIFAR-N ``.pt`` dict of such arrays, one picked by key and read
with ``weights_only`` loading. An empty label or -1 leaves a sample out, and so does a sample a CSV
does not list; a sample listed twice is an error.

Every reader returns an int64 array aligned with the training samples, -1 where a sample is left out,
and raises UserError with one line naming the file and the fix. ``comining export`` and the review page
write files with ``write_csv`` / ``write_npy``.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from comining.errors import UserError

LEFT_OUT = -1
DEFAULT_KEYS = ("aggre_label", "noisy_label")  # CIFAR-10N's and CIFAR-100N's usual noisy labels
KEY_COLUMNS = ("index", "path")
SHOWN_CLASSES = 10  # an error lists this many classes, then their number
DIGITS = re.compile(r"[0-9]+")  # int() would also take '+3', '1_0' and non-ASCII digits


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
    """Labels of an in-memory training set of ``num_samples`` (the whole set, before any subset) from
    a ``.npy``, a CIFAR-N ``.pt`` (``key`` picks the array) or an ``index,label`` CSV."""
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
        first_line: dict[int, int] = {}
        for line, index, text in rows:
            position = int(index) if DIGITS.fullmatch(index) else None
            if position is None or position >= num_samples:
                raise UserError(f"{path} line {line}: index {index!r} is not a training sample "
                                f"(0..{num_samples - 1}): fix or remove the row")
            _once(first_line, position, line, f"{path} line {line}: index {index}")
            labels[position] = class_index(text, classes, f"{path} line {line}")
        return labels
    values = read_npy(path) if kind == "npy" else read_cifar_n(path, key)
    if len(values) != num_samples:
        raise UserError(f"{path} holds {len(values)} labels but the training set has {num_samples} samples: "
                        "a label file covers the whole training set (before --train-subset), one label per sample")
    return check_range(values, len(classes), path)


def read_by_path(path, names: list[str], root, classes: list[str], key: str | None = None) -> np.ndarray:
    """Labels of an image set whose samples are ``names`` (paths relative to ``root``, or absolute)
    from a ``path,label`` CSV; listed paths that are not training samples are ignored. ``key`` must be
    None: it names an array of a .pt, which cannot match images by path."""
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
    first_line: dict[str, int] = {}
    for line, name, text in rows:
        where = path_key(root, name)
        _once(first_line, where, line, f"{path} line {line}: {name}")
        given[where] = class_index(text, classes, f"{path} line {line}")
    return np.array([given.get(path_key(root, n), LEFT_OUT) for n in names], dtype=np.int64)


def unmatched_paths(path, names: list[str], root) -> list[str]:
    """The paths a ``path,label`` CSV lists (read by ``read_by_path``) that name none of ``names``, the
    image set's files (relative to ``root``, or absolute), in the file's order."""
    known = {path_key(root, n) for n in names}
    return [name for _, name, _ in read_table(Path(path))[1] if path_key(root, name) not in known]


def _once(first_line: dict, key, line: int, what: str) -> None:
    """Record that ``key`` is on ``line``; UserError if an earlier row listed it already."""
    if key in first_line:
        raise UserError(f"{what} is listed twice (first on line {first_line[key]}): keep one row per sample")
    first_line[key] = line


def file_kind(path: Path) -> str:
    """'csv', 'npy' or 'pt' from the file's extension; UserError for anything else or a missing file."""
    kind = {".csv": "csv", ".npy": "npy", ".pt": "pt", ".pth": "pt"}.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"label file {path} is neither .csv, .npy nor .pt: save it in one of those formats "
                        "(docs/DATA.md, Label files)")
    if path.exists() and not path.is_file():  # a folder, a FIFO: opening one could wait forever
        raise UserError(f"label file {path} is not a regular file: pass the label file itself to --labels")
    if not path.is_file():
        raise UserError(f"label file {path} not found: check the path given to --labels")
    return kind


def read_table(path: Path) -> tuple[str, list[tuple[int, str, str]]]:
    """(key column 'index' or 'path', [(line number, key, label text)]) of a label CSV.
    The header must name a ``label`` column and one key column; other columns are ignored. Blank rows
    are skipped; a row without its key or label field, or with more fields than the header (an
    unquoted comma), is an error. Indices and labels are stripped of
    surrounding spaces, paths are kept as written (a file name may begin or end with a space)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheets write a BOM
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            keys = [c for c in KEY_COLUMNS if c in header]
            if "label" not in header or len(keys) != 1:
                raise UserError(f"{path} needs a header row with the columns index,label (in-memory data sets) "
                                f"or path,label (image sets); its first row is {','.join(header) or 'empty'}")
            k, lab = header.index(keys[0]), header.index("label")
            rows = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= max(k, lab):
                    raise UserError(f"{path} line {reader.line_num} has {len(row)} field(s), no {keys[0]} and "
                                    f"label: give every row both (an empty label leaves the sample out)")
                if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
                    raise UserError(f"{path} line {reader.line_num} has {len(row)} fields, its header {len(header)}: "
                                    "quote a field that holds a comma, or drop the extra one")
                rows.append((reader.line_num, row[k] if keys[0] == "path" else row[k].strip(), row[lab].strip()))
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path} is not a readable UTF-8 CSV ({err}): save it as CSV (UTF-8)") from None
    return keys[0], rows


def class_index(text: str, classes: Sequence[str], where: str = "") -> int:
    """The class index (into ``classes``) of the CSV label ``text``, or -1 (left out) for an empty
    label or -1. A class name is that class (even ``-1``, should a class bear that name); plain decimal
    digits are a class number only while no class name reads as a number, so with classes ``0,1,2,5``
    a ``3`` is an error rather than the fourth class. UserError otherwise, one line starting with
    ``where`` (say, "FILE line N") and listing the classes."""
    lookup, numbers_are_indices = _class_lookup(tuple(classes))
    text = text if text in lookup else text.strip()
    if text in lookup:
        return lookup[text]
    if text in ("", str(LEFT_OUT)):
        return LEFT_OUT
    prefix = f"{where}: " if where else ""
    if numbers_are_indices:
        if DIGITS.fullmatch(text) and int(text) < len(classes):
            return int(text)
        raise UserError(f"{prefix}label {text!r} is neither a class ({_shown(classes)}) nor a class number "
                        f"0..{len(classes) - 1}; use -1 or leave it empty to leave the sample out")
    raise UserError(f"{prefix}label {text!r} is not a class ({_shown(classes)}); as class names are numbers, "
                    "a label is read as a name, never as a class number; use -1 or leave it empty to leave "
                    "the sample out")


@functools.lru_cache(maxsize=8)
def _class_lookup(classes: tuple[str, ...]) -> tuple[dict[str, int], bool]:
    """({class name: index}, whether a label of digits may be a class number): built once per class
    list rather than once per row. The first of two equal names wins, as list.index would."""
    lookup: dict[str, int] = {}
    for i, name in enumerate(classes):
        lookup.setdefault(name, i)
    return lookup, not any(_reads_as_number(name) for name in classes)


def _reads_as_number(name: str) -> bool:
    """Whether a person could take the class name for a number (5, 05, -1, 3.5, 1e3): then a label of
    digits is ambiguous between this name and a class number."""
    try:
        float(name)
    except ValueError:
        return False
    return any(ch.isdigit() for ch in name)  # float() also reads 'nan' and 'inf'


def _shown(classes: Sequence[str]) -> str:
    """The first SHOWN_CLASSES class names for a one-line message; odd names (commas, spaces at an
    end, line breaks) quoted so the list stays readable."""
    names = [c if c.isprintable() and "," not in c and c == c.strip() else repr(c) for c in classes[:SHOWN_CLASSES]]
    more = f", ... of {len(classes)} classes" if len(classes) > SHOWN_CLASSES else ""
    return ", ".join(names) + more


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
    """``values`` (array, tensor or list) as a 1-D int64 array; UserError unless whole numbers that
    int64 holds (a cast would wrap 2**64-1 to -1, which reads as "left out"). Booleans are refused:
    True/False are not class numbers, and a mask saved by mistake must not train as classes 0 and 1."""
    what = f"{path}[{key}]" if key else str(path)
    if hasattr(values, "numpy"):  # a torch tensor
        values = values.detach().cpu().numpy()
    try:
        values = np.asarray(values)
    except (TypeError, ValueError):
        values = np.asarray([], dtype=object)
    if values.ndim != 1 or values.dtype.kind not in "uif" or (
            values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values == np.round(values)))):
        raise UserError(f"{what} should be a list of integer labels, one per training sample, but is "
                        f"{values.dtype} of shape {values.shape}")
    if values.dtype.kind == "u":
        beyond = values > np.iinfo(np.int64).max
    elif values.dtype.kind == "f":
        beyond = (values >= 2.0**63) | (values < -(2.0**63))
    else:
        beyond = np.zeros(len(values), dtype=bool)
    if beyond.any():
        i = int(np.flatnonzero(beyond)[0])
        raise UserError(f"{what}: label {values[i].item()} of sample {i} is out of range ({int(beyond.sum())} "
                        "such labels); a label is a class number, or -1 to leave a sample out")
    return values.astype(np.int64)


def check_range(labels: np.ndarray, num_classes: int, path: Path) -> np.ndarray:
    """``labels`` unchanged if every one is -1 or a class 0..num_classes-1; else UserError naming one."""
    bad = np.flatnonzero((labels < LEFT_OUT) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise UserError(f"{path}: label {labels[i]} of sample {i} is outside 0..{num_classes - 1} "
                        f"({bad.size} such labels); -1 leaves a sample out")
    return labels


def path_key(root, name: str) -> str:
    """One spelling per file, to compare image paths: relative names joined to ``root``, then
    normalised, so ``x.png``, ``./x.png`` and the absolute path agree. Links are not followed: two
    training images may be links to one file and are still two samples."""
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
