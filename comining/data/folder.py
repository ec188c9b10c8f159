"""Image sets streamed from disk: folders (Web-Bird/Car/Aircraft and any ``train/<class>/…`` tree)
and, through the same machinery, images listed in CSV files (comining/data/image_list.py).

Layout (docs/DATA.md): ``ROOT/train/<class>/**/<image>`` and an evaluation split ``ROOT/val`` (or
``tval``, ``test``) with class folders named as in ``train``. Classes are the sorted names of the
training class folders. Every file is checked once before training; files that cannot be decoded
are skipped and listed (``skipped``). During training, worker processes decode and resize the
images (PIL) to ``--rescale-size``² uint8 tensors; crops, flips and AutoAugment then happen on the
device in ``Views``, as for in-memory data.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from comining import labelfile
from comining.config import FOLDER_DATASETS, Config
from comining.data.augment import IMAGENET_MEAN, IMAGENET_STD
from comining.errors import UserError

EVAL_SPLITS = ("val", "tval", "test")
DEFAULT_ROOT = "datasets"
LAYOUT = "train/<class>/<image> and val/<class>/<image>"


def is_folder_dataset(name: str) -> bool:
    return name in FOLDER_DATASETS


# -- decoding (runs in DataLoader workers) ------------------------------------------------------

def decode(path, size: int | None, mode: str = "RGB") -> torch.Tensor | None:
    """The image at ``path`` as a uint8 tensor [C×size×size] (squashed to a square, as the paper's
    Resize((512, 512))); ``size=None`` only checks that the whole file decodes and returns None.

    Raises whatever PIL raises for an unreadable, truncated or non-image file.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EXIF and palette warnings of web images are noise, not errors
        with Image.open(path) as img:
            # JPEG: decode at 1/2, 1/4 or 1/8 scale when that is still at least the target size;
            # a check decodes at the smallest scale, which still reads the whole stream.
            img.draft(mode, (size, size) if size else (1, 1))
            if img.mode == "P" and "transparency" in img.info:
                img = img.convert("RGBA")
            img = img.convert(mode)
            if size is None:
                return None
            img = img.resize((size, size), Image.BILINEAR)
    array = np.asarray(img, dtype=np.uint8).reshape(size, size, -1)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def describe(err: Exception) -> str:
    """A one-line reason for skipped_files.txt / predictions.csv, without the file's path."""
    if isinstance(err, UnidentifiedImageError):
        return "not an image PIL can read"
    text = " ".join(str(err).split()) or type(err).__name__
    if "'" in text and ("/" in text or "\\" in text):  # PIL quotes the path in some messages
        text = text.split("'")[0].strip() or type(err).__name__
    return f"{type(err).__name__}: {text}"[:160]


class ImageFiles(Dataset):
    """Files decoded in worker processes: item i → (i, uint8 [C×S×S] tensor or None, reason).

    A failure returns the marker None with its reason instead of raising, so one bad file never
    kills a worker (and with it the run); the main process drops it from its batch.
    ``size=None`` checks the files without resizing (items are (i, None, reason or "")).
    """

    def __init__(self, files: list, size: int | None, mode: str = "RGB", root: Path | None = None):
        self.files, self.size, self.mode, self.root = files, size, mode, root

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        path = self.root / self.files[i] if self.root is not None else self.files[i]
        try:
            return i, decode(path, self.size, self.mode), ""
        except Exception as err:  # noqa: BLE001  any decoder error means: skip this file
            return i, None, describe(err)


def collate(items):
    """(index [B long], ok [B bool], images of the ok items [b×C×S×S uint8], {index: reason})."""
    index = torch.tensor([i for i, _, _ in items], dtype=torch.long)
    ok = torch.tensor([x is not None for _, x, _ in items], dtype=torch.bool)
    images = [x for _, x, _ in items if x is not None]
    images = torch.stack(images) if images else torch.empty(0, dtype=torch.uint8)
    return index, ok, images, {i: reason for i, x, reason in items if x is None and reason}


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def loader(dataset: ImageFiles, batches: list, workers: int, pin: bool = False) -> DataLoader:
    """Batches of ``dataset`` in the given order (lists of indices), decoded by ``workers`` processes
    (at most one per usable CPU: decoding is CPU-bound, more would only compete with training)."""
    workers = min(workers, usable_cpus())
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate,
                      pin_memory=pin, prefetch_factor=4 if workers else None)


