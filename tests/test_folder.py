"""Image folders end to end: a small web-like folder built from real images (scikit-learn's digits),
with files in the wrong class, a foreign class mixed in, and broken files; training, verdicts,
the skipped-file list, `comining inspect`, `comining predict`, and the layout errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comining import hardware
from comining.config import resolve
from comining.data.image_set import FolderData
from comining.data.listing import read_list
from comining.engine import Trainer
from comining.errors import UserError
from comining.predict import load_networks
from conftest import cli_runner

CLASSES = {0: "zero", 1: "one", 2: "two", 3: "three"}  # digit → class folder
FOREIGN = 7  # open-set noise: images of a digit that is none of the classes
BROKEN = {"train/two/corrupt.jpg", "train/three/truncated.jpg", "train/zero/notes.txt"}
SMALL = ["--arch", "small", "--rescale-size", "40", "--crop-size", "32", "--batch-size", "16",
         "--weights", "none", "--warmup-epochs", "1", "--quiet"]


def digit_images():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target


def to_image(pixels: np.ndarray) -> Image.Image:
    """An 8×8 digit (0..16) as a 40×40 RGB picture, as a scraped thumbnail might be."""
    grey = Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8))
    return grey.resize((40, 40), Image.BILINEAR).convert("RGB")


def save(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def jpeg_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def build_folder(root: Path, per_class: int = 40, val: int = 12) -> dict:
    """root/train/<class>/ with 32 own images, 4 of the next class (closed-set noise) and 4 sevens
    (open-set noise) per class, alternately PNG and JPEG; root/val/<class>/ clean; broken files;
    root/new/ held-out images for predict. Returns the relative paths of the readable training files."""
    images, target = digit_images()
    pool = {d: list(np.where(target == d)[0]) for d in [*CLASSES, FOREIGN]}
    files = []

    def take(digit: int) -> np.ndarray:
        return images[pool[digit].pop(0)]

    for digit, name in CLASSES.items():
        nxt = (digit + 1) % len(CLASSES)
        members = [digit] * (per_class - 8) + [nxt] * 4 + [FOREIGN] * 4
        for j, d in enumerate(members):
            rel = f"train/{name}/img_{j:03d}.{'png' if j % 2 else 'jpg'}"
            save(to_image(take(d)), root / rel)
            files.append(rel)
    for digit, name in CLASSES.items():
        for j in range(val):
            save(to_image(take(digit)), root / f"val/{name}/v_{j:03d}.png")
        for j in range(3):
            save(to_image(take(digit)), root / f"new/batch/{name}_{j}.jpg")
    (root / "train/two/corrupt.jpg").write_bytes(np.random.RandomState(0).bytes(600))
    whole = jpeg_bytes(to_image(take(2)))
    (root / "train/three/truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "train/zero/notes.txt").write_text("search results page, not an image\n")
    (root / "train/one/.DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: ignored, not listed
    (root / "new/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return sorted(files)


def folder_cfg(root: Path, **extra):
    return resolve({"dataset": "folder", "data_root": str(root), "arch": "small", "rescale_size": 40,
                    "crop_size": 32, "weights": "none", "workers": 0, **extra})


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# --- one training run, shared by the tests below -----------------------------------------------

@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("folder")
    files = build_folder(base / "images")
    run = cli_runner(base / "cwd")
    out = base / "run"
    result = run("train", "--dataset", "folder", "--data-root", base / "images", "--epochs", "3",
                 "--workers", "2", "--out", out, *SMALL)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"base": base, "root": base / "images", "files": files, "out": out, "result": result, "run": run}


def test_summary_counts_skipped_files_and_reports_no_synthetic_noise(folder_run):
    stdout = folder_run["result"].stdout
    assert "comining (recipe default) on folder: 160 training images (3 unreadable files skipped, listed in skipped_files.txt)" in stdout
    assert "labels wrong" not in stdout  # web labels: the noise is unknown
    assert "comining inspect" in stdout


def test_skipped_files_lists_exactly_the_broken_files(folder_run):
    out = folder_run["out"]
    lines = (out / "skipped_files.txt").read_text().splitlines()
    assert {line.split("\t")[0] for line in lines} == BROKEN
    assert all(line.split("\t")[1] for line in lines)  # every file has its reason
    results = json.loads((out / "results.json").read_text())
    assert results["skipped_files"] == 3
    assert results["train_size"] == 160
    assert json.loads((out / "data.json").read_text())["classes"] == sorted(CLASSES.values())


def test_verdicts_name_every_readable_training_file(folder_run):
    rows = read_csv(folder_run["out"] / "verdicts.csv")
    assert list(rows[0]) == ["sample", "given_label", "verdict", "suggested_label", "label_quality", "outlier_score",
                             "selection", "score"]
    assert [r["sample"] for r in rows] == folder_run["files"]  # relative paths, no broken files
    classes = set(CLASSES.values())
    for row in rows:
        assert row["given_label"] == row["sample"].split("/")[1]  # the class folder's name
        assert row["verdict"] in {"clean", "relabelled", "discarded"}
        if row["verdict"] == "relabelled":
            assert row["suggested_label"] in classes
        else:
            assert row["suggested_label"] == ""
        assert 0 <= float(row["label_quality"]) <= 1 and 0 <= float(row["outlier_score"]) <= 1
        assert row["selection"] in {"clean", "relabelled", "discarded", "unseen"}
    assert Counter(r["verdict"] for r in rows)["clean"] > 0


def test_inspect_prints_the_verdict_counts_and_draws_a_contact_sheet(folder_run):
    out = folder_run["out"]
    result = folder_run["run"]("inspect", out)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = Counter((r["given_label"], r["verdict"]) for r in read_csv(out / "verdicts.csv"))
    for name in CLASSES.values():
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        numbers = [int(v) for v in line.split()[1:5]]  # images, clean, relabelled, discarded
        assert numbers == [40, counts[(name, "clean")], counts[(name, "relabelled")], counts[(name, "discarded")]]
    sheet = out / "contact_sheet.png"
    assert str(sheet) in result.stdout
    with Image.open(sheet) as img:
        assert img.format == "PNG" and img.width > 300 and img.height > 100


def test_predict_writes_one_row_per_input_image(folder_run):
    root = folder_run["root"]
    csv_path = folder_run["base"] / "pred.csv"
    single = root / "val/one/v_000.png"
    result = folder_run["run"]("predict", "--run", folder_run["out"], root / "new", single, "--output", csv_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_csv(csv_path)
    assert list(rows[0]) == ["path", "class", "confidence", "error"]
    expected = sorted(str(p) for p in (root / "new").rglob("*") if p.is_file()) + [str(single)]
    assert [r["path"] for r in rows] == expected
    assert "classified 13 of 14 images" in result.stdout
    broken = next(r for r in rows if r["path"].endswith("broken.png"))
    assert broken["error"] and broken["class"] == "" and broken["confidence"] == ""
    # Every other row is the run's own networks on that image: decoded and cropped here by Pillow
    # and slicing (40×40 files, centre 32×32), normalised as data.json says, mean of the networks.
    nets, info, cfg = load_networks(folder_run["out"], torch.device("cpu"))
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in info["normalize"])
    rows = [r for r in rows if r is not broken]
    pixels = []
    for row in rows:
        with Image.open(row["path"]) as img:
            pixels.append(np.asarray(img.convert("RGB"), dtype=np.float32)[4:36, 4:36] / 255)
    x = (torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2) - mean) / std
    device = torch.device("cpu")
    with torch.no_grad(), hardware.autocast(device, hardware.resolve_precision(cfg["precision"], device)):
        probs = torch.stack([net(x)[0].float().softmax(1) for net in nets]).mean(0)
    confidence, label = probs.max(1)
    assert [r["class"] for r in rows] == [info["classes"][c] for c in label.tolist()]
    assert [float(r["confidence"]) for r in rows] == pytest.approx(confidence.tolist(), abs=2e-3)
    assert confidence.max() - confidence.min() > 0.01  # the images are told apart: not a constant classifier


# --- the data set in-process ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("small") / "images"
    build_folder(root, per_class=12, val=2)
    return root


def test_batches_are_uint8_squares_with_folder_labels_in_a_seeded_order(small_root):
    data = FolderData(folder_cfg(small_root), "cpu")
    assert len(data) == 48 and data.true_labels is None and data.num_classes == 4
    assert (data.crop_size, data.padding, data.flip, data.channels, data.image_size) == (32, 0, True, 3, 40)
    batches = list(data.batches(0, 10, seed=1))
    assert len(batches) == 4  # 48 // 10: the incomplete last batch is dropped
    for index, images, labels in batches:
        assert images.dtype == torch.uint8 and images.shape == (10, 3, 40, 40)
        names = [data.sample_names()[i] for i in index.tolist()]
        assert [data.classes[c] for c in labels.tolist()] == [n.split("/")[1] for n in names]
    assert data.epoch_batches(0, 10, 1) == data.epoch_batches(0, 10, 1) != data.epoch_batches(1, 10, 1)
    test = list(data.test_batches(5))
    assert sum(len(labels) for _, labels in test) == 8 and test[0][0].shape[1:] == (3, 40, 40)


def test_ranks_draw_disjoint_equal_shares(small_root):
    data = FolderData(folder_cfg(small_root), "cpu")
    shares = [data.epoch_batches(2, 10, 1, rank=r, world=2) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 4 and all(len(b) == 5 for s in shares for b in s)
    flat = [set(i for b in s for i in b) for s in shares]
    assert not flat[0] & flat[1]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_file_that_breaks_mid_run_is_replaced_not_fatal(small_root, tmp_path, workers):
    import shutil
    root = tmp_path / "images"
    shutil.copytree(small_root, root)
    data = FolderData(folder_cfg(root, workers=workers), "cpu")
    victim = data.files.index("train/one/img_003.png")
    (root / data.files[victim]).write_bytes(b"gone bad")  # after the check, before the epoch
    (index, images, labels), = data.batches(0, 48, seed=1)
    seen = index.tolist()
    # The batch keeps its size (DDP's collectives need equal shares): the broken file's slot holds a
    # copy of a good sample, so every other file appears and the broken one does not.
    assert len(seen) == 48 and images.shape[0] == 48 and victim not in seen
    assert set(seen) == {i for i in range(48) if i != victim}
    assert data.failed_positions == {victim} and "train/one/img_003.png" in data.skipped_files


def test_train_subset_takes_images_from_every_class(small_root):
    data = FolderData(folder_cfg(small_root, train_subset=20), "cpu")
    assert len(data) == 20 and len(set(data.labels.tolist())) == 4


# --- layout errors: one line before training -----------------------------------------------------

def tiny(root: Path, splits=("train", "val"), classes=("cat", "dog", "owl")) -> Path:
    images, _ = digit_images()
    for split in splits:
        for k, name in enumerate(classes):
            for j in range(2):
                save(to_image(images[k * 2 + j]), root / split / name / f"{j}.png")
    return root


@pytest.mark.parametrize("arrange, message", [
    (lambda r: (r / "train/bird").mkdir(), "class folder"),
    (lambda r: __import__("shutil").rmtree(r / "val"), "no evaluation split"),
    (lambda r: __import__("shutil").rmtree(r / "train"), "no train/ folder"),
    (lambda r: tiny(r, splits=("val",), classes=("fox",)), "no counterpart"),
    (lambda r: [p.write_bytes(b"junk") for p in (r / "val").rglob("*.png")], "holds no readable images"),
    (lambda r: [p.write_bytes(b"junk") for p in (r / "train/dog").glob("*.png")], "has no readable image"),
])
def test_layout_errors_name_the_problem(tmp_path, arrange, message):
    root = tiny(tmp_path / "images")
    arrange(root)
    with pytest.raises(UserError, match=message) as err:
        FolderData(folder_cfg(root), "cpu")
    assert "\n" not in str(err.value)


def test_empty_class_folder_via_the_cli(tmp_path, run_main):
    root = tiny(tmp_path / "images")
    (root / "train/bird").mkdir()
    one_line_error(run_main("train", "--dataset", "folder", "--data-root", root, *SMALL),
                   "class folder", "train/bird is empty")


def test_folder_without_data_root_or_missing(run_main):
    one_line_error(run_main("train", "--dataset", "folder"), "--data-root")
    one_line_error(run_main("train", "--dataset", "folder", "--data-root", "nowhere"), "nowhere not found")


def offline_env(tmp_path) -> dict:
    """No cached weights, and every download sent to a proxy that refuses connections."""
    return {"TORCH_HOME": str(tmp_path / "torch-home"), "https_proxy": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}


@pytest.mark.slow
def test_seed_web_command_starts_and_asks_for_a_local_weights_file(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    run = cli_runner(cwd)
    seed = ["train", "--dataset", "web-bird", "--w_pc", "0.3", "--w_tri", "3", "--w_re", "0.01", "--m", "0.4"]
    one_line_error(run(*seed), "web-bird not found", "datasets/web-bird/train")
    tiny(cwd / "datasets" / "web-bird")
    for key, value in offline_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    one_line_error(run(*seed), "ImageNet weights of resnet50", "--weights PATH")
    assert not (cwd / "runs").exists()  # nothing written before training could start


def test_one_class_folder_and_synthetic_noise_on_a_folder_are_refused(tmp_path, run_main):
    one = tiny(tmp_path / "one", classes=("cat",))
    one_line_error(run_main("train", "--dataset", "folder", "--data-root", one, *SMALL), "1 class", "at least 2")
    root = tiny(tmp_path / "images")
    one_line_error(run_main("train", "--dataset", "folder", "--data-root", root, "--closed-rate", "0.2", *SMALL),
                   "--closed-rate", "as given", "--forget-rate")


# --- careless and hostile files: one image spelled two ways, a FIFO where an image should be -------

def test_a_csv_list_naming_one_image_two_ways_is_refused(tmp_path):
    listing = tmp_path / "train.csv"
    for second in ("./cat/a.png", str(tmp_path / "cat/a.png"), "cat/../cat/a.png"):
        listing.write_text(f"path,label\ncat/a.png,cat\ndog/b.png,dog\n{second},cat\n")
        with pytest.raises(UserError, match="line 4: ") as err:
            read_list(listing)
        assert f"line 4: {second} is listed twice (first on line 2)" in str(err.value)  # as written


@contextlib.contextmanager
def within(seconds: int):
    """TimeoutError where the block still runs after ``seconds``: a test that would wait forever fails."""
    def give_up(signum, frame):
        raise TimeoutError(f"still waiting after {seconds} s")
    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


FIFO_REASON = "not a regular file (a FIFO)"


def train_briefly(cfg):
    """A one-epoch run of ``cfg`` (no run directory), the files' check included, within a minute; its Trainer."""
    with within(60):
        trainer = Trainer(cfg)
        trainer.fit()
    return trainer


