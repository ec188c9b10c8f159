"""The cost of Co-mining's mining step (triplet + k-reciprocal relabelling) against forward-backward.

For each bank size, both views' banks are filled with normalised features, and one step's mining
(semi-hard triplet on the high-confidence set H, k-reciprocal relabelling of the noisy set D, for
both views) is timed against the model's forward and backward pass on the two views of a batch.

    python benchmarks/bench_mining.py                      # banks of 1k, 4k, 16k; the paper's CNN, 32 px
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from comining import hardware
from comining.methods.comining import split_by_score
from comining.mining import MemoryBank, reciprocal_relabel, semi_hard_triplet
from comining.models import build_model


def timed(fn, device, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls, after two untimed ones."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        tick = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - tick)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="cnn")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--forget-rate", type=float, default=0.2)
    parser.add_argument("--banks", default="1024,4096,16384")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    device = hardware.resolve_device(args.device)
    precision = hardware.resolve_precision(args.precision, device)
    torch.manual_seed(0)
    model = build_model(args.arch, args.channels, args.classes, args.image_size).to(
        device, memory_format=torch.channels_last)
    n = args.batch_size
    x = torch.rand(2 * n, args.channels, args.image_size, args.image_size, device=device).contiguous(
        memory_format=torch.channels_last)
    labels = torch.randint(0, args.classes, (n,), device=device)

    def forward_backward():
        with hardware.autocast(device, precision):
            logits, feats = model(x)
        (logits.float().logsumexp(1).mean() + feats.float().mean()).backward()

    model_seconds = timed(forward_backward, device, args.repeats)
    with torch.no_grad(), hardware.autocast(device, precision):
        feats = F.normalize(model(x)[1].float(), dim=1)
    h1, h2 = feats.chunk(2)
    h1.requires_grad_(True)
    h2.requires_grad_(True)
    clean, confident, noisy = split_by_score(torch.rand(n, device=device), args.forget_rate, 0.5)

    print(f"{platform.processor() or platform.machine()} ({device}, {precision}), torch {torch.__version__}; "
          f"{args.arch} on {args.channels}×{args.image_size}² images, batch {n}, forget rate {args.forget_rate} "
          f"(|H| = {len(confident)}, |D| = {len(noisy)}), feature dim {model.feature_dim}, median of {args.repeats}")
    memory_title = "peak mining memory (MiB)" if device.type == "cuda" else "largest mining matrix (MiB)"
    print(f"| bank | mining (ms) | forward+backward (ms) | mining share of the step | {memory_title} |")
    print("|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.banks.split(",")):
        banks = []
        for _ in range(2):
            bank = MemoryBank(size, model.feature_dim, device)
            bank.push(torch.randn(size, model.feature_dim, device=device), torch.randint(0, args.classes, (size,),
                                                                                          device=device))
            banks.append(bank)

        def mining():
            tri = torch.cat([semi_hard_triplet(h[confident], labels[confident], b.feats, b.labels, 0.0)
                             for h, b in zip((h1, h2), banks)]).mean()
            tri.backward()
            for h, b in zip((h1, h2), banks):
                reciprocal_relabel(h[noisy].detach(), b.feats, b.labels, 15, 0.15, args.classes)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        mining_seconds = timed(mining, device, args.repeats)
        share = mining_seconds / (mining_seconds + model_seconds)
        if device.type == "cuda":  # measured: what the mining step allocates on top of what is there
            memory = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:  # the k-reciprocal distances, (|D|·k) × (|D| + bank) float32: the step's largest tensor
            memory = len(noisy) * 15 * (len(noisy) + size) * 4 / 2**20
        print(f"| {size} | {mining_seconds * 1e3:.1f} | {model_seconds * 1e3:.1f} | {share:.0%} | {memory:.1f} |")


if __name__ == "__main__":
    main()
