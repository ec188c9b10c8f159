"""``--backbone frozen``: a training set of cached features instead of pixels.

A frozen network (comining/models/backbone.py) maps every training image, under a few views, to
features once; ``FeatureData`` holds them in memory ([N × V × D], float16 where the values fit, else
float32) and trains like any ``TrainingSet``: an epoch's batches yield each sample's V cached views
in place of its pixels, and ``FeatureViews`` picks one view of the kind a method asks for per sample
at random (torch's global generator, seeded by the run like the pixel views' crops). The views are
the un-augmented one (``test``, also the evaluation split's only view) and K = ``--feature-views``
random ones of each augmented kind the method trains on (``weak``, ``strong``).

The cache of those features on disk is ``comining.data.feature_cache``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from comining import hardware
from comining.config import Config
from comining.data.augment import Views
from comining.data.feature_cache import CHUNK, FeatureCache, digest, file_key
from comining.data.image_set import FolderData, is_folder_dataset, readable
from comining.data.in_memory import InMemoryData
from comining.data.listing import Listing, list_images
from comining.data.training_set import TrainingSet
from comining.errors import UserError
from comining.models.backbone import describe, features_of, load_backbone

EXTRACT_BATCH = 64  # images per forward pass of the backbone


class FeatureViews:
    """``Views`` for cached features: batches are [B × V × D] (every cached view of each sample);
    ``views(x, kind)`` returns [B × D] float, the un-augmented view for ``test``/``plain`` and one of
    the kind's K views, picked at random per sample, for ``weak``/``strong``. ``normalize`` is the
    backbone's input normalisation (what predict applies to images before the backbone)."""

    def __init__(self, layout: dict[str, tuple[int, int]], normalize):
        self.layout, self.normalize = layout, normalize

    def __call__(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        kind = "test" if kind == "plain" else kind
        if kind not in self.layout:
            raise ValueError(f"no cached view '{kind}'")
        first, count = self.layout[kind]
        if count == 1 or x.shape[1] == 1:
            return x[:, first].float()
        pick_ = torch.randint(0, count, (x.shape[0],), device=x.device)
        return x[torch.arange(x.shape[0], device=x.device), first + pick_].float()


class ImageSource(FolderData):
    """An image folder or CSV list chosen as FolderData chooses it, but where a file whose features are
    cached (``known`` finds its content key) counts as readable without decoding it; ``keys`` /
    ``test_keys`` are the files' content keys."""

    def __init__(self, cfg: Config, device, listing: Listing, known):
        self.known, self.key_of = known, {}
        super().__init__(cfg, device, listing)
        self.keys = [self.key_of[name] for name in self.files]
        self.test_keys = [self.key_of[name] for name in self.test_files]

    def usable(self, where: str, files: list[str], labels: list[int]) -> tuple[list[str], list[int]]:
        keys = {name: file_key(self.root / name) for name in files}
        self.key_of.update(keys)
        cached = self.known(list(keys.values()))
        return readable(self.root, where, files, labels, self.classes, self.workers, self.skipped_files,
                        known={name for name, key in keys.items() if key in cached})

    def pixel_batches(self, split: str, positions: list[int], device):
        """(positions [b], ok [b bool], uint8 images of the ok ones, {position: reason}) per batch."""
        batches = [positions[s:s + EXTRACT_BATCH] for s in range(0, len(positions), EXTRACT_BATCH)]
        for index, ok, images, reasons in self.decoded(self.files if split == "train" else self.test_files, batches):
            yield index, ok, images.to(device), reasons


class ArraySource(InMemoryData):
    """An in-memory data set with a content key per image (a hash of its pixels)."""

    def __init__(self, cfg: Config, device):
        from comining.data import load_arrays

        super().__init__(cfg, load_arrays(cfg.dataset, cfg.data_root), device)
        self.keys, self.test_keys = self.pixel_keys(self.images), self.pixel_keys(self.test_images)

    @staticmethod
    def pixel_keys(images: torch.Tensor) -> list[str]:
        prefix = f"{tuple(images.shape[1:])}".encode()
        return [digest(prefix + row.tobytes()) for row in images.cpu().numpy()]

    def pixel_batches(self, split: str, positions: list[int], device):
        source = self.images if split == "train" else self.test_images
        for start in range(0, len(positions), EXTRACT_BATCH):
            index = torch.tensor(positions[start:start + EXTRACT_BATCH], dtype=torch.long)
            yield index, torch.ones(len(index), dtype=torch.bool), source[index.to(source.device)].to(device), {}


def cached_views(view_kinds, per_kind: int) -> list[tuple[str, int]]:
    """(kind, views) cached per sample for a method's ``view_kinds``: the un-augmented test view once
    (plain is the test view), then ``per_kind`` (--feature-views) of each augmented kind."""
    augmented = [k for k in dict.fromkeys(view_kinds) if k not in ("plain", "test")]
    return [("test", 1)] + [(kind, per_kind) for kind in augmented]


def stack_views(rows: int, dim: int, kinds: list[tuple[str, int]], fetch) -> tuple[torch.Tensor, dict]:
    """([rows × V × D] every kind's ``count`` views in turn, {kind: (first view, count)}).

    ``fetch(kind, count, out)`` writes that kind's features into ``out``, the whole array's own
    [rows × count × D] slice, and returns it, or a float32 copy where float16 cannot hold them
    (the whole then becomes float32). Filled in place, so memory peaks at the whole plus what
    ``fetch`` holds at once (a cache chunk, or a batch being computed), not at the whole plus a kind."""
    images = torch.zeros(rows, sum(count for _, count in kinds), dim, dtype=torch.float16)
    layout, first = {}, 0
    for kind, count in kinds:
        layout[kind] = (first, count)
        part = fetch(kind, count, images[:, first:first + count])
        if part.dtype != images.dtype:
            images = images.to(part.dtype)
            images[:, first:first + count] = part
        first += count
    return images, layout


class FeatureData(TrainingSet):
    """The training set of a ``--backbone frozen`` run (see the module docstring).

    ``__init__`` lists the images and loads the backbone; ``prepare(view_kinds)`` (once the method is
    known) takes every view's features from the cache and computes the missing ones. Beyond
    ``TrainingSet``: ``backbone`` (data.json's record of it), ``feature_dim``, ``cache``, ``computed``
    and ``cached`` (images whose features were computed / found, both splits), ``layout`` ({kind:
    (first view, count)} of the V cached views).
    """

    def __init__(self, cfg: Config, device, precision: str = "fp32", progress: bool = True):
        self.cfg, self.device, self.precision, self.progress = cfg, torch.device(device), precision, progress
        self.cache = FeatureCache(cfg.cache_dir)
        files = is_folder_dataset(cfg.dataset)
        if files:
            listing = list_images(cfg)  # layout errors before any download of weights
            channels, self.crop = 3, cfg.crop_size or 448
        else:
            self.source = ArraySource(cfg, self.device)
            channels, self.crop = self.source.channels, self.source.crop_size
        self.backbone_net, self.backbone = load_backbone(cfg, channels, self.crop, progress)
        self.feature_dim = self.backbone["dim"]
        self.backbone_net.to(self.device)
        if files:
            test_folder = self.folder("test", 1)  # a file with cached features decoded before: no check
            with self.own_random_state():
                self.source = ImageSource(cfg, self.device, listing, lambda keys: self.cache.present(test_folder, keys))
        for name in ("reads_files", "root", "classes", "noise", "full_size", "left_out", "unmatched_label_rows",
                     "skipped_files",
                     "channels", "image_size", "crop_size", "padding", "flip", "normalize", "true_labels"):
            setattr(self, name, getattr(self.source, name))
        self.num_classes = len(self.classes)
        self.labels = self.source.labels.to(self.device)
        self.true_labels = None if self.true_labels is None else self.true_labels.to(self.device)
        self.test_labels = self.source.test_labels.to(self.device)
        self.failed_positions: set[int] = set()
        self.computed = self.cached = 0  # images with a view computed here; images found whole in the cache
        self.computed_rows: set[tuple[str, int]] = set()  # (split, position) of the images counted as computed
        self.layout: dict[str, tuple[int, int]] = {}
        self.fingerprint()

    def own_random_state(self):
        """A fork of torch's generators: what the cache holds must not change the run's random draws
        (even a DataLoader draws a seed from them), so a run repeats whether or not it computed features."""
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def folder(self, kind: str, count: int) -> Path:
        recipe = {"backbone": self.backbone["features_sha256"], "backbone_name": describe(self.backbone),
                  "kind": kind, "count": count, "channels": self.backbone["channels"],
                  "image_size": self.cfg.rescale_size if is_folder_dataset(self.cfg.dataset) else None,
                  "crop_size": self.crop, "padding": self.cfg.padding, "flip": self.cfg.flip,
                  "dataset_kind": "files" if is_folder_dataset(self.cfg.dataset) else self.cfg.dataset,
                  "precision": self.precision, "memory_format": "channels_last"}
        if self.backbone.get("stages", 1) != 1:  # so that caches written before stages were chosen stay found
            recipe.update(stages=self.backbone["stages"], dim=self.backbone["dim"])
        return self.cache.folder(recipe)

    def remembered(self, name: str, shape: tuple[int, ...], compute) -> np.ndarray:
        """``FeatureCache.remembered`` in the cache folder of these samples' un-augmented view."""
        return self.cache.remembered(self.folder("test", 1), name, shape, compute)

    # -- the features ----------------------------------------------------------------------------

    def prepare(self, view_kinds) -> None:
        """Every cached view of every sample, from the cache or computed: ``images`` [N × V × D] on the
        device (the test view, then K views of each augmented kind of ``view_kinds``), ``test_images``
        [M × 1 × D]."""
        with self.own_random_state():
            images, self.layout = stack_views(
                len(self), self.feature_dim, cached_views(view_kinds, self.cfg.feature_views),
                lambda kind, count, out: self.features("train", self.source.keys, kind, count, out))
            self.test_images = self.features("test", self.source.test_keys, "test", 1).to(self.device)
        # An image counts as computed where any of its views was: a run asking for more
        # --feature-views than the cache holds computes the new views of images it otherwise found.
        self.computed = len(self.computed_rows)
        self.cached = len(self.source.keys) + len(self.source.test_keys) - self.computed
        self.images = images.to(self.device)
        self.backbone_net.cpu()  # its work is done; the head trains alone

    def features(self, split: str, keys: list[str], kind: str, count: int, out: torch.Tensor | None = None):
        """[n × count × D] features of ``split``'s samples under ``kind``: found in the cache, or computed
        (and stored) for the missing ones. Written into ``out`` (float16 zeros by default) and returned,
        or returned as a float32 copy where the values need it."""
        folder = self.folder(kind, count)
        if out is None:
            out = torch.zeros(len(keys), count, self.feature_dim, dtype=torch.float16)
        out, filled = self.cache.fill(folder, keys, out)
        missing = [i for i in range(len(keys)) if i not in filled]
        if missing:  # the values as stored, so a run that computed them and one that found them agree
            computed = self.extract(split, missing, keys, kind, count, folder)
            if not torch.equal(computed.half().float(), computed):
                out = out.float()
            out[missing] = computed.to(out.dtype)
        self.computed_rows.update((split, i) for i in missing)
        return out

    @torch.no_grad()
    def extract(self, split: str, positions: list[int], keys: list[str], kind: str, count: int,
                folder: Path) -> torch.Tensor:
        """Features [len(positions) × count × D] of ``positions`` under ``kind`` (the views' random draws
        seeded by the samples' keys, apart from the run's own random state), stored in chunks."""
        views = Views(self.crop_size, self.padding, self.flip, self.normalize)
        out = torch.zeros(len(positions), count, self.feature_dim)
        row_of = {p: r for r, p in enumerate(positions)}
        pending: list[int] = []  # rows computed but not yet stored
        bar = tqdm(total=len(positions), desc=f"features ({kind}, {split})", unit="image", dynamic_ncols=True,
                   disable=not self.progress)
        for index, ok, images, reasons in self.source.pixel_batches(split, positions, self.device):
            self.broke(split, reasons)
            good = index[ok].tolist()
            if good:
                with self.own_random_state():
                    torch.manual_seed(int(keys[good[0]][:15], 16))
                    for v in range(count):
                        with hardware.autocast(self.device, self.precision):
                            feats = features_of(self.backbone_net, views(images, kind))
                        out[[row_of[p] for p in good], v] = feats.float().cpu()
                pending += [row_of[p] for p in good]
            if len(pending) >= CHUNK:
                out[pending] = self.store(folder, [keys[positions[r]] for r in pending], out[pending])
                pending = []
            bar.update(len(index))
        if pending:
            out[pending] = self.store(folder, [keys[positions[r]] for r in pending], out[pending])
        bar.close()
        return out

    def store(self, folder: Path, keys: list[str], features: torch.Tensor) -> torch.Tensor:
        """A chunk in float16 where every value fits it (finite after the cast), else float32; returns
        the values as stored (float32), which are what this run trains on too."""
        half = features.half()
        stored = half if torch.isfinite(half).all() else features
        self.cache.store(folder, keys, stored)
        return stored.float()

    def broke(self, split: str, reasons: dict[int, str]) -> None:
        """Files that passed the check but failed when their features were computed (changed in
        between): listed as skipped; training samples among them are left out of verdicts.csv."""
        if not reasons:  # in-memory images never break
            return
        files = self.source.files if split == "train" else self.source.test_files
        self.skipped_files.update({files[i]: reason for i, reason in reasons.items()})
        if split == "train":
            self.failed_positions.update(reasons)

    # -- TrainingSet ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.source.keys)

    def feature_views(self) -> FeatureViews:
        return FeatureViews(self.layout, self.normalize)

    def last_stage_plain(self) -> np.ndarray:
        """[N×D] float32: each training image's un-augmented view (its centre crop, the evaluation
        view), of the backbone's last stage only (its classifier's input) where several are cached."""
        first, _ = self.layout["test"]
        last = self.backbone.get("last_dim") or self.feature_dim
        return self.images[:, first, -last:].float().cpu().numpy()

    # Features held on the device are batched as InMemoryData batches its images: the same functions,
    # on ``images`` [N × V × D] and ``test_images`` [M × 1 × D].
    epoch_batches = InMemoryData.epoch_batches
    batches = InMemoryData.batches
    ordered_batches = InMemoryData.ordered_batches
    test_batches = InMemoryData.test_batches

    def sample_names(self):
        return self.source.sample_names()

    def content_check(self):
        return self.source.fingerprint()["content"]  # an image set took it as it chose its files: not again

    def fingerprint(self) -> dict:
        """The source's fingerprint and the backbone's SHA-256: a resumed run needs both unchanged."""
        return {**super().fingerprint(), "backbone": self.backbone["sha256"]}

    def summary(self) -> dict:
        """results.json's ``backbone``: what computed the features, and how many came from the cache."""
        return {"mode": "frozen", "backbone": describe(self.backbone), "head": self.cfg.head,
                "random_features": self.backbone["kind"] == "arch" and self.backbone["weights"].lower() == "none",
                "feature_views": self.cfg.feature_views, "computed": self.computed, "cached": self.cached,
                "cache_dir": str(self.cache.root)}


def check_same_backbone(checkpoint: Path, then: dict | None, data: FeatureData) -> None:
    """UserError, one line, where the backbone changed since the checkpoint's run computed its features."""
    recorded = (then or {}).get("backbone")
    if recorded is not None and recorded != data.backbone["sha256"]:
        raise UserError(f"{checkpoint} was trained on the features of another backbone ({describe(data.backbone)} "
                        "differs from the one the run used): put its weights back, or start a new run")
