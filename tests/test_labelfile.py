"""Label files: every format read into the labels a run trains on, and every error a bad file gives.

Files are written here in their real formats (CSV text, np.save, torch.save of a CIFAR-N style dict),
including ones whose pickle would run code, which must be refused without running it.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from comining import labelfile
from comining.errors import UserError

CLASSES = ["cat", "dog", "owl"]


def message(call) -> str:
    with pytest.raises(UserError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text
    return text


# --- CSV ---------------------------------------------------------------------------------------

def test_index_csv_names_numbers_blanks_and_unlisted(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("index,label,note\n0,dog,x\n1,2,\n2,,blank\n3,-1,\n5, cat ,spaces\n\n")
    labels = labelfile.read_by_position(path, 7, CLASSES)
    # 4 and 6 are not listed: left out like the blank (2) and the -1 (3).
    assert labels.tolist() == [1, 2, -1, -1, -1, 0, -1]
    assert labels.dtype == np.int64


def test_index_csv_with_a_spreadsheet_bom_and_capitalised_header(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("\ufeffIndex,Label\n1,owl\n".encode())
    assert labelfile.read_by_position(path, 2, CLASSES).tolist() == [-1, 2]


def test_path_csv_matches_relative_and_absolute_paths(tmp_path):
    root = tmp_path / "images"
    names = ["train/cat/a.jpg", "train/dog/b.jpg", "train/dog/c.jpg", "train/owl/d.jpg"]
    path = tmp_path / "labels.csv"
    path.write_text("path,label\n"
                    "train/cat/a.jpg,owl\n"
                    f"{root / 'train/dog/b.jpg'},dog\n"     # absolute
                    "train/./dog/c.jpg,\n"                  # another spelling of c, left out
                    "train/elsewhere/z.jpg,cat\n")          # not a training image: ignored
    assert labelfile.read_by_path(path, names, root, CLASSES).tolist() == [2, 1, -1, -1]


@pytest.mark.parametrize("text, fragment", [
    ("index,label\n0,cow\n", "label 'cow' is neither a class (cat, dog, owl) nor a class number 0..2"),
    ("index,label\n0,3\n", "label '3' is neither a class"),
    ("index,label\n4,cat\n", "line 2: index '4' is not a training sample (0..3)"),
    ("index,label\nx,cat\n", "index 'x' is not a training sample"),
    ("sample,label\n0,cat\n", "needs a header row with the columns index,label"),
    ("0,cat\n1,dog\n", "needs a header row"),
    ("path,label\na.jpg,cat\n", "lists samples by path, but this data set is in memory"),
])
def test_bad_csv_files_are_one_line_errors(tmp_path, text, fragment):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    assert fragment in message(lambda: labelfile.read_by_position(path, 4, CLASSES))


def test_path_csv_errors(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("path,label\na.jpg,cat\n./a.jpg,dog\n")
    assert "line 3: ./a.jpg is listed twice" in message(lambda: labelfile.read_by_path(path, ["a.jpg"], tmp_path, CLASSES))
    path.write_text("index,label\n0,cat\n")
    assert "image sets are matched by path" in message(lambda: labelfile.read_by_path(path, ["a.jpg"], tmp_path, CLASSES))
    np.save(tmp_path / "labels.npy", np.zeros(1, dtype=np.int64))
    assert "give a CSV with header path,label" in message(
        lambda: labelfile.read_by_path(tmp_path / "labels.npy", ["a.jpg"], tmp_path, CLASSES))


def test_missing_file_and_unknown_extension(tmp_path):
    assert "not found: check the path given to --labels" in message(
        lambda: labelfile.read_by_position(tmp_path / "none.csv", 3, CLASSES))
    (tmp_path / "labels.txt").write_text("0\n")
    assert "neither .csv, .npy nor .pt" in message(lambda: labelfile.read_by_position(tmp_path / "labels.txt", 3, CLASSES))


def test_label_key_is_refused_for_csv_and_npy(tmp_path):
    np.save(tmp_path / "l.npy", np.zeros(3, dtype=np.int64))
    assert "--label-key aggre_label picks an array of a .pt" in message(
        lambda: labelfile.read_by_position(tmp_path / "l.npy", 3, CLASSES, key="aggre_label"))


# --- .npy ------------------------------------------------------------------------------------

def test_npy_labels_and_their_errors(tmp_path):
    path = tmp_path / "labels.npy"
    np.save(path, np.array([2, -1, 0, 1], dtype=np.int32))
    assert labelfile.read_by_position(path, 4, CLASSES).tolist() == [2, -1, 0, 1]
    np.save(path, np.array([2.0, 1.0, 0.0]))  # whole numbers stored as floats are fine
    assert labelfile.read_by_position(path, 3, CLASSES).tolist() == [2, 1, 0]
    np.save(path, np.array([0, 1, 2]))
    assert "holds 3 labels but the training set has 5 samples" in message(
        lambda: labelfile.read_by_position(path, 5, CLASSES))
    np.save(path, np.array([0, 3, 1, 7]))
    assert "label 3 of sample 1 is outside 0..2 (2 such labels)" in message(
        lambda: labelfile.read_by_position(path, 4, CLASSES))
    np.save(path, np.array([0, -2]))
    assert "label -2 of sample 1 is outside" in message(lambda: labelfile.read_by_position(path, 2, CLASSES))
    np.save(path, np.array([0.5, 1.0]))
    assert "should be a list of integer labels" in message(lambda: labelfile.read_by_position(path, 2, CLASSES))
    np.save(path, np.zeros((2, 2), dtype=np.int64))
    assert "of shape (2, 2)" in message(lambda: labelfile.read_by_position(path, 2, CLASSES))
    path.write_bytes(b"not numpy at all")
    assert "is not a valid .npy file" in message(lambda: labelfile.read_by_position(path, 2, CLASSES))


class Payload:
    """Unpickling this calls os.system: a label file that would run a command when loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_npy_holding_a_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "labels.npy"
    np.save(path, np.array([Payload(marker), 1], dtype=object), allow_pickle=True)
    assert "holds Python objects, not integers" in message(lambda: labelfile.read_by_position(path, 2, CLASSES))
    assert not marker.exists()


