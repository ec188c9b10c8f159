"""Image sets streamed from disk (image folders, CSV lists and web sets, as comining/data/listing.py
lists them) as a ``TrainingSet``. Every listed file is decoded once before training; those that do not
decode are skipped and listed (``skipped_files``). During training, worker processes decode and resize
the images to ``--rescale-size``² uint8 tensors; crops, flips and AutoAugment happen on the device.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DistributedSampler

from comining import labelfile
from comining.config import FOLDER_DATASETS, Config
from comining.data.augment import IMAGENET_MEAN, IMAGENET_STD
from comining.data.decode import ImageFiles, check_files, in_order, loader
from comining.data.listing import LAYOUT, Listing, list_images
from comining.data.training_set import TrainingSet, file_stats, subset_positions
from comining.errors import UserError


def is_folder_dataset(name: str) -> bool:
    """Whether ``--dataset name`` is an image set read from files (else an in-memory set)."""
    return name in FOLDER_DATASETS


def pick(files: list[str], labels: list[int], keep) -> tuple[list[str], list[int]]:
    """The files and labels at positions ``keep`` (all of them for None)."""
    if keep is None:
        return files, labels
    return [files[i] for i in keep], [labels[i] for i in keep]


def readable(root: Path, split: str, files: list[str], labels: list[int], classes: list[str],
             workers: int, skipped: dict, known=frozenset()) -> tuple[list[str], list[int]]:
    """The files of a split that decode, recording the others in ``skipped``; every class of the
    split must keep at least one image, and the split must keep some. Files in ``known`` (found
    readable before, e.g. whose features are cached) count as readable without being decoded again."""
    unknown = [i for i, name in enumerate(files) if name not in known]
    failed = {unknown[j]: reason for j, reason in
              check_files(root, [files[i] for i in unknown], workers).items()}
    skipped.update({files[i]: reason for i, reason in failed.items()})
    keep = [i for i in range(len(files)) if i not in failed]
    if not keep:
        listed = split.lower().endswith(".csv")  # a --train-csv / --val-csv list, not a folder
        fix = ("check its paths: relative to the list's folder, or absolute" if listed
               else f"the layout is {LAYOUT}")
        raise UserError(f"{root / split} {'lists' if listed else 'holds'} no readable images ({len(files)} files, "
                        f"e.g. {files[0]}: {skipped[files[0]]}): {fix}")
    lost = sorted(set(labels) - {labels[i] for i in keep})
    if lost:
        example = files[labels.index(lost[0])]
        raise UserError(f"class {classes[lost[0]]} of {root / split} has no readable image (e.g. {example}: "
                        f"{skipped[example]}): replace the files or remove them")
    return pick(files, labels, keep)


class FolderData(TrainingSet):
    """An image set streamed from disk; a ``--labels`` file replaces the listed labels. Beyond
    ``TrainingSet``: files / test_files (relative to root, or absolute), test_labels, workers (decoders)."""

    reads_files = True
    channels = 3
    true_labels = None  # the truth of web data is unknown

    def __init__(self, cfg: Config, device, listing: Listing | None = None):
        listing = listing or list_images(cfg)
        self.root = listing.root
        self.device = torch.device(device)
        self.workers = cfg.workers
        self.image_size = cfg.rescale_size
        self.crop_size = cfg.crop_size or 448
        if self.crop_size > self.image_size:
            raise UserError(f"--crop-size {self.crop_size} is larger than --rescale-size {self.image_size}: "
                            "lower --crop-size or raise --rescale-size")
        self.padding = cfg.padding or 0
        self.flip = True if cfg.flip is None else cfg.flip
        self.normalize = (IMAGENET_MEAN, IMAGENET_STD)
        self.noise = {}  # the labels are as given; nothing synthetic is added

        self.classes, self.skipped_files = listing.classes, listing.skipped
        self.num_classes = len(self.classes)
        files, labels = self.usable(listing.train_where, listing.files, listing.labels)
        test_files, test_labels = self.usable(listing.eval_where, listing.test_files, listing.test_labels)
        files, labels = pick(files, labels, subset_positions(len(files), cfg.train_subset, shuffled=True))
        self.full_size = len(files)
        self.left_out = listing.left_out
        self.unmatched_label_rows: list[str] = []
        if cfg.labels:  # matched by path, after the subset: the same files as a run without the file
            from_file = labelfile.read_by_path(cfg.labels, files, self.root, self.classes, cfg.label_key)
            kept = [i for i, y in enumerate(from_file.tolist()) if y != labelfile.LEFT_OUT]
            if not kept:
                raise UserError(f"{cfg.labels} gives no label to any training image of {self.root}: its paths "
                                "must be relative to that folder (as in verdicts.csv) or absolute")
            self.left_out += len(files) - len(kept)
            files, labels = pick(files, from_file.tolist(), kept)
            # Rows naming no file of the set (a typo, a moved image), not those cut by --train-subset
            # or unreadable: ignored, and said so.
            self.unmatched_label_rows = labelfile.unmatched_paths(cfg.labels, [*listing.files, *listing.skipped],
                                                                  self.root)
        self.files = files
        self.test_files, test_labels = pick(test_files, test_labels,
                                            subset_positions(len(test_files), cfg.test_subset, shuffled=True))
        self.labels = torch.tensor(labels, dtype=torch.long, device=self.device)
        self.test_labels = torch.tensor(test_labels, dtype=torch.long)
        self.failed_positions: set[int] = set()
        self.fingerprint()  # the files as the check above read them, before training reads them again

    def usable(self, where: str, files: list[str], labels: list[int]) -> tuple[list[str], list[int]]:
        """The files and labels of a split that decode (``readable``)."""
        return readable(self.root, where, files, labels, self.classes, self.workers, self.skipped_files)

    def __len__(self) -> int:
        return len(self.files)

    def epoch_batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> list:
        """Lists of positions: ``epoch_order`` cut into batches in one process; with several, a seeded
        DistributedSampler's share, batch_size // world a step, the same number of steps on every rank."""
        n_batches = self.num_batches(batch_size)
        if world == 1:
            order = self.epoch_order(epoch, seed).tolist()
            return [order[b * batch_size:(b + 1) * batch_size] for b in range(n_batches)]
        sampler = DistributedSampler(range(len(self)), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        order = list(sampler)
        per = max(1, min(batch_size // world, len(order)))
        return [order[b * per:(b + 1) * per] for b in range(min(n_batches, len(order) // per))]

    def decoded(self, files: list[str], order: list):
        """(positions, ok, uint8 images of the ok ones, {position: reason}) of each batch of ``order``."""
        return loader(ImageFiles(files, self.image_size, root=self.root), order, self.workers,
                      self.device.type == "cuda")

    def broke(self, reasons: dict[int, str]) -> None:
        """Record training files that failed to decode during training."""
        self.failed_positions.update(reasons)
        self.skipped_files.update({self.files[i]: r for i, r in reasons.items()})

    def batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        """A file that fails to decode (so changed since the check before training) goes to ``skipped_files``
        and ``failed_positions``, and a copy of the batch's first good sample takes its place: batch
        sizes stay fixed, as DDP's collectives need."""
        order = self.epoch_batches(epoch, batch_size, seed, rank, world)[start:]
        for index, ok, images, reasons in self.decoded(self.files, order):
            if reasons:
                self.broke(reasons)
                if not ok.any():
                    continue  # nothing left to train on (a whole batch broke mid-run)
                fill = torch.where(ok, ok.long().cumsum(0) - 1, 0)  # the good sample each slot takes
                index = index[ok][fill]
                images = images[fill]
            index = index.to(self.device, non_blocking=True)
            yield index, images.to(self.device, non_blocking=True), self.labels[index]

    def ordered_batches(self, batch_size: int):
        for index, ok, images, reasons in self.decoded(self.files, in_order(len(self), batch_size)):
            self.broke(reasons)
            if images.numel():
                yield index[ok].to(self.device), images.to(self.device, non_blocking=True)

    def test_batches(self, batch_size: int, rank: int = 0, world: int = 1):
        order = in_order(len(self.test_files), batch_size)[rank::world]
        for index, ok, images, reasons in self.decoded(self.test_files, order):
            self.skipped_files.update({self.test_files[i]: r for i, r in reasons.items()})
            if images.numel():
                yield images.to(self.device, non_blocking=True), self.test_labels[index[ok]].to(self.device)

    def sample_names(self) -> list[str]:
        return list(self.files)

    def content_check(self) -> torch.Tensor:
        return file_stats(self.root, self.files)
