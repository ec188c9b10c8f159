"""Time of the linear probe (comining/probe.py) at the size of the paper's largest fine-grained set.

Evidence (docs/PERFORMANCE.md, section f): 2026-12-07, Intel Xeon, 2 cores, AVX512 with AVX512-BF16 and
AMX, one BLAS thread (the probe's own limit), idle: 18,388 x 2,048, 200 classes, 200 s for the five folds
(135-148 L-BFGS iterations), the count 0.303 for 0.302; two BLAS threads 211 s (measured by patching
threadpoolctl, before --blas-threads existed); 2,000 x 512, 4 classes, 2 s.

    python benchmarks/bench_probe.py                                   # web-bird's size: 18,388 x 2,048, 200 classes
    python benchmarks/bench_probe.py --rows 2000 --dim 512 --classes 4 # a small photo folder with ResNet-18
    python benchmarks/bench_probe.py --blas-threads 2                  # against the probe's one thread

The probe runs once per `--forget-rate auto` run on pretrained features (frozen, or fine-tuning from
pretrained --weights), before the first epoch: five logistic regressions, each on four fifths of the
samples. No pretrained features can be downloaded here, so the features are synthetic, shaped like a
ResNet's pooled ones: non-negative, a class centre per class plus variation along a few directions, with --noise of the
labels redrawn uniformly. L-BFGS's iterations depend on how separable the classes are, so the time is
an indication of the order of magnitude, not of a given data set's; the script prints the iterations.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LATENT = 64  # directions of within-class variation


def synthetic_features(rows: int, dim: int, classes: int, noise: float, seed: int):
    """[rows×dim] float32 non-negative features, the given labels (``noise`` of them redrawn
    uniformly over the classes) and the true ones."""
    rng = np.random.default_rng(seed)
    # A pretrained network's features vary along few directions, not independently in each dimension:
    # the within-class variation here spans LATENT of them (with isotropic noise in every dimension, a
    # linear model memorises the wrong labels and its held-out probabilities say nothing).
    centres = rng.normal(0.0, 1.0, (classes, LATENT)) @ rng.normal(0.0, 1.0, (LATENT, dim)) / np.sqrt(LATENT)
    spread = rng.normal(0.0, 1.0, (LATENT, dim)) / np.sqrt(LATENT)
    truth = rng.integers(0, classes, rows)
    within = rng.normal(0.0, 0.3, (rows, LATENT)) @ spread + rng.normal(0.0, 0.1, (rows, dim))
    features = np.maximum(centres[truth] + within, 0)
    labels = np.where(rng.random(rows) < noise, rng.integers(0, classes, rows), truth)
    return features.astype(np.float32), labels, truth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=18_388)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.3, help="share of labels redrawn uniformly")
    parser.add_argument("--blas-threads", type=int, help="BLAS threads while the probe fits (default: the probe's own)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import sklearn
    import torch
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info

    from comining import probe
    from comining.noise_rate import confident_joint_noise_rate

    if args.blas_threads:
        probe.BLAS_THREADS = args.blas_threads
    blas = ", ".join(sorted({f"{pool['internal_api']} {pool['version']}" for pool in threadpool_info()
                             if pool["user_api"] == "blas"}))
    print(f"{os.cpu_count()} CPUs, {torch.backends.cpu.get_cpu_capability()}, numpy {np.__version__}, "
          f"scikit-learn {sklearn.__version__}, {blas}, {probe.BLAS_THREADS} BLAS thread(s); "
          f"{args.rows} rows x {args.dim} dimensions, {args.classes} classes, {args.noise:.0%} of labels redrawn")
    features, labels, truth = synthetic_features(args.rows, args.dim, args.classes, args.noise, seed=0)
    iterations = []
    fit = LogisticRegression.fit

    def counted_fit(model, x, y, *rest, **kwargs):
        fitted = fit(model, x, y, *rest, **kwargs)
        iterations.append(int(np.max(fitted.n_iter_)))
        return fitted

    LogisticRegression.fit = counted_fit
    tick = time.perf_counter()
    probs = probe.out_of_fold_probabilities(features, labels, args.classes, seed=0)
    seconds = time.perf_counter() - tick
    realised = float((labels != truth).mean())
    print(f"probe: {seconds:.1f} s for {len(iterations)} folds (L-BFGS iterations {iterations}); "
          f"noise rate read {confident_joint_noise_rate(probs, labels):.3f} for {realised:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
