"""Images per second of one Co-mining training epoch: the fast path against a PIL + DataLoader pipeline.

Both pipelines train the same model with the same Co-mining step on the same images on the same
machine; only the way views are made differs. Each measurement runs in its own process, so the
peak memory it reports is its own. One warm-up epoch (untimed, fast path) fills the memory banks
first, so the timed epoch selects, mines and relabels as in the middle of a real run.

    python benchmarks/bench_epoch.py                       # both pipelines, fp32 and default precision
    python benchmarks/bench_epoch.py --pipeline fast --precision bf16 --json   # one measurement
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(args) -> dict:
    from comining.config import resolve
    from comining.engine import Trainer

    cfg = resolve({"dataset": args.dataset, "arch": args.arch, "train_subset": args.train_subset,
                   "test_subset": 100, "batch_size": args.batch_size, "epochs": 3, "warmup_epochs": 1,
                   "precision": args.precision, "device": args.device, "workers": args.workers, "quiet": True,
                   "closed_rate": 0.5})
    trainer = Trainer(cfg)
    trainer.train_epoch(0)  # warm-up: fills the banks; not timed
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    steps = trainer.data.num_batches(cfg.batch_size)
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    tick = time.perf_counter()
    if args.pipeline == "fast":
        trainer.train_epoch(1)
    else:
        train_epoch_pil(trainer, args.workers)
    sync()
    seconds = time.perf_counter() - tick
    return {"pipeline": args.pipeline, "precision": trainer.precision, "device": str(trainer.device),
            "arch": cfg.arch, "dataset": cfg.dataset, "images": steps * cfg.batch_size, "seconds": seconds,
            "images_per_s": steps * cfg.batch_size / seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda" else None}


def train_epoch_pil(trainer, workers: int) -> None:
    """The same step as Trainer.train_epoch, fed by per-image PIL views from DataLoader workers."""
    from pil_pipeline import TwoViewDataset

    from comining import hardware

    data, cfg, method = trainer.data, trainer.cfg, trainer.method
    dataset = TwoViewDataset(data.images.cpu().numpy(), data.labels.cpu().numpy(), *data.normalize,
                             padding=data.padding)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                                         num_workers=workers, pin_memory=trainer.device.type == "cuda",
                                         persistent_workers=False)
    method.train()
    for weak, strong, labels, index in loader:
        views = [v.to(trainer.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                 for v in (weak, strong)]
        labels, index = labels.to(trainer.device), index.to(trainer.device)
        with hardware.autocast(trainer.device, trainer.precision):
            loss, _ = method.loss(views, labels, index, 1)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", choices=["fast", "pil"])
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--arch", default="cnn")
    parser.add_argument("--train-subset", type=int, default=6400)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON line (used by the driver)")
    args = parser.parse_args()
    if args.pipeline:
        print(json.dumps(measure(args)) if args.json else measure(args))
        return
    rows = []
    for precision in ("fp32", "auto"):
        for pipeline in ("pil", "fast"):
            cmd = [sys.executable, __file__, "--pipeline", pipeline, "--precision", precision, "--json",
                   "--dataset", args.dataset, "--arch", args.arch, "--train-subset", str(args.train_subset),
                   "--batch-size", str(args.batch_size), "--device", args.device, "--workers", str(args.workers)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.dataset} ({args.train_subset} images), {args.arch}, batch {args.batch_size}, {args.workers} workers")
    print("| precision | PIL + DataLoader (img/s) | fast path (img/s) | ratio | peak RSS PIL / fast (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for i in range(0, len(rows), 2):
        pil, fast = rows[i], rows[i + 1]
        print(f"| {fast['precision']} | {pil['images_per_s']:.0f} | {fast['images_per_s']:.0f} | "
              f"{fast['images_per_s'] / pil['images_per_s']:.2f} | {pil['peak_rss_mib']:.0f} / {fast['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