def check_files(root: Path, files: list[str], workers: int) -> dict[int, str]:
    """{position: reason} of the files that do not decode completely (read in ``workers`` processes)."""
    dataset = ImageFiles(files, None, root=root)
    chunks = [list(range(s, min(s + 64, len(files)))) for s in range(0, len(files), 64)]
    failed = {}
    for _, _, _, reasons in loader(dataset, chunks, workers if len(files) > 64 else 0):
        failed.update(reasons)
    return failed


# -- the layout ---------------------------------------------------------------------------------

def locate_root(cfg: Config) -> Path:
    """The folder holding train/ and the evaluation split, from --dataset and --data-root."""
    if cfg.dataset == "folder":
        if not cfg.data_root:
            raise UserError(f"--dataset folder needs --data-root DIR, a folder holding {LAYOUT}")
        root = Path(cfg.data_root)
        if not root.is_dir():
            raise UserError(f"data folder {root} not found: check the path given to --data-root")
        return root
    base = Path(cfg.data_root or DEFAULT_ROOT)
    for cand in (base / cfg.dataset, base):
        if (cand / "train").is_dir():
            return cand
    raise UserError(f"{cfg.dataset} not found: expected {base / cfg.dataset}/{LAYOUT.replace(' and ', ' and .../')}; "
                    "unpack the data set there or pass --data-root")


