"""The feature cache of ``--backbone frozen`` on disk (``FeatureCache``, under ``--cache-dir``).

One folder per recipe, a hash of the SHA-256 of the weights the features depend on, the stages and
their width (``--feature-stages`` other than 1), the image geometry, the view kind and K and the
precision, holding chunk files of (sample keys, features). A sample's key is a hash of its content
(an image file's bytes, an in-memory image's pixels), so a changed file is computed again and never
served stale, a renamed or copied one is not, and any run on the same images with the same
backbone (``--resume``, another method, another seed) finds them. Chunks are written to a temporary
file and renamed (``os.replace``), so runs and ranks sharing a cache never see half a chunk; two
that compute the same images write the same chunk. Beside the un-augmented view's chunks the cache
keeps the noise-rate probe's out-of-fold probabilities (``remembered``), named by a hash of the
features, labels and seed they came from.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from comining.data.decode import check_regular
from comining.errors import UserError
from comining.rundir import atomic_json, atomic_torch_save, atomic_write

FORMAT = 1  # of the cache's chunks; part of every recipe's key
RECIPE_NAME_LENGTH = 24  # hex digits of a recipe's digest that name its folder
CHUNK = 4096  # samples per chunk file: an interrupted extraction keeps what it wrote
UNREADABLE = ""  # the key of a file that cannot be read (never in the cache)


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/comining/features, or ~/.cache/comining/features."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "comining" / "features"


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def file_key(path: Path) -> str:
    """A hash of the file's bytes; UNREADABLE for something that is not a regular file or cannot be read
    (a FIFO is never opened)."""
    try:
        check_regular(path)
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=20)).hexdigest()
    except (OSError, ValueError):
        return UNREADABLE


class FeatureCache:
    """The feature cache in ``root``: recipe folders of chunk files (see the module docstring)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def folder(self, recipe: dict) -> Path:
        """The folder of ``recipe`` (created, with recipe.json describing it)."""
        folder = self.root / digest(json.dumps({**recipe, "format": FORMAT}, sort_keys=True).encode())[:RECIPE_NAME_LENGTH]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / "recipe.json").is_file():
                atomic_json(folder / "recipe.json", recipe)
        except OSError as err:
            raise UserError(f"cannot write the feature cache {self.root} ({err.strerror or err}): pass a "
                            "writable --cache-dir") from None
        return folder

    @staticmethod
    def chunks(folder: Path) -> list[Path]:
        return sorted(p for p in folder.glob("*.pt") if not p.name.startswith("."))

    def entries(self, folder: Path):
        """(keys, features [n × count × D], memory-mapped) of every readable chunk in ``folder``; a chunk
        that cannot be read (damaged by hand, or by a disk that filled) is passed over, so its samples
        are computed again."""
        for path in self.chunks(folder):
            try:
                chunk = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                keys, features = chunk["keys"], chunk["features"]
            except Exception:  # noqa: BLE001  a damaged chunk only costs its recomputation
                continue
            if isinstance(keys, list) and isinstance(features, torch.Tensor) and features.shape[0] == len(keys):
                yield keys, features

    def present(self, folder: Path, keys: list[str]) -> set[str]:
        """The ``keys`` that ``folder`` holds features of."""
        wanted = set(keys) - {UNREADABLE}
        return {key for chunk_keys, _ in self.entries(folder) for key in chunk_keys if key in wanted}

    def fill(self, folder: Path, keys: list[str], out: torch.Tensor) -> tuple[torch.Tensor, set[int]]:
        """(``out`` with the cached features of ``keys`` written into their rows, the rows filled).
        ``out`` [n × count × D] becomes float32 where a chunk is (values float16 cannot hold)."""
        rows_of: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key != UNREADABLE:
                rows_of.setdefault(key, []).append(i)
        filled: set[int] = set()
        for chunk_keys, features in self.entries(folder):
            source, target = [], []
            for row, key in enumerate(chunk_keys):
                if key in rows_of:
                    rows = rows_of.pop(key)
                    source += [row] * len(rows)
                    target += rows
            if target:
                if features.dtype != out.dtype:
                    out = out.float()
                out[target] = features[source].to(out.dtype)
                filled.update(target)
            if not rows_of:
                break
        return out, filled

    def remembered(self, folder: Path, name: str, shape: tuple[int, ...], compute) -> np.ndarray:
        """The array ``name`` stored in ``folder`` by an earlier run, or ``compute()`` stored there now.
        ``name`` must be a hash of everything the array depends on (``probe.result_key``); a stored file
        that cannot be read or has another ``shape`` is computed again. A cache that cannot be written
        to only costs the next run the computation."""
        path = folder / f"{name}.npy"
        try:
            array = np.load(path, allow_pickle=False)
            if array.shape == shape:
                return array
        except Exception:  # noqa: BLE001  missing, empty or damaged: only costs the computation
            pass
        array = compute()
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        with contextlib.suppress(OSError):
            atomic_write(path, buffer.getvalue())
        return array

    def store(self, folder: Path, keys: list[str], features: torch.Tensor) -> None:
        """One chunk, named by its keys (two writers of the same samples write the same name)."""
        atomic_torch_save(folder / f"{digest(''.join(keys).encode())}.pt",
                          {"keys": list(keys), "features": features.cpu().contiguous()})

    def recipe_folders(self) -> list[Path]:
        """The folders of the cache that ``folder`` made: each named by a recipe's digest, holding its
        recipe.json. Anything else under the root is not the cache's, and is neither counted nor cleared."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if len(p.name) == RECIPE_NAME_LENGTH and p.is_dir()
                      and all(c in "0123456789abcdef" for c in p.name) and (p / "recipe.json").is_file())

    def foreign_entries(self) -> int:
        """How many entries of the root are not recipe folders (``recipe_folders``)."""
        return sum(1 for _ in self.root.iterdir()) - len(self.recipe_folders()) if self.root.is_dir() else 0

    def usage(self) -> list[dict]:
        """One dict per recipe folder: its recipe.json, chunks, samples and bytes on disk."""
        out = []
        for folder in self.recipe_folders():
            try:
                recipe = json.loads((folder / "recipe.json").read_text())
            except (OSError, ValueError):
                recipe = {}
            out.append({"folder": folder, "recipe": recipe, "chunks": len(self.chunks(folder)),
                        "samples": sum(len(keys) for keys, _ in self.entries(folder)), "bytes": size(folder)})
        return out

    def clear(self) -> int:
        """Remove every recipe folder (``recipe_folders``), nothing else; returns the bytes freed."""
        folders = self.recipe_folders()
        freed = sum(size(folder) for folder in folders)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        return freed


def size(folder: Path) -> int:
    """Bytes on disk of the files under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
