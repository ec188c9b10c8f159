"""The training set of a run: images on the device, noisy labels, test set and view settings.

``InMemoryData`` holds the whole uint8 data set on the training device; an epoch is a shuffled
sequence of index batches, and every view is made from the batch on the device. The shuffle uses
its own generator seeded by (seed, epoch), so every DDP rank draws the same order and a resumed run
draws the order the interrupted one would have.
"""

from __future__ import annotations

import numpy as np
import torch

from comining import labelfile, noise
from comining.config import Config
from comining.data.augment import IMAGENET_MEAN, IMAGENET_STD
from comining.errors import UserError


class InMemoryData:
    """Training and test arrays of a data set with the run's label noise applied.

    Attributes: images [N×C×H×W uint8], labels (given, possibly noisy) and true_labels [N long],
    test_images / test_labels (open-set classes removed), num_classes (known classes), classes
    (their names), noise (the realised rates), crop_size / padding / flip / normalize for the views,
    sample_index (each sample's position in the data set's training set) and left_out (samples a
    ``--labels`` file left out of training).
    """

    def __init__(self, cfg: Config, arrays, device):
        images, true = arrays.train_images, np.asarray(arrays.train_labels, dtype=np.int64)
        if cfg.train_subset:
            images, true = images[: cfg.train_subset], true[: cfg.train_subset]
        total_classes = len(arrays.classes)
        self.full_size = len(arrays.train_labels)  # how many labels a label file holds
        self.sample_index = np.arange(len(true))  # positions in the training set, as label files count
        labels, self.left_out = true, 0
        if cfg.labels:  # the file's labels are given, the data set's own ones are the truth
            from_file = labelfile.read_by_position(cfg.labels, len(arrays.train_labels), list(arrays.classes),
                                                   cfg.label_key)[: len(true)]
            kept = from_file != labelfile.LEFT_OUT
            if not kept.any():
                raise UserError(f"{cfg.labels} leaves every training sample out (all labels -1 or empty): "
                                "give at least some labels")
            self.sample_index, self.left_out = np.flatnonzero(kept), int((~kept).sum())
            images, true, labels = images[torch.from_numpy(kept)], true[kept], from_file[kept]
        matrix = noise.transition_matrix(cfg.noise_type, cfg.closed_rate, cfg.open_ratio, total_classes)
        given = noise.corrupt(labels, matrix, cfg.noise_seed)
        self.num_classes = noise.closed_classes(total_classes, cfg.open_ratio)
        self.classes = list(arrays.classes[: self.num_classes])
        self.noise = noise.realised_rates(true, given, self.num_classes)

        test_images, test_true = arrays.test_images, np.asarray(arrays.test_labels, dtype=np.int64)
        keep = test_true < self.num_classes  # the test set of an open-set setting has known classes only
        test_images, test_true = test_images[torch.from_numpy(keep)], test_true[keep]
        if cfg.test_subset:
            test_images, test_true = test_images[: cfg.test_subset], test_true[: cfg.test_subset]

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

    def __len__(self) -> int:
        return self.images.shape[0]

    def epoch_order(self, epoch: int, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed * 100003 + epoch)
        return torch.randperm(len(self), generator=generator).to(self.device)

    def batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        """Yield (index, images, labels) of this rank's share of every batch of the epoch from ``start`` on.

        The last incomplete batch is dropped when there is more than one batch, as in the
        authors' loaders, so selection always sees full batches.
        """
        order = self.epoch_order(epoch, seed)
        n_batches = max(1, len(self) // batch_size)
        for b in range(start, n_batches):
            index = order[b * batch_size:(b + 1) * batch_size]
            if world > 1:
                index = index.tensor_split(world)[rank]
            yield index, self.images[index], self.labels[index]

    def num_batches(self, batch_size: int) -> int:
        return max(1, len(self) // batch_size)

    def ordered_batches(self, batch_size: int):
        """Yield (index, uint8 images) of the whole training set in order (the final verdicts' pass)."""
        for start in range(0, len(self), batch_size):
            index = torch.arange(start, min(start + batch_size, len(self)), device=self.device)
            yield index, self.images[index]

    def test_batches(self, batch_size: int, rank: int = 0, world: int = 1):
        """Yield (uint8 images, labels) of every world-th test batch, starting at ``rank``."""
        for start in range(rank * batch_size, self.test_images.shape[0], world * batch_size):
            yield self.test_images[start:start + batch_size], self.test_labels[start:start + batch_size]

    def sample_names(self) -> list[str]:
        """How verdicts.csv names each training sample: its index in the training set (a label file's
        left-out samples keep their numbers out of it)."""
        return [str(i) for i in self.sample_index.tolist()]
