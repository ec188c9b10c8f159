"""AutoAugment on the CPU: each operation on the images that drew it, against the whole-batch path.

Evidence (docs/PERFORMANCE.md, section g): the command below, this file's date and machine are in
its output; one thread, fp32, the median of --repeats calls per path and shape, the same draws in
both paths (their images are compared bit for bit).

    OMP_NUM_THREADS=1 python benchmarks/bench_autoaugment.py [--repeats 15]

The whole-batch path is what a GPU runs (no host reads); the CPU takes the per-operation path
(comining.data.autoaugment.SUBSET_DEVICES). Shapes: a digits/Fashion-MNIST batch (grey 28 px, 128),
a CIFAR batch (RGB 32 px, 128), and a batch of the image-set preset's frozen extraction (RGB 224 px, 25).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import torch

from comining.data import autoaugment

SHAPES = {"grey 28 px x 128": (128, 1, 28, 28), "RGB 32 px x 128": (128, 3, 32, 32), "RGB 224 px x 25": (25, 3, 224, 224)}


def timed(x: torch.Tensor, devices: set, repeats: int) -> tuple[float, torch.Tensor]:
    autoaugment.SUBSET_DEVICES = devices
    times = []
    for seed in range(repeats):
        torch.manual_seed(seed)
        start = time.perf_counter()
        out = autoaugment.BatchAutoAugment()(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}; "
          f"torch {torch.__version__}; CPU capability {torch.backends.cpu.get_cpu_capability()}; "
          f"{torch.get_num_threads()} threads; fp32")
    print("| batch | whole batch (ms) | per operation (ms) | speed-up | same images |\n|---|---:|---:|---:|---|")
    for name, shape in SHAPES.items():
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        whole, a = timed(x, set(), args.repeats)
        subsets, b = timed(x, {"cpu"}, args.repeats)
        print(f"| {name} | {whole * 1000:.1f} | {subsets * 1000:.1f} | {whole / subsets:.1f}x | {torch.equal(a, b)} |")


if __name__ == "__main__":
    main()
