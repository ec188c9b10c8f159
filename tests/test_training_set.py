"""The one interface of a run's training set (comining/data/training_set.py): both kinds implement
every member with the kind it promises, and ``--train-subset`` keeps the first N of a fixed order
on both."""

from __future__ import annotations

import types
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comining.config import resolve
from comining.data import load_arrays
from comining.data.image_set import FolderData
from comining.data.in_memory import InMemoryData
from comining.data.training_set import TrainingSet, data_change

CLASSES = ("cat", "dog", "owl")
PER_CLASS = 4


def hand_built_folder(root: Path) -> list[str]:
    """train/<class>/ with PER_CLASS plain-colour PNGs a class, val/<class>/ with one; returns the
    training files as the listing orders them (class folder by class folder)."""
    files = []
    for k, name in enumerate(CLASSES):
        for j in range(PER_CLASS):
            rel = f"train/{name}/{j}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (12, 12), (60 * k, 20 * j, 90)).save(root / rel)
            files.append(rel)
        (root / "val" / name).mkdir(parents=True)
        Image.new("RGB", (12, 12), (60 * k, 0, 0)).save(root / "val" / name / "0.png")
    return files


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("hand") / "images"
    return root, hand_built_folder(root)


def image_set(root: Path, **extra) -> FolderData:
    cfg = resolve({"dataset": "folder", "data_root": str(root), "rescale_size": 12, "crop_size": 8,
                   "workers": 0, **extra})
    return FolderData(cfg, "cpu")


def in_memory(**extra) -> InMemoryData:
    return InMemoryData(resolve({"dataset": "digits", **extra}), load_arrays("digits"), "cpu")


