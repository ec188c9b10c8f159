"""``comining inspect RUN_DIR``: what a run decided about its training images, per class (a table of
the final verdicts) and as pictures (a contact sheet of the images set aside), read through
comining/rundir.py.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from comining.errors import UserError
from comining.verdicts import VERDICTS
from comining.data.decode import check_regular
from comining.rundir import RunDir, check_output, read_run

THUMB = 96  # tile side in pixels
CAPTION = 14  # caption strip under each tile
LABEL_WIDTH = 170  # the row titles on the left


def quality_of(row: dict) -> float:
    """The row's label quality (0..1, higher = label more likely right); NaN where unknown."""
    try:
        return float(row["label_quality"])
    except (KeyError, TypeError, ValueError):
        return math.nan


def class_table(rows: list[dict], classes: list[str] | None = None) -> list[tuple]:
    """[(class, images, clean, relabelled, discarded)] per given class, in class order."""
    counts = Counter((r["given_label"], r["verdict"]) for r in rows)
    names = list(classes or []) + sorted({r["given_label"] for r in rows} - set(classes or []))
    table = []
    for name in names:
        per = [counts[(name, v)] for v in VERDICTS]
        if sum(per):
            table.append((name, sum(per), *per))
    return table


def format_table(table: list[tuple]) -> str:
    """The class table as aligned text, with a total line and the share set aside per class."""
    header = ("class", "images", "clean", "relabelled", "discarded", "set aside")
    total = ("all", *(sum(col) for col in list(zip(*table))[1:])) if table else ("all", 0, 0, 0, 0)
    lines = [(*r, f"{(r[3] + r[4]) / r[1]:.0%}" if r[1] else "-") for r in [*table, total]]
    width = max([len(header[0])] + [len(str(r[0])) for r in lines])
    fmt = f"{{:<{width}}}  {{:>6}}  {{:>5}}  {{:>10}}  {{:>9}}  {{:>9}}"
    out = [fmt.format(*header), "-" * (width + 51)]
    out += [fmt.format(*map(str, r)) for r in lines[:-1]] + ["-" * (width + 51), fmt.format(*map(str, lines[-1]))]
    return "\n".join(out)


# -- images ---------------------------------------------------------------------------------------

def read_thumbnail_source(path: Path):
    """An image file as RGB, decoded at a reduced size where the format allows (JPEG draft mode) but
    at least THUMB pixels a side; None when it cannot be read (moved or broken since training)."""
    try:
        check_regular(path)  # replaced by a FIFO since training: opening it would wait forever
        with Image.open(path) as img:
            img.draft("RGB", (THUMB, THUMB))
            return img.convert("RGB")
    except Exception:  # noqa: BLE001  any decoding failure means the same: show a blank tile
        return None


def image_source(data: dict, cfg: dict):
    """A function sample name → PIL image (or None when it cannot be shown).
    Image folders: the file under the data root. In-memory data sets: the training array of the
    data set named in config.json, where the sample name is the position in it."""
    if data.get("root"):
        root = Path(data["root"])
        return lambda name: read_thumbnail_source(root / name)

    images = training_arrays(cfg)
    if images is None:
        return lambda name: None

    def from_array(name: str):
        try:
            array = images[int(name)].numpy()
        except (ValueError, IndexError):
            return None
        array = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
        return Image.fromarray(np.ascontiguousarray(array)).convert("RGB")
    return from_array


def training_arrays(cfg: dict):
    """The uint8 N×C×H×W training images of the in-memory data set a run trained on (config.json as
    a dict), where verdicts.csv's sample name is the position; None when the data set is not found."""
    from comining.data import load_arrays  # the in-memory data sets are only loaded when needed
    try:
        images = load_arrays(cfg.get("dataset", "digits"), cfg.get("data_root")).train_images
    except UserError:
        return None
    return images[: cfg["train_subset"]] if cfg.get("train_subset") else images


def font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def sheet_rows(rows: list[dict], classes: list[str], per_row: int, max_classes: int) -> list[tuple]:
    """[(class, verdict, number with that verdict, [rows shown])]: discarded then relabelled per class,
    lowest label quality first; the ``max_classes`` classes with the most images set aside."""
    picked = {}
    for r in rows:
        if r["verdict"] in ("discarded", "relabelled"):
            picked.setdefault((r["given_label"], r["verdict"]), []).append(r)
    aside = Counter(r["given_label"] for members in picked.values() for r in members)
    order = [c for c in classes if aside[c]] + sorted(set(aside) - set(classes))
    keep = set(sorted(order, key=lambda c: -aside[c])[:max_classes])
    out = []
    for name in (c for c in order if c in keep):
        for verdict in ("discarded", "relabelled"):
            members = picked.get((name, verdict), [])
            if members:
                ranked = sorted(members, key=lambda r: quality_of(r) if not math.isnan(quality_of(r)) else math.inf)
                out.append((name, verdict, len(members), ranked[:per_row]))
    return out


