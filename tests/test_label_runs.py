"""Label files in runs: the labels a run trains on, its realised noise, the authors' code's CIFAR layout, CSV
lists of images end to end, and `comining export` read back by `--labels` and `--train-csv`."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comining import find_label_issues, noise
from comining.config import resolve
from comining.forget_rate import target_rate
from comining.data import cifar, load_arrays
from comining.data.image_set import FolderData
from comining.data.in_memory import InMemoryData
from comining.errors import UserError
from comining.export import export_run
from conftest import cli_runner, write_cifar10, write_cifar100

SMALL_IMAGES = ["--arch", "small", "--rescale-size", "24", "--crop-size", "20", "--batch-size", "16",
                "--weights", "none", "--workers", "0", "--warmup-epochs", "1", "--quiet"]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr_lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# --- in-memory data sets -------------------------------------------------------------------------

def digits_label_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(the digits' own labels, a label file of them with every 5th flipped and samples 3, 7 left out)."""
    true = np.asarray(load_arrays("digits").train_labels, dtype=np.int64)
    given = true.copy()
    given[::5] = (given[::5] + 1) % 10
    given[[3, 7]] = -1
    np.save(path, given)
    return true, given


def test_file_labels_are_trained_on_and_the_data_sets_labels_are_the_truth(tmp_path):
    true, given = digits_label_file(tmp_path / "labels.npy")
    cfg = resolve({"dataset": "digits", "labels": str(tmp_path / "labels.npy"), "train_subset": 100})
    assert cfg.closed_rate == 0  # the digits preset's 40 % synthetic noise is not added on top
    assert target_rate(cfg) is None  # no protocol fixes the rate: estimated (auto)
    data = InMemoryData(cfg, load_arrays("digits"), "cpu")
    kept = [i for i in range(100) if i not in (3, 7)]  # the file covers the whole set; cut to the subset
    assert data.labels.tolist() == given[kept].tolist()
    assert data.true_labels.tolist() == true[kept].tolist()
    assert data.sample_names() == [str(i) for i in kept]
    assert data.left_out == 2 and data.full_size == len(true)
    assert data.noise["wrong_labels"] == pytest.approx(20 / 98)  # positions 0, 5, ..., 95 flipped


def test_synthetic_noise_goes_on_top_only_when_asked(tmp_path):
    _, given = digits_label_file(tmp_path / "labels.npy")
    cfg = resolve({"dataset": "digits", "labels": str(tmp_path / "labels.npy"), "closed_rate": 0.5,
                   "train_subset": 100})
    data = InMemoryData(cfg, load_arrays("digits"), "cpu")
    kept = [i for i in range(100) if i not in (3, 7)]
    expected = noise.corrupt(given[kept], noise.transition_matrix("symmetric", 0.5, 0.0, 10), 0)
    assert data.labels.tolist() == expected.tolist()


def test_seed_layout_of_cifar_under_the_default_root(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "datasets" / "cifar10")
    write_cifar100(tmp_path / "datasets" / "cifar100")
    monkeypatch.chdir(tmp_path)
    assert len(load_arrays("cifar10").train_labels) == 200
    assert len(cifar.load_cifar100().train_labels) == 400
    assert len(load_arrays("cifar10", "datasets/cifar10").train_labels) == 200  # the folder above the batches


