"""Fashion-MNIST from its four IDX files (as shipped by the authors and by Debian's package)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError
from .arrays import ArrayData, to_tensor

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
_IMAGE_MAGIC, _LABEL_MAGIC = 0x00000803, 0x00000801


def _file_in(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def is_complete(folder: Path) -> bool:
    """True when `folder` holds all four IDX files (each .gz or plain)."""
    return all(_file_in(folder, stem) for stem in FILES.values())


def candidate_dirs(root: str | Path | None) -> list[Path]:
    """Folders searched, in order: root, root/fashion-mnist, ./datasets/fashion-mnist, the Debian path."""
    dirs = [] if root is None else [Path(root), Path(root) / "fashion-mnist"]
    return dirs + [Path("datasets") / "fashion-mnist", Path(SYSTEM_DIR)]


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file (gzip-compressed if its name ends in .gz) into a uint8 array.
    `magic` is 0x803 for images (N×H×W) or 0x801 for labels (N). Raises UserError for an
    unreadable or corrupt file, a wrong magic number, or header dimensions that do not match
    the payload size."""
    fix = "re-download the file or reinstall the data set (apt-get install dataset-fashion-mnist)"
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"cannot read IDX file {path} ({reason}); {fix}") from exc
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        found = raw[:4].hex() if len(raw) >= 4 else "a file shorter than 4 bytes"
        raise UserError(f"{path} is not an IDX file with magic 0x{magic:08x} (found {found}); {fix}")
    if len(raw) < header:
        raise UserError(f"{path} has a truncated IDX header; {fix}")
    dims = [int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)]
    if int(np.prod(dims)) != len(raw) - header:
        raise UserError(f"{path}: header dimensions {dims} need {int(np.prod(dims))} bytes but the file holds "
                        f"{len(raw) - header}; {fix}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _split(folder: Path, images_key: str, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    img_path = _file_in(folder, FILES[images_key])
    lab_path = _file_in(folder, FILES[labels_key])
    images = read_idx(img_path, _IMAGE_MAGIC)
    labels = read_idx(lab_path, _LABEL_MAGIC).astype(np.int64)
    if len(images) != len(labels):
        raise UserError(f"{img_path} holds {len(images)} images but {lab_path} holds {len(labels)} labels; "
                        "the files come from different copies, re-download both")
    if labels.size and labels.max() >= len(CLASSES):
        raise UserError(f"{lab_path} has label {labels.max()}, above 9; re-download the file")
    return images[:, None, :, :], labels


def load(root: str | Path | None = None) -> ArrayData:
    """Load Fashion-MNIST as ArrayData (60000 train / 10000 test, N×1×28×28 uint8, 10 classes).
    Looks in the folders from `candidate_dirs(root)` for the four IDX files, each either
    gzip-compressed (`.gz`) or plain. Raises UserError when none holds all four or a file is
    malformed, or when a searched folder holds only some of the four files."""
    folder = None
    for cand in candidate_dirs(root):
        missing = [stem for stem in FILES.values() if not _file_in(cand, stem)]
        if not missing:
            folder = cand
            break
        # A half-copied folder should be reported, not silently skipped in favour of another copy.
        if len(missing) < len(FILES):
            raise UserError(f"Fashion-MNIST folder {cand} is incomplete: missing {', '.join(missing)} (.gz or "
                            "plain); copy all four IDX files there or pass another --data-root")
    if folder is None:
        looked = ", ".join(str(d) for d in candidate_dirs(root))
        raise UserError(f"Fashion-MNIST not found: looked for {FILES['train_images']}.gz and the other three IDX "
                        f"files in {looked}; run 'apt-get install dataset-fashion-mnist' or pass --data-root")
    x_tr, y_tr = _split(folder, "train_images", "train_labels")
    x_te, y_te = _split(folder, "test_images", "test_labels")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise UserError(f"Fashion-MNIST in {folder}: train images are {x_tr.shape[2]}×{x_tr.shape[3]} but test "
                        f"images are {x_te.shape[2]}×{x_te.shape[3]}; re-download the files")
    return ArrayData("fashion-mnist", to_tensor(x_tr), y_tr, to_tensor(x_te), y_te, list(CLASSES))