def is_kind(value, hint) -> bool:
    """Whether ``value`` is of the annotated kind: classes, X | None, and list/set/dict/tuple of them."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(is_kind(value, h) for h in args)
    if hint is type(None):
        return value is None
    if origin is None:
        return isinstance(value, hint)
    if not isinstance(value, origin):
        return False
    if origin in (list, set):
        return all(is_kind(v, args[0]) for v in value)
    if origin is dict:
        return all(is_kind(k, args[0]) and is_kind(v, args[1]) for k, v in value.items())
    if len(args) == 2 and args[1] is Ellipsis:
        return all(is_kind(v, args[0]) for v in value)
    return len(value) == len(args) and all(is_kind(v, h) for v, h in zip(value, args))


ATTRIBUTES = typing.get_type_hints(TrainingSet)
METHODS = ["__len__", *sorted(name for name, member in vars(TrainingSet).items()
                              if callable(member) and not name.startswith("_"))]


def test_the_interface_names_what_callers_use():
    assert {"reads_files", "root", "classes", "labels", "true_labels", "noise", "full_size", "left_out",
            "skipped_files", "failed_positions", "channels", "image_size", "crop_size", "padding", "flip",
            "normalize"} <= set(ATTRIBUTES)
    assert {"epoch_order", "epoch_batches", "batches", "ordered_batches", "test_batches", "num_batches",
            "sample_names", "fingerprint", "content_check"} <= set(METHODS)


@pytest.mark.parametrize("kind", ["in-memory", "image set"])
def test_both_kinds_implement_every_member_with_its_kind(kind, folder_root):
    data = in_memory(train_subset=100) if kind == "in-memory" else image_set(folder_root[0])
    assert isinstance(data, TrainingSet)
    for name, hint in ATTRIBUTES.items():
        assert is_kind(getattr(data, name), hint), f"{kind}: {name} = {getattr(data, name)!r} is not {hint}"
    for name in METHODS:
        assert callable(getattr(data, name)), name

    n, batch_size = len(data), 5
    assert sorted(data.epoch_order(2, 1).tolist()) == list(range(n))
    steps = data.epoch_batches(2, batch_size, 1)
    assert len(steps) == data.num_batches(batch_size) == n // batch_size
    drawn = list(data.batches(2, batch_size, 1, start=1))
    assert len(drawn) == len(steps) - 1
    for (index, images, labels), step in zip(drawn, steps[1:]):
        assert index.tolist() == list(step) and torch.equal(labels, data.labels[index])
        assert images.dtype == torch.uint8 and images.shape[1:] == (data.channels, data.image_size, data.image_size)
    assert [i for index, _ in data.ordered_batches(batch_size) for i in index.tolist()] == list(range(n))
    assert sum(len(labels) for _, labels in data.test_batches(batch_size)) > 0
    assert len(data.sample_names()) == n and len(data.labels) == n


def test_only_the_image_set_reads_files(folder_root):
    memory, files = in_memory(train_subset=100), image_set(folder_root[0])
    assert (memory.reads_files, memory.root, memory.skipped_files, memory.failed_positions) == (False, None, {}, set())
    assert files.reads_files and files.root == folder_root[0] and files.skipped_files == {} and files.failed_positions == set()


def test_an_epoch_order_is_the_same_on_both_kinds_of_equal_size(folder_root):
    files = image_set(folder_root[0])
    memory = in_memory(train_subset=len(files))
    assert torch.equal(files.epoch_order(3, 7), memory.epoch_order(3, 7))
    assert not torch.equal(files.epoch_order(3, 7), files.epoch_order(4, 7))


# --- --train-subset: the first N of a fixed order --------------------------------------------------

def test_train_subset_of_an_in_memory_set_is_its_first_n():
    arrays = load_arrays("digits")
    data = in_memory(train_subset=30)
    assert data.sample_names() == [str(i) for i in range(30)] and data.full_size == len(arrays.train_labels)
    assert torch.equal(data.images, arrays.train_images[:30])
    assert data.true_labels.tolist() == list(arrays.train_labels[:30])


def test_train_subset_of_an_image_set_is_the_first_n_of_a_seeded_shuffle(folder_root):
    root, listed = folder_root
    shuffled = np.random.RandomState(0).permutation(len(listed))
    kept = {}
    for n in range(1, len(listed) + 1):
        data = image_set(root, train_subset=n)
        kept[n] = data.sample_names()
        assert kept[n] == [listed[i] for i in sorted(shuffled[:n])]  # in listing order
        assert data.full_size == n
        assert [CLASSES[c] for c in data.labels.tolist()] == [f.split("/")[1] for f in kept[n]]
    assert all(set(kept[n]) < set(kept[n + 1]) for n in range(1, len(listed)))  # each N adds one image
    assert kept[len(listed)] == listed == image_set(root).sample_names()
    assert {f.split("/")[1] for f in kept[5]} == set(CLASSES)  # the listing's first 5 hold two classes


# --- the fingerprint a checkpoint keeps, and what a resume finds changed ---------------------------

@pytest.mark.parametrize("kind", ["in-memory", "image set"])
def test_a_fingerprint_holds_the_names_labels_and_content_taken_once(kind, folder_root):
    data = in_memory(train_subset=100) if kind == "in-memory" else image_set(folder_root[0])
    taken = data.fingerprint()
    assert taken is data.fingerprint() and set(taken) == {"names", "labels", "content"}
    assert taken["names"] == data.sample_names() and torch.equal(taken["labels"], data.labels.cpu())
    if kind == "image set":
        sizes = [(folder_root[0] / f).stat() for f in data.files]
        assert taken["content"].tolist() == [[s.st_size, s.st_mtime_ns] for s in sizes]
    else:
        again = in_memory(train_subset=100).fingerprint()["content"]
        assert isinstance(taken["content"], str) and taken["content"] == again
    assert data_change(taken, taken) is None
    renamed = {**taken, "names": ["elsewhere.png", *taken["names"][1:]]}
    assert data_change(renamed, taken) == (f"1 of {len(data)} training samples are others now "
                                           f"(first: elsewhere.png is now {taken['names'][0]})")
    with pytest.raises(ValueError, match="damaged"):
        data_change({"names": taken["names"], "labels": taken["labels"][1:], "content": ""}, taken)


def test_other_in_memory_images_change_the_fingerprint():
    same, other = in_memory(train_subset=100), in_memory(train_subset=100)
    other.images[7, 0, 3, 3] += 1
    assert data_change(same.fingerprint(), other.fingerprint()) == (
        "the training images differ (another copy or version of the data set)")
    assert data_change(same.fingerprint(), in_memory(train_subset=100, closed_rate=0.5).fingerprint()).startswith(
        "the labels differ for ")