@pytest.mark.slow
def test_cifar_n_file_on_the_seed_layout_end_to_end(tmp_path):
    """The authors' code's CIFAR command with a CIFAR-N file: the run trains on the chosen key and reports its
    disagreement with CIFAR's own labels, the left-out samples, and nothing synthetic."""
    write_cifar10(tmp_path / "cwd" / "datasets" / "cifar10")
    clean = np.asarray(load_arrays("cifar10", tmp_path / "cwd" / "datasets").train_labels)
    rng = np.random.RandomState(1)
    worse = np.where(rng.rand(200) < 0.4, (clean + 1 + rng.randint(0, 9, 200)) % 10, clean)
    worse[:4] = -1
    torch.save({"clean_label": clean, "aggre_label": clean, "worse_label": worse}, tmp_path / "CIFAR-10_human.pt")
    run = cli_runner(tmp_path / "cwd")
    result = run("train", "--dataset", "cifar10", "--labels", tmp_path / "CIFAR-10_human.pt", "--label-key",
                 "worse_label", "--arch", "small", "--epochs", "1", "--batch-size", "64", "--out", "run", "--quiet")
    assert result.returncode == 0, result.stderr
    wrong = (worse[4:] != clean[4:]).mean()
    assert f"196 training images, {wrong * 100:.1f} % of labels wrong (labels of " in result.stdout
    assert "[worse_label]); 4 samples left out of training" in result.stdout
    results = json.loads((tmp_path / "cwd" / "run" / "results.json").read_text())
    assert results["noise"]["wrong_labels"] == pytest.approx(wrong) and results["left_out"] == 4
    rows = read_csv(tmp_path / "cwd" / "run" / "verdicts.csv")
    names = [f"class{i}" for i in range(10)]
    assert [r["sample"] for r in rows] == [str(i) for i in range(4, 200)]
    assert [r["given_label"] for r in rows] == [names[y] for y in worse[4:]]
    assert [r["true_label"] for r in rows] == [names[y] for y in clean[4:]]


def test_cli_refuses_a_label_file_that_would_run_code(tmp_path, run_cli):
    marker = tmp_path / "ran"
    payload = type("Payload", (), {"__reduce__": lambda self: (os.system, (f"touch {marker}",))})
    torch.save({"aggre_label": np.zeros(1437, dtype=np.int64), "x": payload()}, tmp_path / "bad.pt")
    one_line_error(run_cli("train", "--labels", tmp_path / "bad.pt", "--epochs", "1"),
                   "bad.pt asks to run code or build objects when loaded, which is refused")
    assert not marker.exists()


def test_label_file_settings_errors(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros(10, dtype=np.int64))
    cfg = resolve({"dataset": "digits", "labels": str(tmp_path / "short.npy")})
    with pytest.raises(UserError, match="holds 10 labels but the training set has 1437 samples"):
        InMemoryData(cfg, load_arrays("digits"), "cpu")
    np.save(tmp_path / "none.npy", np.full(1437, -1))
    with pytest.raises(UserError, match="leaves every training sample out"):
        InMemoryData(resolve({"dataset": "digits", "labels": str(tmp_path / "none.npy")}), load_arrays("digits"), "cpu")
    with pytest.raises(UserError, match="give --labels FILE too"):
        resolve({"label_key": "worse_label"})


# --- export, then train on it -------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    run = cli_runner(base)
    result = run("train", "--train-subset", "300", "--epochs", "6", "--warmup-epochs", "1", "--out", "r1", "--quiet")
    assert result.returncode == 0, result.stderr
    return base, run, read_csv(base / "r1" / "verdicts.csv")


def expected_export(rows: list[dict], keep_discarded: bool = False) -> dict:
    """{index: class name or '' (left out)} worked out from the verdicts by the export's rules."""
    out = {}
    for r in rows:
        if r["verdict"] == "relabelled":
            out[int(r["sample"])] = r["suggested_label"]
        elif r["verdict"] == "discarded" and not keep_discarded:
            out[int(r["sample"])] = ""
        else:
            out[int(r["sample"])] = r["given_label"]
    return out


def test_export_writes_the_decisions(digits_run):
    base, run, rows = digits_run
    verdicts = {r["verdict"] for r in rows}
    assert {"relabelled", "discarded"} <= verdicts  # something to export besides given labels
    result = run("export", "r1", "--out", "e.csv")
    assert result.returncode == 0, result.stderr
    discarded = sum(r["verdict"] == "discarded" for r in rows)
    assert f"{discarded} discarded ones left out" in result.stdout and "1137 samples the run did not train on" in result.stdout
    for keep in (False, True):
        export_run(base / "r1", base / "e.csv", keep_discarded=keep, force=True)  # its own file of the line above
        written = read_csv(base / "e.csv")
        assert len(written) == 1437  # the whole training set: the 1137 the run did not train on left out
        expected = expected_export(rows, keep)
        assert {int(r["index"]): r["label"] for r in written} == {i: expected.get(i, "") for i in range(1437)}
    export_run(base / "r1", base / "e.npy")
    array = np.load(base / "e.npy")
    expected = expected_export(rows)
    assert array.tolist() == [int(expected[i]) if expected.get(i) else -1 for i in range(1437)]
    with pytest.raises(UserError, match="cannot tell the format of e.txt"):
        export_run(base / "r1", "e.txt")
    with pytest.raises(UserError, match="run directory nowhere not found"):
        export_run("nowhere", "e.csv")


