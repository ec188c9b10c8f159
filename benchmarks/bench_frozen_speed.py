"""Frozen backbone on your own photos: minutes from `comining train` to verdicts.csv, against fine-tuning.

Evidence (docs/PERFORMANCE.md, section f): 2026-12-06, Intel Xeon, 2 cores, AVX512 with AVX512-BF16
and AMX, torch 2.13.0+cpu, 2 threads, bf16, idle; ResNet-18, 2,000 photos of 256 px, one run each:
frozen with features computed 347.9 s to verdicts.csv; cached 88.1 s (3.9x, 0 images decoded);
fine-tuning 165.3 s per epoch, about 165 minutes for 60 epochs (28x the first frozen run). Again on
2026-12-06 (third session, same CPU kind, `--finetune-epochs 0`), with the per-operation AutoAugment
and the frozen head's own schedule (40 epochs): 232.1 s with features computed, 90.9 s cached (2.6x).
Fourth session, the same CPU kind, with the neighbour search in cache-sized pieces: 193.3 s and 53.6 s
(3.6x); the commit before it, minutes earlier, 192.5 s and 77.6 s (2.5x). 2026-12-07, the same CPU kind,
with the frozen mode's probe and MLP head (d1b1b6a): 182.5 s and 41.0 s (4.4x); 38ce618 just before it
183.0 s and 62.6 s (2.9x). Third session of 2026-12-07, the same CPU kind, with the frozen default's
un-augmented first view (3787cb5, 3 views computed per image): 155.0 s and 46.7 s (3.3x); c918426 just
before it (5 views) 206.1 s and 52.4 s (3.9x). Sixth session of 2026-12-07, the same CPU kind, whose
extraction ran faster: with the last two stages as the features (D = 768) 110.8 s and 37.8 s (2.9x); the
commit before it (D = 512) 108.6 s and 38.1 s (2.8x), minutes earlier. Later that session, with the
probe's result kept in the feature cache: 124.7 s and 33.9 s (3.7x); the commit before it (970e98a)
128.0 s and 42.2 s (3.0x), minutes earlier. Again (9304a48, `--finetune-epochs 1`, with a code review at
work beside it): 120.6 s and 38.5 s (3.1x); fine-tuning 110.1 s an epoch, about 110 minutes for
its 60 epochs (55x the first frozen run).

    python benchmarks/bench_frozen_speed.py [--out runs/bench-frozen] [--images 2000] [--finetune-epochs 1 (0: frozen runs only)]

What it does:
  1. writes a folder of --images photos of 256x256 px (JPEG): Fashion-MNIST images upscaled where the
     IDX files are found (datasets/fashion-mnist or /usr/share/datasets/fashion-mnist), random pictures
     otherwise; 10 classes, 20 % of the training files in a wrong class folder, 20 clean val images per class;
  2. `comining train --dataset folder --backbone frozen --arch resnet18 --weights none` with a fresh
     --cache-dir: wall-clock seconds from start to verdicts.csv (features computed);
  3. the same command again (new --out): the cache holds every feature; the child process counts
     every call of the image decoder (it must be 0);
  4. `--backbone finetune` (same arch, weights and 224-px crops of 256-px images) for
     --finetune-epochs epochs; its seconds per epoch x 60 (the preset's epochs) estimate the full run.
`--weights none` times exactly what ImageNet weights would (same network), without a download.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLASSES = 10
SIDE = 256
COMMON = ["--dataset", "folder", "--arch", "resnet18", "--weights", "none", "--rescale-size", "256",
          "--crop-size", "224", "--quiet"]

# Run as a child: count every image decode (also in DataLoader workers, which inherit the patch by fork)
# in the file named by $COUNT_DECODES, then run the CLI.
CHILD = """
import os, sys
from comining.data import decode
real = decode.decode
def counted(path, *a, **k):
    with open(os.environ["COUNT_DECODES"], "a") as fh:
        fh.write("x")
    return real(path, *a, **k)