def contact_sheet(rows: list[dict], classes: list[str], load_image, path: Path, per_row: int = 8,
                  max_classes: int = 50) -> int:
    """Draw the contact sheet PNG at ``path``; returns the number of image rows drawn."""
    lines = sheet_rows(rows, classes, per_row, max_classes)
    small, big = font(11), font(13)
    tile_h = THUMB + CAPTION
    width = LABEL_WIDTH + per_row * (THUMB + 4) + 4
    height = 28 + max(len(lines), 1) * (tile_h + 6)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 6), "most confidently set aside per class (lowest label quality first)", fill="black",
              font=big)
    if not lines:
        draw.text((6, 34), "nothing was discarded or relabelled", fill="black", font=big)
    for n, (name, verdict, count, members) in enumerate(lines):
        top = 28 + n * (tile_h + 6)
        colour = (170, 20, 20) if verdict == "discarded" else (20, 90, 170)
        draw.text((6, top + 4), _fit(name, 22), fill="black", font=big)
        draw.text((6, top + 22), f"{verdict} ({count})", fill=colour, font=small)
        for k, row in enumerate(members):
            left = LABEL_WIDTH + k * (THUMB + 4)
            img = load_image(row["sample"])
            if img is not None:
                img.thumbnail((THUMB, THUMB), Image.NEAREST if max(img.size) < THUMB // 2 else Image.BILINEAR)
                if max(img.size) < THUMB:  # tiny images (digits): enlarge so they can be seen
                    scale = THUMB / max(img.size)
                    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                                     Image.NEAREST)
                sheet.paste(img, (left + (THUMB - img.width) // 2, top + (THUMB - img.height) // 2))
            else:
                draw.rectangle([left, top, left + THUMB - 1, top + THUMB - 1], outline=(160, 160, 160))
                draw.text((left + 6, top + THUMB // 2 - 6), "not found", fill=(120, 120, 120), font=small)
            draw.rectangle([left, top, left + THUMB - 1, top + THUMB - 1], outline=colour)
            quality = quality_of(row)
            caption = ("" if math.isnan(quality) else f"q {quality:.2f}")
            if verdict == "relabelled" and row.get("suggested_label"):
                caption += f" ->{_fit(row['suggested_label'], 9)}"  # ASCII: the default font lacks →
            draw.text((left + 2, top + THUMB + 1), caption, fill=colour, font=small)
    sheet.save(path)
    return len(lines)


def _fit(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 2] + ".."


def inspect_run(run_dir, output=None, per_row: int = 8, max_classes: int = 50, force: bool = False) -> tuple[str, Path]:
    """(the printed summary, the contact sheet's path) of a run; the sheet defaults to RUN/contact_sheet.png,
    which inspect replaces freely; an ``output`` that exists is replaced only with ``force``."""
    if output:
        check_output(output, force, run_dir, flag="--output")
        from PIL import Image
        if Image.registered_extensions().get(Path(output).suffix.lower()) not in Image.SAVE:  # PIL can write it
            raise UserError(f"--output {output}: a contact sheet is an image; name it .png or .jpg")
    rows, data, cfg = read_run(run_dir)
    classes = data.get("classes") or []
    table = class_table(rows, classes)
    path = Path(output) if output else RunDir(run_dir).contact_sheet
    try:
        drawn = contact_sheet(rows, classes, image_source(data, cfg), path, per_row, max_classes)
    except OSError as err:
        raise UserError(f"cannot write the contact sheet {path} ({err.strerror or err}): "
                        "choose another --output") from None
    shown = {name for name, *_ in sheet_rows(rows, classes, per_row, max_classes)}
    aside = {r[0] for r in table if r[3] + r[4]}
    skipped = data.get("skipped_files")
    lines = [f"{run_dir}: {len(rows)} training images, {len(table)} classes"
             + (f", {skipped} unreadable file(s) skipped (skipped_files.txt)" if skipped else ""),
             format_table(table),
             f"contact sheet: {path} ({drawn} rows: the {per_row} most confidently discarded and relabelled "
             f"images per class" + (f"; {len(aside) - len(shown)} more classes left out, raise --max-classes"
                                    if len(aside) > len(shown) else "") + ")"]
    return "\n".join(lines), path