def test_export_with_a_share_sets_aside_that_many_samples_of_lowest_label_quality(digits_run):
    base, run, rows = digits_run
    quality = [float(r["label_quality"]) for r in rows]
    for share in (0.05, 0.3):  # fewer and more than the run flagged itself
        count = round(share * len(rows))
        cut = sorted(quality)[count - 1]
        flagged = {r["sample"] for r, q in zip(rows, quality) if q <= cut}
        assert len(flagged) >= count
        result = run("export", "r1", "--out", f"s{share}.csv", "--share", share)
        assert result.returncode == 0, result.stderr
        assert f"the {len(flagged)} of lowest label quality set aside ({share * 100:g} % asked)" in result.stdout
        written = {r["index"]: r["label"] for r in read_csv(base / f"s{share}.csv")}
        for r in rows:
            relabelled = r["verdict"] == "relabelled" and r["suggested_label"]
            expected = ((r["suggested_label"] if relabelled else "") if r["sample"] in flagged else r["given_label"])
            assert written[r["sample"]] == expected, r
        # The same set as the Python API's.
        assert flagged == {rows[i]["sample"] for i in np.flatnonzero(find_label_issues(base / "r1", share=share))}
    for bad, message in ((["--share", "1.5"], "--share 1.5 is not a fraction"),
                         (["--share", "0.2", "--keep-discarded"], "pass one of the two")):
        result = run("export", "r1", "--out", "bad.csv", *bad)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not (base / "bad.csv").exists()
    # A run whose verdicts.csv has no label quality (written before it existed) has nothing to rank by.
    old = base / "r-old"
    shutil.copytree(base / "r1", old)
    with open(old / "verdicts.csv", newline="") as f:
        table = [{k: v for k, v in row.items() if k != "label_quality"} for row in csv.DictReader(f)]
    with open(old / "verdicts.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    result = run("export", "r-old", "--out", "old.csv", "--share", "0.2")
    assert result.returncode == 2 and "has no column label_quality" in result.stderr, result.stderr
    assert run("export", "r-old", "--out", "old.csv").returncode == 0  # the run's own verdicts need none


@pytest.mark.slow
def test_training_on_the_export_reproduces_its_labels(digits_run):
    base, run, rows = digits_run
    export_run(base / "r1", base / "again.npy")
    result = run("train", "--train-subset", "300", "--labels", "again.npy", "--epochs", "1", "--out", "r2", "--quiet")
    assert result.returncode == 0, result.stderr
    expected = expected_export(rows)
    kept = {i: name for i, name in expected.items() if name}
    again = read_csv(base / "r2" / "verdicts.csv")
    assert {int(r["sample"]): r["given_label"] for r in again} == kept
    truth = {r["sample"]: r["true_label"] for r in rows}
    assert all(r["true_label"] == truth[r["sample"]] for r in again)  # still the digits' own labels
    assert json.loads((base / "r2" / "results.json").read_text())["left_out"] == 300 - len(kept)
    assert f"{300 - len(kept)} samples left out of training" in result.stdout


# --- image sets: label files by path, and CSV lists ---------------------------------------------

def save_digit(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8)).resize((24, 24)).convert("RGB").save(path)


def digit_pictures(n_per_class: int, digits=(0, 1, 2)):
    from sklearn.datasets import load_digits

    d = load_digits()
    return [(k, d.images[i]) for k in digits for i in np.flatnonzero(d.target == k)[:n_per_class]]