decode.decode = counted
from comining.cli import main
sys.exit(main(sys.argv[1:]))
"""


def source_images(n: int) -> np.ndarray:
    """n grey 28x28 uint8 images with labels 0..9: Fashion-MNIST where found, random shapes otherwise."""
    for folder in (REPO / "datasets" / "fashion-mnist", Path("/usr/share/datasets/fashion-mnist")):
        if (folder / "train-images-idx3-ubyte.gz").is_file():
            from comining.data.fashion_mnist import load
            arrays = load(str(folder))
            return arrays.train_images[:n, 0].numpy(), np.asarray(arrays.train_labels[:n])
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, (n, 28, 28)).astype(np.uint8), np.arange(n) % CLASSES


def write_photos(root: Path, n: int) -> None:
    from PIL import Image

    images, labels = source_images(n + 20 * CLASSES)
    rng = np.random.RandomState(1)
    for i, (pixels, label) in enumerate(zip(images, labels)):
        split = "train" if i < n else "val"
        given = int(label) if split == "val" or rng.rand() >= 0.2 else int(rng.randint(CLASSES))
        folder = root / split / f"class{given}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).resize((SIDE, SIDE), Image.BICUBIC).convert("RGB").save(folder / f"{i:05d}.jpg",
                                                                                      quality=90)


def timed(args: list[str], counter: Path | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "comining", *args]
    if counter is not None:
        env["COUNT_DECODES"] = str(counter)
        command = [sys.executable, "-c", CHILD, *args]
    start = time.time()
    subprocess.run(command, check=True, env=env, cwd=REPO)
    return time.time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-frozen")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--feature-views", type=int, help="K for the frozen runs (default: comining's)")
    args = parser.parse_args()
    import torch

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads")
    data, cache = args.out / "photos", args.out / "cache"
    if not data.exists():
        write_photos(data, args.images)
    for path in (cache, args.out / "cold", args.out / "warm", args.out / "finetune"):
        shutil.rmtree(path, ignore_errors=True)
    frozen = [*COMMON, "--data-root", str(data), "--backbone", "frozen", "--cache-dir", str(cache)]
    if args.feature_views:
        frozen += ["--feature-views", str(args.feature_views)]

    cold = timed(["train", *frozen, "--out", str(args.out / "cold")])
    counter = args.out / "decodes.txt"
    counter.write_text("")
    warm = timed(["train", *frozen, "--out", str(args.out / "warm")], counter)
    decodes = len(counter.read_text())
    per_epoch = []
    if args.finetune_epochs:  # 0: only the frozen runs (fine-tuning's epoch costs minutes and is recorded)
        timed(["train", *COMMON, "--data-root", str(data), "--backbone", "finetune", "--epochs",
               str(args.finetune_epochs), "--warmup-epochs", "1", "--out", str(args.out / "finetune")])
        history = (args.out / "finetune" / "metrics.jsonl").read_text().splitlines()
        per_epoch = [json.loads(line)["seconds"] for line in history]
    epochs = json.loads((args.out / "cold" / "config.json").read_text())["epochs"]
    results = {name: json.loads((args.out / name / "results.json").read_text()) for name in ("cold", "warm")}
    from comining.config import resolve  # the epochs a fine-tuning run of this folder trains by default
    finetune_epochs = resolve({"dataset": "folder", "data_root": str(data), "arch": "resnet18", "weights": "none",
                               "backbone": "finetune", "rescale_size": SIDE, "crop_size": 224, "quiet": True}).epochs

    print(f"{args.images} photos of {SIDE} px, ResNet-18, {epochs} epochs of Co-mining")
    print(f"frozen, features computed:  {cold:7.1f} s to verdicts.csv ({results['cold']['backbone']['computed']} "
          f"images computed; test accuracy {results['cold']['last10_mean']:.2f} %)")
    print(f"frozen, features cached:    {warm:7.1f} s ({cold / warm:.1f}x faster; {decodes} images decoded, "
          f"{results['warm']['backbone']['cached']} from the cache)")
    if per_epoch:
        print(f"fine-tuning:                {np.mean(per_epoch):7.1f} s per epoch ({len(per_epoch)} measured) -> "
              f"{np.mean(per_epoch) * finetune_epochs / 60:.0f} min for its {finetune_epochs} epochs (extrapolated; "
              f"{np.mean(per_epoch) * finetune_epochs / cold:.0f}x the first frozen run)")
    return 0 if cold < 300 and cold / warm >= 3 and decodes == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
