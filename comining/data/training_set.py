"""What a run's training set offers the trainer, the run directory and the reports, stated once.

Two kinds implement ``TrainingSet``: ``InMemoryData`` (comining/data/in_memory.py: digits,
Fashion-MNIST, CIFAR, held whole on the training device) and ``FolderData``
(comining/data/image_set.py: image folders, CSV lists, web sets, streamed from disk). Every member
exists on both, so a caller needs no ``hasattr``; where the kinds must be told apart (which files
to report as skipped), ``reads_files`` says which one it holds.

A run's checkpoint keeps the set's ``fingerprint()``, so that ``--resume`` refuses data that changed
since (``check_same_data``): another file list, other labels, or other content.

Positions: sample i of a training set is its i-th training sample after ``--train-subset`` and a
label file's left-out samples are taken away; ``sample_names()[i]`` says which sample that is.
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
    """The positions ``--train-subset n`` (and ``--test-subset n``) keep of ``size`` samples: the
    first n of a fixed order, listed in the data's own order; None keeps all (n unset, 0 or ≥ size).

    The fixed order is the data set's own for in-memory sets, whose files mix the classes, and a
    permutation seeded by 0 for image sets (``shuffled``), whose listings go class folder by class
    folder: their first n would leave classes out.
    """
    if not n or n >= size:
        return None
    order = np.random.RandomState(0).permutation(size) if shuffled else np.arange(size)
    return sorted(order[:n].tolist())


class TrainingSet(ABC):
    """The training set of a run, its evaluation split, and how its images are to be viewed.

    Implementations set every attribute below in ``__init__`` and define the abstract methods.
    """

    reads_files: bool
    """True when the samples are image files read from disk (which can be unreadable, so a run
    reports ``skipped_files`` in results.json and skipped_files.txt); False for arrays held in memory."""
    root: Path | None
    """The folder that ``sample_names()`` are relative to (data.json records it for predict and
    review); None for in-memory sets, whose samples are numbered, not named by path."""
    classes: list[str]
    """The names of the known classes, label c being ``classes[c]``."""
    num_classes: int
    """``len(classes)``: the classifier's outputs. Open-set labels are ``num_classes`` or above."""
    labels: torch.Tensor
    """The given labels [N long], on the training device: what the run trains on (noisy)."""
    true_labels: torch.Tensor | None
    """The true labels [N long] on the device where they are known (synthetic noise), else None."""
    noise: dict
    """The synthetic noise actually applied (noise.realised_rates); {} when the labels are as given."""
    full_size: int
    """How many samples a ``--labels`` file for this data describes (data.json's full_train_size):
    the data set's whole training set for in-memory sets (label files go by position), the readable
    listed images after ``--train-subset`` for image sets (label files go by path)."""
    left_out: int
    """Training samples left out because a label file (or a CSV list) gives them no label."""
    skipped_files: dict[str, str]
    """{file: one-line reason} of the image files a run leaves out, of either split: those that do
    not decode (found before or during training) and those outside any class folder; always {} for
    in-memory sets."""
    failed_positions: set[int]
    """Positions of training samples whose file broke during training (verdicts.csv leaves them
    out); always empty for in-memory sets."""
    channels: int
    """Channels of every image: 1 (grey) or 3 (RGB)."""
    image_size: int
    """Side in pixels of the square uint8 images that the batch methods yield."""
    crop_size: int
    """Side of the views' crops (random for training, centre for testing), at most image_size."""
    padding: int
    """Zero padding around an image before a random crop."""
    flip: bool
    """Whether the training views flip images horizontally at random."""
    normalize: tuple[tuple[float, ...], tuple[float, ...]]
    """(mean, std) per channel, applied to [0, 1] pixels by the views."""

    @abstractmethod
    def __len__(self) -> int:
        """N, the number of training samples (positions 0..N-1)."""

    def epoch_order(self, epoch: int, seed: int) -> torch.Tensor:
        """Every position once, shuffled by (seed, epoch) with a generator of its own, so a resumed
        run and every DDP rank draw the same order (a CPU long tensor)."""
        generator = torch.Generator().manual_seed(seed * EPOCH_SEED_STRIDE + epoch)
        return torch.randperm(len(self), generator=generator)

    def num_batches(self, batch_size: int) -> int:
        """Training steps of an epoch: full batches only, the last incomplete one dropped, but at least one."""
        return max(1, len(self) // batch_size)

    @abstractmethod
    def epoch_batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> list:
        """This rank's batches of positions for an epoch, one per step: ``num_batches(batch_size)``
        of them in one process, each of ``batch_size // world`` positions with ``world`` ranks."""

    @abstractmethod
    def batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (positions [B long], images [B×C×S×S uint8], given labels [B long]) on the device
        for ``epoch_batches`` from step ``start`` on (a resumed epoch skips the steps it has done)."""

    @abstractmethod
    def ordered_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (positions, uint8 images) on the device of every training sample in position
        order, for the final verdicts' pass (a file that breaks is left out and added to ``failed_positions``)."""

    @abstractmethod
    def test_batches(self, batch_size: int, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (uint8 images, true labels) on the device of the evaluation split: every
        ``world``-th batch of ``batch_size`` from batch ``rank`` on."""

    @abstractmethod
    def sample_names(self) -> Sequence[str]:
        """How verdicts.csv names each position: a path relative to ``root`` (or absolute) for image
        sets, the sample's number in the data set's training set for in-memory sets."""

    @abstractmethod
    def content_check(self) -> torch.Tensor | str:
        """A cheap record of the samples' content for ``fingerprint``: (size, mtime_ns) of every file
        [N×2 int64] for image sets (reading every file again would cost a pass over the data), a
        hash of the image and label arrays for in-memory sets."""

    def fingerprint(self) -> dict:
        """What this run trains on, as the checkpoint keeps it: {"names": sample_names(), "labels":
        the given labels [N long, CPU], "content": content_check()}; taken on the first call and kept,
        so it describes the data as the run first read it."""
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
    size = len(now["names"])
    if len(names) != size:
        return (f"{size} training samples now, {len(names)} then (images added or removed, or the label "
                "file changed)")
    moved = [i for i, (a, b) in enumerate(zip(names, now["names"])) if a != b]
    if moved:
        return (f"{len(moved)} of {size} training samples are others now (first: {names[moved[0]]} "
                f"is now {now['names'][moved[0]]})")
    if isinstance(content, torch.Tensor) and isinstance(now["content"], torch.Tensor) \
            and content.shape == now["content"].shape:  # a record per file
        changed = (content != now["content"]).any(1).nonzero().flatten().tolist()
        if changed:
            return f"{len(changed)} of {size} image files changed since (first: {names[changed[0]]})"
    elif not (isinstance(content, str) and content == now["content"]):
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
