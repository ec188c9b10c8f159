"""Images listed in CSV files (``--dataset csv --train-csv FILE --val-csv FILE``).

Each file has a header row with the columns ``path`` and ``label`` (others are ignored), the label
format of comining/labelfile.py: a row per image, its path relative to the CSV's own folder or
absolute, its label a class name. An empty label or -1 leaves an image out of training, so the file
``comining export`` writes can be trained on again. The classes are the training CSV's label names,
sorted (numerically when they are all whole numbers). The images then go through the image-folder
machinery (comining/data/folder.py): checked once, unreadable ones skipped and listed.
"""

from __future__ import annotations

import os
from pathlib import Path

from comining import labelfile
from comining.data.folder import Listing
from comining.errors import UserError


def read_list(csv_path: Path, classes: list[str] | None = None):
    """(classes, paths as listed, labels, number of images left out) of one image list.

    ``classes`` None: the training list, whose label names define them; otherwise every label must
    name one of them (or be a class number). UserError for a missing file, a wrong header, a path
    listed twice, an unknown class, or a list without any image to use.
    """
    if not csv_path.is_file():
        raise UserError(f"image list {csv_path} not found: check the path given to --train-csv / --val-csv")
    column, rows = labelfile.read_table(csv_path)
    if column != "path":
        raise UserError(f"{csv_path} should list images with the header path,label, not index,label")
    seen: dict[str, int] = {}
    for line, path, _ in rows:
        if path in seen:
            raise UserError(f"{csv_path} line {line}: {path} is listed twice (first on line {seen[path]}): "
                            "keep one row per image")
        seen[path] = line
    if classes is None:
        names = {text for _, _, text in rows if text not in ("", str(labelfile.LEFT_OUT))}
        if all(n.isdigit() for n in names):
            classes = sorted(names, key=int)
        else:
            classes = sorted(names)
    labels = [labelfile.class_index(text, classes, f"{csv_path} line {line}") for line, _, text in rows]
    kept = [i for i, y in enumerate(labels) if y != labelfile.LEFT_OUT]
    if not kept:
        raise UserError(f"{csv_path} lists no labelled image: add rows path,label (an empty label leaves an image out)")
    return classes, [rows[i][1] for i in kept], [labels[i] for i in kept], len(rows) - len(kept)


def list_csv(cfg) -> Listing:
    """The Listing of ``--train-csv`` / ``--val-csv``: training paths as listed (relative to the
    training CSV's folder, the root, or absolute), so verdicts.csv shows them as the user wrote them;
    evaluation paths listed relative to another folder are made absolute."""
    train_path, val_path = Path(cfg.train_csv), Path(cfg.val_csv)
    classes, files, labels, left_out = read_list(train_path)
    _, test_files, test_labels, _ = read_list(val_path, classes)
    root, val_root = train_path.parent, val_path.parent
    if os.path.abspath(val_root) != os.path.abspath(root):
        test_files = [os.path.join(os.path.abspath(val_root), p) for p in test_files]
    return Listing(root, classes, files, labels, test_files, test_labels, train_where=str(train_path.absolute()),
                   eval_where=str(val_path.absolute()), left_out=left_out)
