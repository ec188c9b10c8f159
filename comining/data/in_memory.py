"""In-memory training sets (digits, Fashion-MNIST, CIFAR) as a ``TrainingSet``."""

from __future__ import annotations

import numpy as np
import torch

from comining import labelfile, noise
from comining.config import Config
from comining.data.augment import IMAGENET_MEAN, IMAGENET_STD
from comining.data.training_set import TrainingSet, array_hash, subset_positions
from comining.errors import UserError


class InMemoryData(TrainingSet):
    """A whole uint8 data set on the training device with the run's label noise applied. Beyond ``TrainingSet``:
    images [N×C×H×W uint8] and test_images / test_labels (open-set classes removed) on the device, and
    sample_index (each position's index in the data set's training set, as label files and verdicts.csv count)."""

    reads_files = False
    root = None  # samples are numbered, not files

    def __init__(self, cfg: Config, arrays, device):
        images, true = arrays.train_images, np.asarray(arrays.train_labels, dtype=np.int64)
        total_classes = len(arrays.classes)
        self.full_size = len(true)
        self.sample_index = np.arange(len(true))
        first_n = subset_positions(len(true), cfg.train_subset, shuffled=False)
        if first_n is not None:
            self.sample_index, images, true = self.sample_index[first_n], images[first_n], true[first_n]
        labels, self.left_out = true, 0
        self.unmatched_label_rows: list[str] = []  # positions, not paths: an unknown one is an error
        if cfg.labels:  # the file's labels are given, the data set's own ones are the truth
            from_file = labelfile.read_by_position(cfg.labels, self.full_size, list(arrays.classes),
                                                   cfg.label_key)[self.sample_index]
            kept = from_file != labelfile.LEFT_OUT
            if not kept.any():
                raise UserError(f"{cfg.labels} leaves every training sample out (all labels -1 or empty): "
                                "give at least some labels")
            self.sample_index, self.left_out = self.sample_index[kept], int((~kept).sum())
            images, true, labels = images[torch.from_numpy(kept)], true[kept], from_file[kept]
        matrix = noise.transition_matrix(cfg.noise_type, cfg.closed_rate, cfg.open_ratio, total_classes)
        given = noise.corrupt(labels, matrix, cfg.noise_seed)
        self.num_classes = noise.closed_classes(total_classes, cfg.open_ratio)
        self.classes = list(arrays.classes[: self.num_classes])
        self.noise = noise.realised_rates(true, given, self.num_classes)

        test_images, test_true = arrays.test_images, np.asarray(arrays.test_labels, dtype=np.int64)
        keep = test_true < self.num_classes  # the test set of an open-set setting has known classes only
        test_images, test_true = test_images[torch.from_numpy(keep)], test_true[keep]
        first_n = subset_positions(len(test_true), cfg.test_subset, shuffled=False)
        if first_n is not None:
            test_images, test_true = test_images[first_n], test_true[first_n]

        self.device = device
        self.images = images.contiguous().to(device)
        self.labels = torch.from_numpy(given).to(device)
        self.true_labels = torch.from_numpy(true).to(device)
        self.test_images = test_images.contiguous().to(device)
        self.test_labels = torch.from_numpy(test_true).to(device)

        channels, side = self.images.shape[1], self.images.shape[-1]
        self.channels, self.image_size = channels, side
        self.crop_size = cfg.crop_size or side
        if self.crop_size > side:
            raise UserError(f"--crop-size {self.crop_size} is larger than the {side}-pixel images of {arrays.name}: "
                            f"pass at most {side}, or leave it out")
        self.padding = cfg.padding if cfg.padding is not None else self.crop_size // 8
        self.flip = True if cfg.flip is None else cfg.flip
        if channels == 3:
            self.normalize = (IMAGENET_MEAN, IMAGENET_STD)
        else:  # grey images: the training set's own statistics
            pixels = self.images[:10000].float() / 255
            self.normalize = ((pixels.mean().item(),) * channels, (pixels.std().item(),) * channels)
        self.skipped_files: dict[str, str] = {}  # no files to break
        self.failed_positions: set[int] = set()

    def __len__(self) -> int:
        return self.images.shape[0]

    def epoch_batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> list:
        """Long tensors of positions on the device: ``epoch_order`` cut into batches, each split
        into ``world`` consecutive shares of which this rank takes its own."""
        order = self.epoch_order(epoch, seed).to(self.device)
        steps = [order[b * batch_size:(b + 1) * batch_size] for b in range(self.num_batches(batch_size))]
        return [index.tensor_split(world)[rank] for index in steps] if world > 1 else steps

    def batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        for index in self.epoch_batches(epoch, batch_size, seed, rank, world)[start:]:
            yield index, self.images[index], self.labels[index]

    def ordered_batches(self, batch_size: int):
        for index in torch.arange(len(self), device=self.device).split(batch_size):
            yield index, self.images[index]

    def test_batches(self, batch_size: int, rank: int = 0, world: int = 1):
        for start in range(rank * batch_size, self.test_images.shape[0], world * batch_size):
            yield self.test_images[start:start + batch_size], self.test_labels[start:start + batch_size]

    def sample_names(self) -> list[str]:
        """A label file's left-out samples keep their numbers out of the names."""
        return [str(i) for i in self.sample_index.tolist()]

    def content_check(self) -> str:
        return array_hash(self.images, self.true_labels)
