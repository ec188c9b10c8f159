"""``comining predict --run RUN_DIR PATH...``: classify image files with a trained run's checkpoint.

The run's networks are rebuilt from config.json / data.json and checkpoint.pt (weights-only), and
every image goes through the run's evaluation pipeline: decode, convert to the training channels,
resize to --rescale-size², centre crop, normalise as the run's test view did, the run's precision.
Methods with two networks (the baselines) predict with the mean of both networks' probabilities.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from comining import hardware
from comining.config import Config
from comining.data.augment import Views
from comining.data.decode import ImageFiles, in_order, loader
from comining.data.listing import visible_files
from comining.errors import UserError
from comining.rundir import RunDir, atomic_csv, check_output


def load_networks(run_dir, device) -> tuple[list[torch.nn.Module], dict, dict]:
    """(the run's networks in eval mode on ``device``, data.json, config) of a run directory."""
    return RunDir(run_dir).read_networks(device)


def collect(paths: list[str]) -> list[Path]:
    """The files named by ``paths``: files as given, folders searched recursively (hidden entries skipped)."""
    files = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = visible_files(path)  # a FIFO among them is reported, never opened
            if not found:
                raise UserError(f"folder {path} holds no files: pass image files or folders holding them")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise UserError(f"{path} not found: pass existing image files or folders")
    return files


@torch.no_grad()
def predict(run_dir, paths: list[str], output="predictions.csv", device: str = "auto", batch_size: int = 64,
            workers: int = 0, force: bool = False) -> dict:
    """Classify ``paths`` with the run in ``run_dir`` and write ``output`` (path, class, confidence, error);
    an existing ``output`` is replaced only with ``force``, an input image or the run's own files never.

    Returns {"images": n, "errors": n unreadable, "counts": {class: n}, "output": path}."""
    device = hardware.resolve_device(device)
    nets, info, cfg = load_networks(run_dir, device)
    precision = hardware.resolve_precision(cfg.get("precision", Config.precision), device)
    files = collect(paths)
    check_output(output, force, run_dir, inputs=files, flag="--output")
    classes = info["classes"]
    views = Views(info["crop_size"], 0, False, info.get("normalize"))
    dataset = ImageFiles(files, info["image_size"], "L" if info["channels"] == 1 else "RGB")
    results: list[list] = [[str(f), "", "", ""] for f in files]
    for index, ok, images, reasons in loader(dataset, in_order(len(files), batch_size), workers, device.type == "cuda"):
        for i, reason in reasons.items():
            results[i][3] = reason
        if not images.numel():
            continue
        x = views(images.to(device), "test")
        with hardware.autocast(device, precision):
            probs = torch.stack([net(x)[0].float().softmax(1) for net in nets]).mean(0)
        confidence, label = probs.max(1)
        for i, c, p in zip(index[ok].tolist(), label.tolist(), confidence.tolist()):
            results[i][1:3] = [classes[c], f"{p:.4f}"]
    try:
        atomic_csv(Path(output), ["path", "class", "confidence", "error"], results)
    except OSError as err:
        raise UserError(f"cannot write {output} ({err.strerror or err}): choose another --output") from None
    counts = Counter(r[1] for r in results if r[1])
    return {"images": len(files), "errors": sum(1 for r in results if r[3]), "counts": dict(counts.most_common()),
            "output": str(output)}
