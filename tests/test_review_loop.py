"""The practitioner's loop (README, steps 1-5) on a small image folder: train, review in the browser,
train again on the saved label file, predict."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from browser import browser, watched  # noqa: F401  (fixtures)
from conftest import cli_runner
from test_folder import SMALL, digit_images, save, to_image

HOSTILE = "<img src=x onerror=alert(1)>.jpg"
CLASSES = ("cat", "dog", "owl")  # digits 0, 1, 2 under these names


def image_folder(root: Path, per_class: int = 12, val: int = 4) -> None:
    """root/train/<class>/ and root/val/<class>/ of digit pictures; one training file named as markup."""
    images, target = digit_images()
    for digit, name in enumerate(CLASSES):
        pool = [images[i] for i in range(len(target)) if target[i] == digit]
        for j in range(per_class):
            save(to_image(pool[j]), root / "train" / name / f"{j:02d}.png")
        for j in range(val):
            save(to_image(pool[per_class + j]), root / "val" / name / f"v{j}.png")
    shutil.copy(root / "train/cat/00.png", root / "train/cat" / HOSTILE)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_train_review_retrain_predict(tmp_path, watched):
    root = tmp_path / "images"
    image_folder(root)
    run = cli_runner(tmp_path / "cwd")
    first, second = tmp_path / "run1", tmp_path / "run2"
    trained = run("train", "--dataset", "folder", "--data-root", root, "--epochs", "2", "--workers", "0",
                  "--out", first, *SMALL)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    reviewed = run("review", first)
    assert reviewed.returncode == 0, reviewed.stderr
    rows = read_csv(first / "verdicts.csv")
    samples = [r["sample"] for r in rows]

    # in the browser: show everything, drop the hostile file by keyboard, move dog/00.png to owl
    page = watched.page
    page.goto((first / "review.html").as_uri())
    page.locator("#verdict-filter input[value='0']").check()
    page.locator(f".card[data-row='{samples.index('train/cat/' + HOSTILE)}']").focus()
    page.keyboard.press("d")
    page.locator(f".card[data-row='{samples.index('train/dog/00.png')}'] select").select_option(label="owl")
    labels = tmp_path / "reviewed_labels.csv"
    with page.expect_download() as download:
        page.locator("#save").click()
    download.value.save_as(labels)
    watched.assert_quiet()
    decided = {r["path"]: r["label"] for r in read_csv(labels)}
    assert decided["train/cat/" + HOSTILE] == "" and decided["train/dog/00.png"] == "owl"
    assert sorted(decided) == sorted(samples)

    retrained = run("train", "--dataset", "folder", "--data-root", root, "--epochs", "2", "--workers", "0",
                    "--labels", labels, "--out", second, *SMALL)
    assert retrained.returncode == 0, retrained.stdout + retrained.stderr
    given = {r["sample"]: r["given_label"] for r in read_csv(second / "verdicts.csv")}
    assert given["train/dog/00.png"] == "owl"
    assert "train/cat/" + HOSTILE not in given  # left out of training
    predicted = run("predict", "--run", second, root / "val", "--output", tmp_path / "predictions.csv",
                    "--workers", "0")
    assert predicted.returncode == 0, predicted.stderr
    predictions = read_csv(tmp_path / "predictions.csv")
    assert len(predictions) == 4 * len(CLASSES) and {p["class"] for p in predictions} <= set(CLASSES)
