"""What an image set's layout names, before any image is read: the classes, and each split's files
and labels. The two layouts are docs/DATA.md's: an image folder (Web-Bird/Car/Aircraft, ``--dataset
folder``: ``ROOT/train/<class>/**/<image>`` and ``ROOT/val``, ``tval`` or ``test``), and CSV lists in
the label format of comining/labelfile.py (``--dataset csv --train-csv FILE --val-csv FILE``).

Layout errors are one-line UserErrors; whether the files decode is comining/data/image_set.py's job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from comining import labelfile
from comining.config import Config
from comining.errors import UserError

EVAL_SPLITS = ("val", "tval", "test")
DEFAULT_ROOT = "datasets"
LAYOUT = "train/<class>/<image> and val/<class>/<image>"


@dataclass
class Listing:
    """What a layout names: the root of relative paths, the classes, each split's files and labels, how
    messages name the splits, files outside any class (skipped, with their reason) and training images
    the layout itself leaves out (an empty label in a CSV)."""

    root: Path
    classes: list[str]
    files: list[str]
    labels: list[int]
    test_files: list[str]
    test_labels: list[int]
    train_where: str = "train"
    eval_where: str = "val"
    skipped: dict = field(default_factory=dict)
    left_out: int = 0


def list_images(cfg: Config) -> Listing:
    """The Listing of the run's image set: ``--train-csv`` / ``--val-csv`` for ``--dataset csv``,
    otherwise the image folder of ``--dataset`` / ``--data-root``."""
    return list_csv(cfg) if cfg.dataset == "csv" else list_folder(cfg)


# -- image folders --------------------------------------------------------------------------------

def locate_root(cfg: Config) -> Path:
    """The folder holding train/ and the evaluation split, from --dataset and --data-root."""
    if cfg.dataset == "folder":
        if not cfg.data_root:
            raise UserError(f"--dataset folder needs --data-root DIR, a folder holding {LAYOUT}")
        root = Path(cfg.data_root)
        if not root.is_dir():
            raise UserError(f"data folder {root} not found: check the path given to --data-root")
        return root
    base = Path(cfg.data_root or DEFAULT_ROOT)
    for cand in (base / cfg.dataset, base):
        if (cand / "train").is_dir():
            return cand
    raise UserError(f"{cfg.dataset} not found: expected {base / cfg.dataset}/{LAYOUT.replace(' and ', ' and .../')}; "
                    "unpack the data set there or pass --data-root")


def is_entry(path: Path) -> bool:
    """Whether to list ``path`` as a file: it exists and is no folder. FIFOs, sockets and devices are listed
    so the readability check reports them (it only os.stats them) rather than leaving them out silently."""
    return path.exists() and not path.is_dir()


def visible_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (recursively, following links), hidden files and folders left out."""
    return sorted(p for p in folder.rglob("*")
                  if is_entry(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def scan_split(root: Path, split: str, classes: list[str] | None = None):
    """(classes, files relative to root, labels, {loose file: reason}) of one split, whose class folders
    define the classes (``classes`` None) or must each be one of them; none, or an empty one, is a UserError."""
    folder = root / split
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise UserError(f"{folder} holds no class folders: the layout is {LAYOUT}")
    if classes is not None:
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise UserError(f"{folder} has class folders with no counterpart in {root / 'train'} "
                            f"({', '.join(unknown[:3])}): rename them to training classes or remove them")
    classes = names if classes is None else classes
    files, labels = [], []
    for name in names:
        found = visible_files(folder / name)
        if not found:
            raise UserError(f"class folder {folder / name} is empty: add its images or remove the folder")
        files += [p.relative_to(root).as_posix() for p in found]
        labels += [classes.index(name)] * len(found)
    loose = {p.relative_to(root).as_posix(): "not inside a class folder"
             for p in folder.iterdir() if is_entry(p) and not p.name.startswith(".")}
    return classes, files, labels, loose


def list_folder(cfg: Config) -> Listing:
    """The Listing of an image folder (``train/<class>/…`` and an evaluation split)."""
    root = locate_root(cfg)
    if not (root / "train").is_dir():
        raise UserError(f"no train/ folder in {root}: the layout is {LAYOUT}")
    split = next((s for s in EVAL_SPLITS if (root / s).is_dir()), None)
    if split is None:
        raise UserError(f"no evaluation split in {root}: add val/<class>/<image> (or tval/, test/) "
                        "with a few correctly labelled images per class")
    # Both splits' layouts first: a layout error should not wait for the readability checks.
    classes, files, labels, skipped = scan_split(root, "train")
    _, test_files, test_labels, loose = scan_split(root, split, classes)
    return Listing(root, classes, files, labels, test_files, test_labels, eval_where=split,
                   skipped={**skipped, **loose})


# -- CSV lists ------------------------------------------------------------------------------------

def read_list(csv_path: Path, classes: list[str] | None = None):
    """(classes, paths as listed, labels, number of images left out) of one image list, whose label names
    define the classes (``classes`` None) or must each be one of them or a class number. UserError for a
    missing file, a wrong header, a path listed twice, an unknown class, or no image to use."""
    if not csv_path.is_file():
        raise UserError(f"image list {csv_path} not found: check the path given to --train-csv / --val-csv")
    column, rows = labelfile.read_table(csv_path)
    if column != "path":
        raise UserError(f"{csv_path} should list images with the header path,label, not index,label")
    seen: dict[str, int] = {}  # path_key: x.png, ./x.png and the absolute path are one image
    for line, path, _ in rows:
        key = labelfile.path_key(csv_path.parent, path)
        if key in seen:
            raise UserError(f"{csv_path} line {line}: {path} is listed twice (first on line {seen[key]}): "
                            "keep one row per image")
        seen[key] = line
    if classes is None:
        names = {text for _, _, text in rows if text not in ("", str(labelfile.LEFT_OUT))}
        classes = sorted(names, key=int if all(n.isdigit() for n in names) else None)
    labels = [labelfile.class_index(text, classes, f"{csv_path} line {line}") for line, _, text in rows]
    kept = [i for i, y in enumerate(labels) if y != labelfile.LEFT_OUT]
    if not kept:
        raise UserError(f"{csv_path} lists no labelled image: add rows path,label (an empty label leaves an image out)")
    return classes, [rows[i][1] for i in kept], [labels[i] for i in kept], len(rows) - len(kept)


def list_csv(cfg: Config) -> Listing:
    """The Listing of ``--train-csv`` / ``--val-csv``: training paths as written (relative to the root, the
    training CSV's folder, or absolute: verdicts.csv shows them so); evaluation paths made absolute where
    the evaluation CSV is in another folder."""
    train_path, val_path = Path(cfg.train_csv), Path(cfg.val_csv)
    classes, files, labels, left_out = read_list(train_path)
    if len(set(labels)) < 2:  # before the evaluation list, whose other classes would read as unknown
        raise UserError(f"{train_path} labels its images with one class only ({classes[labels[0]]}): a classifier "
                        "needs images of at least 2 classes")
    _, test_files, test_labels, _ = read_list(val_path, classes)
    root, val_root = train_path.parent, val_path.parent
    if os.path.abspath(val_root) != os.path.abspath(root):
        test_files = [os.path.join(os.path.abspath(val_root), p) for p in test_files]
    return Listing(root, classes, files, labels, test_files, test_labels, train_where=str(train_path.absolute()),
                   eval_where=str(val_path.absolute()), left_out=left_out)
