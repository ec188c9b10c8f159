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


# --- careless and hostile label files ------------------------------------------------------------

GAPPED = ["0", "1", "2", "5"]  # class names that are numbers with a gap: 3 names no class


def test_a_label_is_the_class_of_that_name_never_a_class_number_when_names_are_numbers(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("index,label\n0,5\n1,2\n2,-1\n")
    assert labelfile.read_by_position(path, 3, GAPPED).tolist() == [3, 2, -1]
    path.write_text("index,label\n0,5\n1,3\n")  # '3' would be index 3, class 5, if numbers were indices
    text = message(lambda: labelfile.read_by_position(path, 2, GAPPED))
    assert "line 3: label '3' is not a class (0, 1, 2, 5)" in text and "never as a class number" in text
    # One name that reads as a number is enough to stop numbers being indices.
    assert "is not a class" in message(lambda: labelfile.class_index("1", ["cat", "dog", "3.5"]))
    # Names that do not read as numbers leave class numbers available, and a name always wins.
    assert labelfile.class_index("1", ["cat", "dog", "owl"]) == 1
    assert labelfile.class_index(" owl ", ["cat", "dog", "owl"]) == 2
    assert labelfile.class_index("-1", ["-1", "1"]) == 0  # a class named -1 (binary labels -1 / 1)
    assert labelfile.class_index("", ["-1", "1"]) == -1


def test_an_unknown_label_lists_the_first_ten_classes_on_one_line():
    classes = [f"class{i}" for i in range(25)]
    text = message(lambda: labelfile.class_index("nope", classes, "f.csv line 9"))
    assert text.startswith("f.csv line 9: label 'nope' is neither a class (class0, class1,")
    assert "class9, ... of 25 classes) nor a class number 0..24" in text and "class10" not in text
    assert "'a\\nb'" in message(lambda: labelfile.class_index("x", ["a\nb", "c"]))  # a name's line break is quoted


@pytest.mark.parametrize("index", ["1_0", "+3", "٣", "3.0", "-0"])
def test_an_index_is_plain_decimal_digits(tmp_path, index):
    path = tmp_path / "labels.csv"
    path.write_text(f"index,label\n{index},cat\n")
    assert f"index {index!r} is not a training sample" in message(lambda: labelfile.read_by_position(path, 11, CLASSES))
    path.write_text("index,label\n 3 ,cat\n007,dog\n")  # spaces around it and leading zeros are fine
    assert labelfile.read_by_position(path, 8, CLASSES).tolist() == [-1, -1, -1, 0, -1, -1, -1, 1]


def test_a_sample_listed_twice_is_an_error(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("index,label\n1,cat\n2,dog\n01,owl\n")
    assert "line 4: index 01 is listed twice (first on line 2)" in message(
        lambda: labelfile.read_by_position(path, 3, CLASSES))
    path.write_text(f"path,label\nsub/a.jpg,cat\n{tmp_path / 'sub' / 'a.jpg'},dog\n")
    assert "is listed twice (first on line 2)" in message(
        lambda: labelfile.read_by_path(path, ["sub/a.jpg"], tmp_path, CLASSES))


def test_spaces_at_the_ends_of_a_file_name_are_part_of_it(tmp_path):
    names = [" a.jpg", "b.jpg ", "c.jpg"]
    path = tmp_path / "labels.csv"
    path.write_text('path,label\n" a.jpg", dog\nb.jpg ,owl\n c.jpg,cat\n')
    assert labelfile.read_by_path(path, names, tmp_path, CLASSES).tolist() == [1, 2, -1]


@pytest.mark.parametrize("text, line", [("index,label\n0,cat\n12\n", 3), ("index,label,note\n7\n", 2),
                                        ("label,index\ncat\n", 2)])
def test_a_row_without_its_label_field_is_an_error(tmp_path, text, line):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    assert f"line {line} has 1 field(s), no index and label" in message(
        lambda: labelfile.read_by_position(path, 20, CLASSES))
    path.write_text("path,label\na.jpg\n")
    assert "line 2 has 1 field(s), no path and label" in message(
        lambda: labelfile.read_by_path(path, ["a.jpg"], tmp_path, CLASSES))


@pytest.mark.parametrize("values, shown", [
    (np.array([0, 2**63 + 5], dtype=np.uint64), "label 9223372036854775813 of sample 1 is out of range"),
    (np.array([0, 2**64 - 1], dtype=np.uint64), "label 18446744073709551615 of sample 1 is out of range"),
    (np.array([1.0, 1e30, -1e30]), "label 1e+30 of sample 1 is out of range (2 such labels)"),
    (np.array([True, False]), "should be a list of integer labels, one per training sample, but is bool"),
])
def test_npy_labels_that_int64_cannot_hold_or_booleans_are_refused(tmp_path, values, shown):
    path = tmp_path / "labels.npy"
    np.save(path, values)
    assert shown in message(lambda: labelfile.read_by_position(path, len(values), CLASSES))
    torch.save({"aggre_label": values}, tmp_path / "human.pt")  # the CIFAR-N reader checks the same
    assert shown.split(" of sample")[0].split(", one")[0] in message(
        lambda: labelfile.read_by_position(tmp_path / "human.pt", len(values), CLASSES))


def test_a_fifo_given_as_a_label_file_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(UserError, match="is not a regular file"):
        labelfile.file_kind(fifo)


def test_rows_naming_no_image_of_the_set_are_found_in_any_spelling(tmp_path):
    path = tmp_path / "l.csv"
    absolute = tmp_path / "train" / "b.png"
    path.write_text(f"path,label\ntrain/a.png,cat\n./train/c.png,dog\n{absolute},owl\ntrain/typo.png,cat\n")
    names = ["train/a.png", "train/b.png", "train/c.png"]
    assert labelfile.unmatched_paths(path, names, tmp_path) == ["train/typo.png"]
    assert labelfile.unmatched_paths(path, names[:1], tmp_path) == ["./train/c.png", str(absolute), "train/typo.png"]


def test_a_row_with_more_fields_than_its_header_is_refused(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("index,label\n0,cat\n1,dog,owl\n")
    assert "line 3 has 3 fields, its header 2: quote a field" in message(
        lambda: labelfile.read_by_position(path, 2, CLASSES))
    path.write_text("index,label\n0,cat\n1,dog,\n")  # a trailing comma adds only an empty field
    assert labelfile.read_by_position(path, 2, CLASSES).tolist() == [0, 1]