def test_label_file_by_path_on_an_image_folder(tmp_path):
    names = {0: "zero", 1: "one", 2: "two"}
    files = []
    for j, (k, pixels) in enumerate(digit_pictures(6)):
        rel = f"train/{names[k]}/{j:02d}.png"
        save_digit(pixels, tmp_path / rel)
        save_digit(pixels, tmp_path / f"val/{names[k]}/{j:02d}.png")
        files.append(rel)
    lines = ["path,label", f"{files[0]},two", f"{tmp_path / files[1]},0", f"{files[2]},", f"{files[3]},-1"]
    lines += [f"{f},{f.split('/')[1]}" for f in files[4:-2]]  # the last two files are not listed
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    cfg = resolve({"dataset": "folder", "data_root": str(tmp_path), "labels": str(tmp_path / "labels.csv"),
                   "workers": 0, "rescale_size": 24, "crop_size": 20})
    data = FolderData(cfg, "cpu")
    assert data.classes == ["one", "two", "zero"]
    expected = {files[0]: 1, files[1]: 0, **{f: data.classes.index(f.split("/")[1]) for f in files[4:-2]}}
    assert dict(zip(data.files, data.labels.tolist())) == expected  # "0" is class 0, "one"
    assert data.left_out == 4 and data.true_labels is None


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A CSV-listed image set: training paths relative to the list, one absolute, one missing file,
    one row without a label; the evaluation list in another folder. Trained for one epoch."""
    base = tmp_path_factory.mktemp("csvlist")
    pictures = digit_pictures(10)
    names = {0: "zero", 1: "one", 2: "two"}
    rows = []
    for j, (k, pixels) in enumerate(pictures):
        rel = f"../pictures/{names[k]}_{j:02d}.png" if j % 3 else f"../pictures/deep/{j:02d}.png"
        save_digit(pixels, base / "lists" / rel)
        rows.append([rel, names[k]])
    rows[1][0] = str((base / "lists" / rows[1][0]).resolve())  # an absolute path
    rows.append(["../pictures/missing.png", "one"])  # listed but not there: skipped and listed
    rows[2][1] = ""  # no label: left out of training
    (base / "lists").mkdir(exist_ok=True)
    with open(base / "lists" / "train.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label"], *rows])
    val = []
    for j, (k, pixels) in enumerate(digit_pictures(16)[::2]):
        save_digit(pixels, base / "eval" / f"v{j}.png")
        val.append([f"v{j}.png", names[k]])
    with open(base / "eval" / "val.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label"], *val])
    run = cli_runner(base / "cwd")
    result = run("train", "--dataset", "csv", "--train-csv", base / "lists" / "train.csv", "--val-csv",
                 base / "eval" / "val.csv", "--epochs", "1", "--out", "run", *SMALL_IMAGES)
    assert result.returncode == 0, result.stderr
    return {"base": base, "run": run, "rows": rows, "result": result, "out": base / "cwd" / "run"}


def test_csv_list_trains_and_names_the_listed_paths(csv_run):
    rows, out = csv_run["rows"], csv_run["out"]
    trained = [r for r in rows if r[1] and "missing" not in r[0]]
    assert "comining (recipe default) on csv: 29 training images (1 unreadable file skipped" in csv_run["result"].stdout
    assert "1 sample left out of training" in csv_run["result"].stdout
    verdicts = read_csv(out / "verdicts.csv")
    assert [(r["sample"], r["given_label"]) for r in verdicts] == [tuple(r) for r in trained]
    skipped = (out / "skipped_files.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in skipped] == ["../pictures/missing.png"]
    data = json.loads((out / "data.json").read_text())
    assert data["classes"] == ["one", "two", "zero"] and data["root"] == str((csv_run["base"] / "lists").resolve())
    from comining.verdicts_view import image_source
    show = image_source(data, json.loads((out / "config.json").read_text()))
    assert all(show(r["sample"]) is not None for r in verdicts)  # what inspect draws


@pytest.mark.slow
def test_csv_list_export_reads_back_as_a_list_and_as_labels(csv_run):
    base, run, out = csv_run["base"], csv_run["run"], csv_run["out"]
    with pytest.raises(UserError, match="cannot write"):  # no such folder: nothing half-written
        export_run(out, base / "fixed" / "train.csv")
    (base / "fixed").mkdir()
    export_run(out, base / "fixed" / "train.csv")
    with pytest.raises(UserError, match="a .npy cannot hold"):
        export_run(out, base / "fixed" / "train.npy")
    exported = read_csv(base / "fixed" / "train.csv")
    verdicts = read_csv(out / "verdicts.csv")
    assert [Path(r["path"]).is_absolute() for r in exported] == [True] * len(verdicts)  # written elsewhere
    expected = [(os.path.join(str((base / "lists").resolve()), r["sample"]), expected_label(r)) for r in verdicts]
    assert [(r["path"], r["label"]) for r in exported] == expected

    # A one-epoch run may set aside every sample of a class; the validation list may then only name
    # the classes the exported list still has (the loader refuses an unknown class name); with two
    # classes left the default smoothing must still leave a trace of the label (no --epsilon needed).
    kept = [(p, y) for p, y in expected if y]
    kept_classes = {y for _, y in kept}
    val = read_csv(base / "eval" / "val.csv")
    with open(base / "eval" / "val_kept.csv", "w", newline="") as fh:  # beside the images it names
        csv.writer(fh).writerows([["path", "label"],
                                  *([r["path"], r["label"]] for r in val if r["label"] in kept_classes)])
    again = run("train", "--dataset", "csv", "--train-csv", base / "fixed" / "train.csv", "--val-csv",
                base / "eval" / "val_kept.csv", "--epochs", "1", "--out", "again", *SMALL_IMAGES)
    assert again.returncode == 0, again.stderr
    assert [(r["sample"], r["given_label"]) for r in read_csv(base / "cwd" / "again" / "verdicts.csv")] == kept

    relabelled = run("train", "--dataset", "csv", "--train-csv", base / "lists" / "train.csv", "--val-csv",
                     base / "eval" / "val.csv", "--labels", base / "fixed" / "train.csv", "--epochs", "1",
                     "--out", "relabelled", *SMALL_IMAGES)
    assert relabelled.returncode == 0, relabelled.stderr
    by_path = {r["sample"]: r["given_label"] for r in read_csv(base / "cwd" / "relabelled" / "verdicts.csv")}
    assert by_path == {r["sample"]: expected_label(r) for r in verdicts if expected_label(r)}


def expected_label(row: dict) -> str:
    return {"relabelled": row["suggested_label"], "discarded": ""}.get(row["verdict"], row["given_label"])


def csv_error(train: Path, val: Path) -> str:
    with pytest.raises(UserError) as info:
        FolderData(resolve({"dataset": "csv", "train_csv": str(train), "val_csv": str(val), "workers": 0}), "cpu")
    return str(info.value)


@pytest.mark.parametrize("text, fragment", [
    ("path,label\na.png,cat\na.png,dog\n", "line 3: a.png is listed twice (first on line 2)"),
    ("index,label\n0,cat\n", "should list images with the header path,label"),
    ("path,label\na.png,\n", "lists no labelled image"),
    ("path,label\na.png,cat\nd.png,owl\n", "val.csv line 3: label 'dog' is neither a class (cat, owl)"),  # not in training
    ("path,label\na.png,cat\n", "train.csv labels its images with one class only (cat)"),  # before the val list
])
def test_csv_list_errors(tmp_path, text, fragment):
    (tmp_path / "train.csv").write_text(text)
    (tmp_path / "val.csv").write_text("path,label\nb.png,cat\nc.png,dog\n")
    assert fragment in csv_error(tmp_path / "train.csv", tmp_path / "val.csv")


def test_csv_list_needs_both_lists(tmp_path):
    with pytest.raises(UserError, match="--dataset csv reads the images listed in --train-csv FILE and --val-csv"):
        resolve({"dataset": "csv", "train_csv": str(tmp_path / "t.csv")})
    assert "image list" in csv_error(tmp_path / "t.csv", tmp_path / "v.csv")