# --- CIFAR-N .pt -----------------------------------------------------------------------------

def cifar10n(n: int, rng=np.random.RandomState(0)) -> dict:
    clean = rng.randint(0, 3, n)
    return {"clean_label": clean, "aggre_label": (clean + (rng.rand(n) < 0.1)) % 3,
            "worse_label": (clean + (rng.rand(n) < 0.4)) % 3, "random_label1": rng.randint(0, 3, n)}


def test_cifar_n_keys_default_and_choice(tmp_path):
    content = cifar10n(50)
    path = tmp_path / "CIFAR-10_human.pt"
    torch.save(content, path)
    assert labelfile.read_by_position(path, 50, CLASSES).tolist() == content["aggre_label"].tolist()
    assert labelfile.read_by_position(path, 50, CLASSES, key="worse_label").tolist() == content["worse_label"].tolist()
    # CIFAR-100N: noisy_label is the default; tensors and int32 arrays load as well.
    torch.save({"clean_label": torch.tensor([0, 1]), "noisy_label": np.array([1, 1], dtype=np.int32)}, path)
    assert labelfile.read_by_position(path, 2, CLASSES).tolist() == [1, 1]
    assert labelfile.read_by_position(path, 2, CLASSES, key="clean_label").tolist() == [0, 1]


def test_cifar_n_errors(tmp_path):
    path = tmp_path / "human.pt"
    torch.save(cifar10n(50), path)
    assert "--label-key noisy is not in" in message(lambda: labelfile.read_by_position(path, 50, CLASSES, key="noisy"))
    assert "holds 50 labels but the training set has 60 samples" in message(
        lambda: labelfile.read_by_position(path, 60, CLASSES))
    torch.save({"worse_label": np.zeros(3, dtype=np.int64), "clean_label": np.zeros(3, dtype=np.int64)}, path)
    assert "holds worse_label, clean_label: pick the labels with --label-key KEY" in message(
        lambda: labelfile.read_by_position(path, 3, CLASSES))
    torch.save({"noisy_label": np.array([0, 5, 1])}, path)
    assert "label 5 of sample 1 is outside 0..2" in message(lambda: labelfile.read_by_position(path, 3, CLASSES))
    path.write_bytes(b"garbage, not a torch file")
    assert "cannot be read as a torch file" in message(lambda: labelfile.read_by_position(path, 3, CLASSES))


def test_cifar_n_file_written_under_numpy_1_loads(tmp_path):
    """The published CIFAR-N files were pickled by numpy 1.x, which names numpy.core.multiarray."""
    path, old = tmp_path / "new.pt", tmp_path / "old.pt"
    torch.save({"aggre_label": np.array([2, 0, 1])}, path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            dst.writestr(item, data)
    assert labelfile.read_by_position(old, 3, CLASSES).tolist() == [2, 0, 1]


def test_pt_whose_pickle_would_run_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "CIFAR-10_human.pt"
    torch.save({"aggre_label": np.array([0, 1]), "extra": Payload(marker)}, path)
    text = message(lambda: labelfile.read_by_position(path, 2, CLASSES))
    assert "asks to run code or build objects when loaded, which is refused" in text
    assert not marker.exists()


# --- writing -----------------------------------------------------------------------------------

def test_written_files_read_back(tmp_path):
    labels = np.array([1, -1, 2, 0])
    labelfile.write_csv(tmp_path / "l.csv", "index", ["0", "1", "2", "3"], labels, CLASSES)
    assert (tmp_path / "l.csv").read_text().splitlines() == ["index,label", "0,dog", "1,", "2,owl", "3,cat"]
    assert labelfile.read_by_position(tmp_path / "l.csv", 4, CLASSES).tolist() == labels.tolist()
    labelfile.write_npy(tmp_path / "l.npy", labels)
    assert labelfile.read_by_position(tmp_path / "l.npy", 4, CLASSES).tolist() == labels.tolist()
    names = ["train/a.png", "train/b.png"]
    labelfile.write_csv(tmp_path / "p.csv", "path", names, [2, -1], CLASSES)
    assert labelfile.read_by_path(tmp_path / "p.csv", names, tmp_path, CLASSES).tolist() == [2, -1]
    assert "cannot write" in message(lambda: labelfile.write_npy(tmp_path / "no" / "such" / "l.npy", labels))
