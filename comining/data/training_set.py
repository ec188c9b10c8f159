"""What a run's training set offers the trainer, the run directory and the reports, stated once.

``TrainingSet`` is implemented by ``InMemoryData`` (comining/data/in_memory.py: digits, Fashion-MNIST,
CIFAR, held whole on the training device), ``FolderData`` (comining/data/image_set.py: image folders,
CSV lists, web sets, streamed from disk) and ``FeatureData`` (comining/data/features.py: --backbone
frozen). Every member exists on each, so a caller needs no ``hasattr``; ``reads_files`` tells the
kinds apart where it matters (which files to report as skipped). Position i is the i-th training
sample after ``--train-subset`` and a label file's left-out samples are taken away. A checkpoint keeps
the set's ``fingerprint()``, so ``--resume`` refuses changed data (``check_same_data``).
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from comining.errors import UserError

EPOCH_SEED_STRIDE = 100003  # seed * stride + epoch: no two (seed, epoch) pairs of a study share a stream


def subset_positions(size: int, n: int | None, shuffled: bool) -> list[int] | None:
    """The positions ``--train-subset n`` (and ``--test-subset n``) keep of ``size`` samples, in the
    data's own order: the first n of the data set's order for in-memory sets (whose files mix the
    classes), of a permutation seeded by 0 for image sets (``shuffled``: their listings go class
    folder by class folder); None keeps all (n unset, 0 or ≥ size)."""
    if not n or n >= size:
        return None
    order = np.random.RandomState(0).permutation(size) if shuffled else np.arange(size)
    return sorted(order[:n].tolist())


class TrainingSet(ABC):
    """The training set of a run (N samples), its evaluation split, and how its images are viewed.
    Implementations set these members in ``__init__`` and define the abstract methods."""

    reads_files: bool  # True: image files from disk (they can be unreadable: skipped_files); False: arrays
    root: Path | None  # what sample_names() are relative to (data.json keeps it); None for in-memory sets
    classes: list[str]  # the known classes' names, label c is classes[c]
    num_classes: int  # len(classes): the classifier's outputs (open-set labels are num_classes or above)
    labels: torch.Tensor  # the given (noisy) labels [N long] on the training device: what the run trains on
    true_labels: torch.Tensor | None  # the true labels [N long] on the device where known (synthetic noise)
    noise: dict  # the synthetic noise applied (noise.realised_rates); {} when the labels are as given
    full_size: int  # samples a --labels file describes (data.json's full_train_size): all of an in-memory
    #                 training set (by position), an image set's readable images after --train-subset (by path)
    left_out: int  # training samples a label file (or a CSV list) gives no label
    unmatched_label_rows: list[str]  # paths a --labels file lists that name no file of the set; [] in memory
    skipped_files: dict[str, str]  # {file: reason} of either split's image files left out (undecodable before
    #                                or during training, outside any class folder); {} in memory
    failed_positions: set[int]  # positions whose file broke during training (verdicts.csv leaves them out)
    channels: int  # 1 (grey) or 3 (RGB)
    image_size: int  # the side of the square uint8 images the batch methods yield
    crop_size: int  # the side of the views' crops (random in training, centre in testing), ≤ image_size
    padding: int  # zero padding around an image before a random crop
    flip: bool  # whether training views flip images horizontally at random
    normalize: tuple[tuple[float, ...], tuple[float, ...]]  # (mean, std) per channel of [0, 1] pixels

    @abstractmethod
    def __len__(self) -> int:
        """N: positions 0..N-1."""

    def epoch_order(self, epoch: int, seed: int) -> torch.Tensor:
        """Every position once (a CPU long tensor), shuffled by a generator of its own seeded by (seed,
        epoch), so a resumed run and every DDP rank draw the same order."""
        return torch.randperm(len(self), generator=torch.Generator().manual_seed(seed * EPOCH_SEED_STRIDE + epoch))

    def num_batches(self, batch_size: int) -> int:
        """Training steps of an epoch: full batches only (the last incomplete one dropped), at least one."""
        return max(1, len(self) // batch_size)

    @abstractmethod
    def epoch_batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> list:
        """This rank's positions for each of an epoch's ``num_batches`` steps, batch_size // world of them."""

    @abstractmethod
    def batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(positions [B long], images [B×C×S×S uint8], given labels [B long]) on the device for each of
        ``epoch_batches`` from step ``start`` on (a resumed epoch skips the steps it has done)."""

    @abstractmethod
    def ordered_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(positions, uint8 images) on the device of every sample in order, for the final verdicts (a file
        that breaks is left out and added to ``failed_positions``)."""

    @abstractmethod
    def test_batches(self, batch_size: int, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(uint8 images, true labels) on the device of the evaluation split's batches rank, rank + world, ..."""

    @abstractmethod
    def sample_names(self) -> Sequence[str]:
        """How verdicts.csv names each position: its path relative to ``root`` (or absolute) for image sets,
        its number in the data set's training set for in-memory sets."""

    @abstractmethod
    def content_check(self) -> torch.Tensor | str:
        """A cheap record of the content for ``fingerprint``: ``file_stats`` for image sets (reading every
        file again would cost a pass over the data), ``array_hash`` of images and labels in memory."""

    def fingerprint(self) -> dict:
        """{"names": sample_names(), "labels": the given labels [N long, CPU], "content": content_check()},
        as the checkpoint keeps it: taken on the first call and kept, so it describes the data as first read."""
        if "_fingerprint" not in vars(self):
            self._fingerprint = {"names": list(self.sample_names()), "labels": self.labels.cpu().clone(),
                                 "content": self.content_check()}
        return self._fingerprint


def file_stats(root: Path | None, files: Sequence[str]) -> torch.Tensor:
    """(size, mtime_ns) [N×2 int64] of each file (relative to ``root`` or absolute); (-1, -1) for a
    file that cannot be examined, so it differs from any file that can."""
    stats = []
    for name in files:
        try:
            info = os.stat(root / name if root is not None else name)
            stats.append((info.st_size, info.st_mtime_ns))
        except (OSError, ValueError):
            stats.append((-1, -1))
    return torch.tensor(stats, dtype=torch.long).reshape(-1, 2)


def array_hash(*arrays: torch.Tensor) -> str:
    """A blake2b digest (hex) of the arrays' bytes, shapes and types."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        array = array.detach().cpu().contiguous()
        digest.update(f"{tuple(array.shape)}{array.dtype};".encode())
        digest.update(array.numpy().tobytes())
    return digest.hexdigest()


def data_change(then: dict, now: dict) -> str | None:
    """What differs between two fingerprints (``then`` as a checkpoint kept it), in a few words, or
    None when they agree. ValueError where ``then`` is not a fingerprint."""
    then = then if isinstance(then, dict) else {}
    names, labels, content = then.get("names"), then.get("labels"), then.get("content")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)
            and isinstance(labels, torch.Tensor) and labels.shape == (len(names),)
            and isinstance(content, (str, torch.Tensor))):
        raise ValueError("its record of the training data is damaged")
    size, now_content = len(now["names"]), now["content"]
    if len(names) != size:
        return f"{size} training samples now, {len(names)} then (images added or removed, or the label file changed)"
    moved = [i for i, (a, b) in enumerate(zip(names, now["names"])) if a != b]
    if moved:
        return (f"{len(moved)} of {size} training samples are others now (first: {names[moved[0]]} "
                f"is now {now['names'][moved[0]]})")
    if isinstance(content, torch.Tensor) and getattr(now_content, "shape", None) == content.shape:  # one per file
        changed = (content != now_content).any(1).nonzero().flatten().tolist()
        if changed:
            return f"{len(changed)} of {size} image files changed since (first: {names[changed[0]]})"
    elif not (isinstance(content, str) and content == now_content):
        return "the training images differ (another copy or version of the data set)"
    relabelled = (labels != now["labels"]).nonzero().flatten().tolist()
    if relabelled:
        return (f"the labels differ for {len(relabelled)} of {size} samples (first: {names[relabelled[0]]}; "
                "the label file changed)")
    return None


def check_same_data(checkpoint: Path, then: dict | None, data: TrainingSet) -> None:
    """UserError, one line, where ``data`` is not the data the checkpoint's run trained on, as its
    fingerprint ``then`` says; a checkpoint without one (written before fingerprints) passes."""
    if then is None:
        return
    try:
        change = data_change(then, data.fingerprint())
    except ValueError as err:
        raise UserError(f"checkpoint {checkpoint} is not a comining checkpoint ({err}): start a new run") from None
    if change:
        raise UserError(f"{checkpoint} was trained on other data: {change}; start a new run, or put the data back "
                        "as it was")
