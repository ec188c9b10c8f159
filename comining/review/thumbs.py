"""Thumbnails of every training sample for the review page, as sprite sheets beside the page.

A sheet holds SIDE × SIDE cells; cell ``slot`` of the whole sequence is sheet ``slot // SIDE²``,
row ``(slot % SIDE²) // SIDE``, column ``slot % SIDE``. The page shows a thumbnail as that cell of
the sheet's image, so the browser fetches a sheet only when a card on it is on screen, and one
file serves SIDE² cards. The caller orders the slots most-suspect first, so the page's default view
needs only the first sheets.

In-memory data sets are cut from their arrays at their own size (8, 28 or 32 pixels, enlarged by
the page); image files are read with Pillow and fitted into 96-pixel cells.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from comining.verdicts_view import read_thumbnail_source


SIDE = 16  # cells per sheet side: 256 thumbnails per file
FILE_CELL = 96  # cell side for images read from files
BACKGROUND = 238  # light grey around letterboxed photos and in empty cells


def _save(sheet: Image.Image, path: Path) -> None:
    # Written in place, not atomically: a sheet is rebuilt by every `comining review`, and speed
    # matters here (fast PNG compression; PNG sizes differ little for such small images).
    if path.suffix == ".jpg":
        sheet.save(path, "JPEG", quality=85)
    else:
        sheet.save(path, "PNG", compress_level=1)


def _clear(folder: Path) -> None:
    """Remove the sheets of an earlier build (their number and order may differ now)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("sheet-*"):
        old.unlink()


def sheet_name(number: int, ext: str) -> str:
    return f"sheet-{number:05d}{ext}"


def array_sheets(images, order: list[int], folder: Path) -> dict:
    """Write the sheets of the uint8 N×C×H×W ``images`` (a tensor or array) taken in ``order``
    (slot → image index) into ``folder``; returns the page's description of them."""
    images = np.asarray(images)
    _, channels, height, width = images.shape
    _clear(folder)
    per = SIDE * SIDE
    order = np.asarray(order, dtype=np.int64)
    for number in range(math.ceil(len(order) / per)):
        chunk = images[order[number * per:(number + 1) * per]]
        rows = math.ceil(len(chunk) / SIDE)
        padded = np.zeros((rows * SIDE, channels, height, width), dtype=np.uint8)
        padded[:len(chunk)] = chunk
        # (rows, SIDE, C, H, W) → (rows, H, SIDE, W, C): one image of rows·H × SIDE·W pixels
        grid = padded.reshape(rows, SIDE, channels, height, width).transpose(0, 3, 1, 4, 2)
        grid = grid.reshape(rows * height, SIDE * width, channels)
        sheet = Image.fromarray(grid[:, :, 0] if channels == 1 else grid)
        _save(sheet, folder / sheet_name(number, ".png"))
    return {"ext": ".png", "side": SIDE, "cell_w": width, "cell_h": height, "missing": []}


def _file_sheet(job: tuple) -> list[int]:
    """Draw one sheet of image files; returns the cells whose file could not be read."""
    root, names, path = job
    rows = math.ceil(len(names) / SIDE)
    sheet = Image.new("RGB", (SIDE * FILE_CELL, rows * FILE_CELL), (BACKGROUND,) * 3)
    missing = []
    for k, name in enumerate(names):
        image = read_thumbnail_source(Path(root) / name)
        if image is None:
            missing.append(k)
            continue
        image.thumbnail((FILE_CELL, FILE_CELL), Image.BILINEAR)
        left = (k % SIDE) * FILE_CELL + (FILE_CELL - image.width) // 2
        top = (k // SIDE) * FILE_CELL + (FILE_CELL - image.height) // 2
        sheet.paste(image, (left, top))
    _save(sheet, path)
    return missing


def file_sheets(root: Path, names: list[str], folder: Path, workers: int = 0) -> dict:
    """Write the sheets of the image files ``names`` (relative to ``root``, in slot order) into
    ``folder``, decoding in ``workers`` processes (0: in this one); returns the page's description,
    with the slots whose file could not be read under ``missing``."""
    _clear(folder)
    per = SIDE * SIDE
    jobs = [(str(root), names[start:start + per], folder / sheet_name(start // per, ".jpg"))
            for start in range(0, len(names), per)]
    if workers > 0 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            results = list(pool.map(_file_sheet, jobs))
    else:
        results = [_file_sheet(job) for job in jobs]
    missing = [number * per + k for number, cells in enumerate(results) for k in cells]
    return {"ext": ".jpg", "side": SIDE, "cell_w": FILE_CELL, "cell_h": FILE_CELL, "missing": missing}