def test_a_fifo_in_an_image_folder_is_skipped_with_its_reason(small_root, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(small_root, root)
    os.mkfifo(root / "train/one/pipe.png")  # opening it would wait for a writer
    trainer = train_briefly(folder_cfg(root, epochs=1, batch_size=16, quiet=True, device="cpu"))
    assert trainer.data.skipped_files["train/one/pipe.png"] == FIFO_REASON
    assert len(trainer.data) == 48 and len(trainer.history) == 1


def test_a_fifo_in_a_csv_list_is_skipped_with_its_reason(small_root, tmp_path):
    rows = {split: [f"{p},{p.parent.name}" for p in sorted((small_root / split).rglob("*")) if p.is_file()
                    and p.parent.name in CLASSES.values() and p.suffix in (".png", ".jpg")]
            for split in ("train", "val")}
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "train.csv").write_text("path,label\n" + "\n".join(rows["train"] + ["pipe.png,one"]) + "\n")
    (tmp_path / "val.csv").write_text("path,label\n" + "\n".join(rows["val"]) + "\n")
    cfg = resolve({"dataset": "csv", "train_csv": str(tmp_path / "train.csv"), "val_csv": str(tmp_path / "val.csv"),
                   "arch": "small", "rescale_size": 40, "crop_size": 32, "weights": "none", "workers": 0,
                   "epochs": 1, "batch_size": 16, "quiet": True, "device": "cpu"})
    trainer = train_briefly(cfg)
    assert trainer.data.skipped_files["pipe.png"] == FIFO_REASON
    assert "pipe.png" not in trainer.data.sample_names() and len(trainer.history) == 1


def test_predict_skips_a_fifo_argument_with_its_reason(folder_run, tmp_path):
    pipe, single = tmp_path / "pipe.png", folder_run["root"] / "val/one/v_000.png"
    os.mkfifo(pipe)
    csv_path = tmp_path / "pred.csv"
    result = folder_run["run"]("predict", "--run", folder_run["out"], pipe, single, "--output", csv_path, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_csv(csv_path)
    assert [(r["path"], r["error"]) for r in rows] == [(str(pipe), FIFO_REASON), (str(single), "")]
    assert rows[1]["class"] in CLASSES.values() and "classified 1 of 2 images" in result.stdout