def visible_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (recursively, following links), hidden files and folders left out."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def scan_split(root: Path, split: str, classes: list[str] | None = None):
    """(class names, files relative to root, labels, {loose file: reason}) of one split.

    ``classes`` None: the split defines them (its sorted sub-folders). Otherwise every class folder
    of the split must be one of them. An empty class folder or a split without any is a UserError.
    """
    folder = root / split
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise UserError(f"{folder} holds no class folders: the layout is {LAYOUT}")
    if classes is not None:
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise UserError(f"class folder{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:3])} in {folder} "
                            f"{'have' if len(unknown) > 1 else 'has'} no counterpart in {root / 'train'}: "
                            "rename to a training class or remove")
    classes = names if classes is None else classes
    files, labels = [], []
    for name in names:
        found = visible_files(folder / name)
        if not found:
            raise UserError(f"class folder {folder / name} is empty: add its images or remove the folder")
        files += [p.relative_to(root).as_posix() for p in found]
        labels += [classes.index(name)] * len(found)
    loose = {p.relative_to(root).as_posix(): "not inside a class folder"
             for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
    return classes, files, labels, loose


def readable(root: Path, split: str, files: list[str], labels: list[int], classes: list[str],
             workers: int, skipped: dict) -> tuple[list[str], list[int]]:
    """The files of a split that decode, recording the others in ``skipped``; every class of the
    split must keep at least one image, and the split must keep some."""
    failed = check_files(root, files, workers)
    for i, reason in failed.items():
        skipped[files[i]] = reason
    keep = [i for i in range(len(files)) if i not in failed]
    if not keep:
        raise UserError(f"{root / split} holds no readable images ({len(files)} files, e.g. {files[0]}: "
                        f"{skipped[files[0]]}): the layout is {LAYOUT}")
    before, after = set(labels), {labels[i] for i in keep}
    for c in sorted(before - after):
        example = next(f for i, f in enumerate(files) if labels[i] == c)
        raise UserError(f"class {classes[c]} of {root / split} has no readable image (e.g. {example}: "
                        f"{skipped[example]}): replace the files or remove them")
    return [files[i] for i in keep], [labels[i] for i in keep]


def subset(files: list[str], labels: list[int], n: int | None):
    """A fixed random ``n`` of the files (all if None), in folder order: the first n would be a few classes."""
    if not n or n >= len(files):
        return files, labels
    keep = sorted(np.random.RandomState(0).permutation(len(files))[:n])
    return [files[i] for i in keep], [labels[i] for i in keep]


@dataclass
class Listing:
    """What a layout names before any file is read: the root that relative paths start from, the
    classes, each split's files and labels, how messages name the splits, files found outside any
    class (skipped) and training images the layout itself leaves out (an empty label in a CSV)."""

    root: Path
    classes: list[str]
    files: list[str]
    labels: list[int]
    test_files: list[str]
    test_labels: list[int]
    train_where: str = "train"
    eval_where: str = "val"
    skipped: dict = field(default_factory=dict)
    left_out: int = 0


def list_folder(cfg: Config) -> Listing:
    """The Listing of an image folder (``train/<class>/…`` and an evaluation split)."""
    root = locate_root(cfg)
    if not (root / "train").is_dir():
        raise UserError(f"no train/ folder in {root}: the layout is {LAYOUT}")
    split = next((s for s in EVAL_SPLITS if (root / s).is_dir()), None)
    if split is None:
        raise UserError(f"no evaluation split in {root}: add val/<class>/<image> (or tval/, test/) "
                        "with a few correctly labelled images per class")
    # Both splits' layouts first: a layout error should not wait for the readability checks.
    classes, files, labels, skipped = scan_split(root, "train")
    _, test_files, test_labels, loose = scan_split(root, split, classes)
    return Listing(root, classes, files, labels, test_files, test_labels, eval_where=split,
                   skipped={**skipped, **loose})


# -- the training set ---------------------------------------------------------------------------

class FolderData:
    """A training set read from an image folder, with the interface of ``InMemoryData``.

    The files come from an image folder or, for ``--dataset csv``, from CSV lists (Listing); a
    ``--labels`` file then replaces their labels. Attributes: root, classes, num_classes, labels
    (given labels, long on the device), true_labels (None: the truth of web data is unknown),
    files / test_files (paths relative to root, or absolute), skipped ({path: reason}, files left out
    as unreadable), left_out (training images left out by an empty or -1 label, or not listed by the
    label file), eval_split, and the view settings channels / image_size (--rescale-size) / crop_size
    / padding / flip / normalize.
    """

    channels = 3
    true_labels = None

    def __init__(self, cfg: Config, device, workers: int | None = None):
        if cfg.dataset == "csv":
            from comining.data.image_list import list_csv  # it builds on this module's Listing
            listing = list_csv(cfg)
        else:
            listing = list_folder(cfg)
        self.root, self.eval_split = listing.root, listing.eval_where
        self.device = torch.device(device)
        self.workers = cfg.workers if workers is None else workers
        self.image_size = cfg.rescale_size
        self.crop_size = cfg.crop_size or 448
        if self.crop_size > self.image_size:
            raise UserError(f"--crop-size {self.crop_size} is larger than --rescale-size {self.image_size}: "
                            "lower --crop-size or raise --rescale-size")
        self.padding = cfg.padding or 0
        self.flip = True if cfg.flip is None else cfg.flip
        self.normalize = (IMAGENET_MEAN, IMAGENET_STD)
        self.noise = {}  # the labels are as given; nothing synthetic is added

        self.classes, self.skipped = listing.classes, listing.skipped
        self.num_classes = len(self.classes)
        files, labels = readable(self.root, listing.train_where, listing.files, listing.labels, self.classes,
                                 self.workers, self.skipped)
        test_files, test_labels = readable(self.root, listing.eval_where, listing.test_files, listing.test_labels,
                                           self.classes, self.workers, self.skipped)
        files, labels = subset(files, labels, cfg.train_subset)
        self.full_size = len(files)
        self.left_out = listing.left_out
        if cfg.labels:  # matched by path, after the subset: the same files as a run without the file
            from_file = labelfile.read_by_path(cfg.labels, files, self.root, self.classes, cfg.label_key)
            kept = [i for i, y in enumerate(from_file.tolist()) if y != labelfile.LEFT_OUT]
            if not kept:
                raise UserError(f"{cfg.labels} gives no label to any training image of {self.root}: its paths "
                                "must be relative to that folder (as in verdicts.csv) or absolute")
            self.left_out += len(files) - len(kept)
            files, labels = [files[i] for i in kept], [int(from_file[i]) for i in kept]
        self.files = files
        self.test_files, test_labels = subset(test_files, test_labels, cfg.test_subset)
        self.labels = torch.tensor(labels, dtype=torch.long, device=self.device)
        self.test_labels = torch.tensor(test_labels, dtype=torch.long)
        self.failed: set[int] = set()  # training positions whose decoding failed during training

    def __len__(self) -> int:
        return len(self.files)

    def num_batches(self, batch_size: int) -> int:
        return max(1, len(self) // batch_size)

    def epoch_batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> list:
        """This rank's batches of training positions for an epoch, the last incomplete one dropped.

        One process: a permutation seeded by (seed, epoch), as InMemoryData, so runs repeat. Several:
        DistributedSampler (seeded, ``set_epoch``), each rank taking batch_size // world per step and
        every rank the same number of steps.
        """
        n_batches = self.num_batches(batch_size)
        if world == 1:
            generator = torch.Generator().manual_seed(seed * 100003 + epoch)
            order = torch.randperm(len(self), generator=generator).tolist()
            return [order[b * batch_size:(b + 1) * batch_size] for b in range(n_batches)]
        sampler = DistributedSampler(range(len(self)), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        order = list(sampler)
        per = max(1, min(batch_size // world, len(order)))
        return [order[b * per:(b + 1) * per] for b in range(min(n_batches, len(order) // per))]

    def batches(self, epoch: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        """Yield (index, images, labels) on the device: positions, uint8 [B×3×R×R], given labels,
        for the epoch's batches from ``start`` on (a resumed epoch skips the ones it has done).

        A file that fails to decode (every file decoded once before training, so only one that changed
        on disk since) is added to ``skipped`` and its place in the batch taken by a copy of the
        batch's first good sample: batch sizes stay fixed, which DDP's collectives rely on.
        """
        dataset = ImageFiles(self.files, self.image_size, root=self.root)
        order = self.epoch_batches(epoch, batch_size, seed, rank, world)[start:]
        for index, ok, images, reasons in loader(dataset, order, self.workers, self.device.type == "cuda"):
            if reasons:
                self.failed.update(reasons)
                self.skipped.update({self.files[i]: r for i, r in reasons.items()})
                if not ok.any():
                    continue  # nothing left to train on (a whole batch broke mid-run)
                fill = torch.cumsum(ok.long(), 0).clamp(min=1) - 1  # the good sample each slot takes
                fill[~ok] = 0
                index = index[ok][fill]
                images = images[fill]
            index = index.to(self.device, non_blocking=True)
            yield index, images.to(self.device, non_blocking=True), self.labels[index]

    def ordered_batches(self, batch_size: int):
        """Yield (index, uint8 images) of the readable training images in order (the final verdicts' pass)."""
        dataset = ImageFiles(self.files, self.image_size, root=self.root)
        order = [list(range(s, min(s + batch_size, len(dataset)))) for s in range(0, len(dataset), batch_size)]
        for index, ok, images, reasons in loader(dataset, order, self.workers, self.device.type == "cuda"):
            self.failed.update(reasons)
            self.skipped.update({self.files[i]: r for i, r in reasons.items()})
            if images.numel():
                yield index[ok].to(self.device), images.to(self.device, non_blocking=True)

    def test_batches(self, batch_size: int, rank: int = 0, world: int = 1):
        """Yield (uint8 images, labels) of the evaluation split on the device (every world-th batch)."""
        dataset = ImageFiles(self.test_files, self.image_size, root=self.root)
        order = [list(range(s, min(s + batch_size, len(dataset)))) for s in range(0, len(dataset), batch_size)]
        order = order[rank::world]
        for index, ok, images, reasons in loader(dataset, order, self.workers, self.device.type == "cuda"):
            self.skipped.update({self.test_files[i]: r for i, r in reasons.items()})
            if images.numel():
                yield images.to(self.device, non_blocking=True), self.test_labels[index[ok]].to(self.device)

    def sample_names(self) -> list[str]:
        """How verdicts.csv names each training sample: its path relative to the data root."""
        return list(self.files)
