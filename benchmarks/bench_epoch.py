"""Images per second of one Co-mining training epoch: the fast path against the authors' kind of pipeline.

The authors' kind: views made per image with PIL in DataLoader worker processes, float32, the usual
(contiguous NCHW) memory format. The fast path: the uint8 data set on the device, views made on
batches there, channels-last, and bfloat16 where the hardware computes it natively. Both train the
same model with the same Co-mining step on the same images on the same machine. Each measurement
runs in its own process, so the peak memory it reports is its own. One warm-up epoch (untimed) fills
the memory banks first, so the timed epoch selects, mines and relabels as in the middle of a run.
The PIL pipeline is also run with the fast path's precision and memory format, to show how much of
the difference is the data path and how much the arithmetic.

    python benchmarks/bench_epoch.py                 # all four rows, ratios against the authors' kind
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
    if not args.channels_last:  # the authors' kind: PyTorch's default memory format
        trainer.method.to(memory_format=torch.contiguous_format)
        trainer.views.channels_last = False
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
        train_epoch_pil(trainer, args.workers, args.channels_last)
    sync()
    seconds = time.perf_counter() - tick
    return {"pipeline": args.pipeline, "precision": trainer.precision, "device": str(trainer.device),
            "channels_last": args.channels_last,
            "arch": cfg.arch, "dataset": cfg.dataset, "images": steps * cfg.batch_size, "seconds": seconds,
            "images_per_s": steps * cfg.batch_size / seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda" else None}


def train_epoch_pil(trainer, workers: int, channels_last: bool) -> None:
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
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        views = [v.to(trainer.device, non_blocking=True).contiguous(memory_format=memory_format)
                 for v in (weak, strong)]
        labels, index = labels.to(trainer.device), index.to(trainer.device)
        with hardware.autocast(trainer.device, trainer.precision):
            loss, _ = method.loss(views, labels, index, 1, trainer.forget.at(1))
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
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", action="store_true", help="print one JSON line (used by the driver)")
    args = parser.parse_args()
    if args.pipeline:
        print(json.dumps(measure(args)) if args.json else measure(args))
        return
    # (pipeline, precision, channels-last): the authors' kind first, then the fast path's pieces.
    settings = [("pil", "fp32", False), ("pil", args.precision, True), ("fast", "fp32", True),
                ("fast", args.precision, True)]
    rows = []
    for pipeline, precision, channels_last in settings:
        cmd = [sys.executable, __file__, "--pipeline", pipeline, "--precision", precision, "--json",
               "--channels-last" if channels_last else "--no-channels-last", "--dataset", args.dataset,
               "--arch", args.arch, "--train-subset", str(args.train_subset), "--batch-size", str(args.batch_size),
               "--device", args.device, "--workers", str(args.workers)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["images_per_s"]
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, {rows[0]['device']}, "
          f"{args.dataset} ({args.train_subset} images), {args.arch}, batch {args.batch_size}, {args.workers} workers")
    print("| views | precision | memory format | img/s | vs the authors' kind | peak memory (MiB) |")
    print("|---|---|---|---:|---:|---:|")
    for row in rows:
        views = "PIL per image, DataLoader workers" if row["pipeline"] == "pil" else "on the device, per batch"
        memory = row["peak_cuda_mib"] if row["peak_cuda_mib"] is not None else row["peak_rss_mib"]
        print(f"| {views} | {row['precision']} | {'channels-last' if row['channels_last'] else 'NCHW'} | "
              f"{row['images_per_s']:.0f} | {row['images_per_s'] / base:.2f}× | {memory:.0f} |")

if __name__ == "__main__":
    main()
