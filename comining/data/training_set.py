"""What a run's training set offers the trainer, the run directory and the reports, stated once.

Two kinds implement ``TrainingSet``: ``InMemoryData`` (comining/data/in_memory.py: digits,
Fashion-MNIST, CIFAR, held whole on the training device) and ``FolderData``
(comining/data/image_set.py: image folders, CSV lists, web sets, streamed from disk). Every member
exists on both, so a caller needs no ``hasattr``; where the kinds must be told apart (which files
to report as skipped), ``reads_files`` says which one it holds.

Positions: sample i of a training set is its i-th training sample after ``--train-subset`` and a
label file's left-out samples are taken away; ``sample_names()[i]`` says which sample that is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

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
