"""Reading image files without letting a bad one stop a run: decoding, and the worker processes that
decode batches of files. A file that does not decode comes back as None with a one-line reason, never
as an exception that would kill a DataLoader worker (and the run); callers skip, list or replace it.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset


SPECIAL_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
                 stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


class NotRegularFile(OSError):
    """A path to something other than a regular file, refused before anything opens it (opening a FIFO
    or a device waits for a writer that never comes)."""


def check_regular(path) -> None:
    """NotRegularFile, naming the kind, where ``path`` (links followed) is not a regular file. A path that
    cannot be examined passes: opening it then says why it cannot be read."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not stat.S_ISREG(mode):
        raise NotRegularFile(f"not a regular file ({SPECIAL_KINDS.get(stat.S_IFMT(mode), 'a special file')})")


def decode(path, size: int | None, mode: str = "RGB") -> torch.Tensor | None:
    """The image at ``path`` as a uint8 tensor [C×size×size] (squashed to a square, as the paper's
    Resize((512, 512))); ``size=None`` only checks that the whole file decodes and returns None. Raises
    NotRegularFile (nothing opened) or whatever PIL raises for an unreadable or non-image file."""
    check_regular(path)
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
    if isinstance(err, NotRegularFile):
        return str(err)
    if isinstance(err, OSError) and err.strerror:  # its str() ends with the path, which the caller names
        return f"{type(err).__name__}: {err.strerror}"
    text = " ".join(str(err).split()) or type(err).__name__
    if "'" in text and ("/" in text or "\\" in text):  # PIL quotes the path in some messages
        text = text.split("'")[0].strip() or type(err).__name__
    return f"{type(err).__name__}: {text}"[:160]


class ImageFiles(Dataset):
    """Files (relative to ``root`` when given) decoded in worker processes: item i is (i, uint8 [C×S×S]
    tensor, ""), or (i, None, reason) for a file that fails; ``size=None`` only checks ((i, None, "") if good)."""

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


# A scheduler, `timeout` or Ctrl-C signal the whole process group. The main process then stops after
# its step and saves a checkpoint; a decoding worker killed under it would turn that into a traceback.
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def leave_stop_signals_to_the_main_process(_worker_id: int) -> None:
    """A decoding worker, started with the stop signals blocked (``SignalSafeLoader``), leaves the
    process group, so later group signals miss it, and drops one that reached it meanwhile (setting a
    pending signal to be ignored discards it). Its loader can still end it with SIGTERM, and it ends
    itself when the main process is gone."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class SignalSafeLoader(DataLoader):
    """A DataLoader whose workers are forked with the stop signals blocked: a group signal that comes
    before a worker has left the group waits, and the worker drops it. The main thread's own signals
    wait only while it forks, then reach its handler."""

    def __iter__(self):
        if not self.num_workers or threading.current_thread() is not threading.main_thread():
            return super().__iter__()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return super().__iter__()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def loader(dataset: ImageFiles, batches: list, workers: int, pin: bool = False) -> DataLoader:
    """Batches of ``dataset`` in the given order (lists of indices), decoded by ``workers`` processes
    (at most one per usable CPU: decoding is CPU-bound, more would only compete with training)."""
    workers = min(workers, usable_cpus())
    return SignalSafeLoader(dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate,
                            pin_memory=pin, prefetch_factor=4 if workers else None,
                            worker_init_fn=leave_stop_signals_to_the_main_process if workers else None)


def in_order(size: int, batch_size: int) -> list[list[int]]:
    """Positions 0..size-1 in consecutive batches of ``batch_size`` (the last one may be shorter)."""
    return [list(range(s, min(s + batch_size, size))) for s in range(0, size, batch_size)]


def check_files(root: Path, files: list[str], workers: int) -> dict[int, str]:
    """{position: reason} of the files that do not decode completely (read in ``workers`` processes)."""
    batches = loader(ImageFiles(files, None, root=root), in_order(len(files), 64), workers if len(files) > 64 else 0)
    return {i: reason for *_, reasons in batches for i, reason in reasons.items()}
