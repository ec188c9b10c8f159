"""Human-like label noise for Fashion-MNIST, in the CIFAR-N file format, and the runs on it.

CIFAR-N (Wei et al., 2022) re-annotated CIFAR's training images by hand; its files cannot be
downloaded here. This script builds the same kind of file for Fashion-MNIST: a ``torch.save``d dict
of int64 arrays, one entry per training image in the data set's order, with

- ``clean_label``: the data set's own labels;
- ``aggre_label``: an aggregate-like annotation, about 9 % wrong (CIFAR-10N's aggregate: 9.0 %);
- ``worse_label``: a worst-annotator-like one, about 40 % wrong (CIFAR-10N's worst: 40.2 %).

Humans confuse look-alike classes, not random ones, and they confuse the ambiguous images of a
class, not random members of it. So each class has a share of wrong labels (high for shirt,
T-shirt, pullover and coat, medium for sandal / sneaker / ankle boot, low for trouser and bag),
its errors go to its look-alikes (CONFUSED_WITH), and the images that get them are drawn with
probability rising with how close the image lies to a look-alike class's mean (in a PCA space of
the pixels) rather than to its own.

    .venv/bin/python experiments/fashion_mnist_human_noise.py --out runs/fm_human.pt
    .venv/bin/python experiments/fashion_mnist_human_noise.py --out runs/fm_human.pt --train runs/human

``--train DIR`` then runs Co-mining, Co-teaching and JoCoR on both noisy keys (3,200 training
images, 2,000 test images, 40 epochs; docs/RESULTS.md) one after another and prints their results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from comining import labelfile
from comining.data import load_arrays

# Fashion-MNIST classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
# 7 Sneaker, 8 Bag, 9 Ankle boot. Per class: how error-prone it is (relative), and what it is taken for.
HARDNESS = np.array([1.0, 0.15, 1.1, 0.6, 1.1, 0.6, 1.6, 0.5, 0.15, 0.45])
CONFUSED_WITH = {
    0: {6: 0.6, 2: 0.2, 3: 0.2}, 1: {3: 1.0}, 2: {4: 0.5, 6: 0.4, 0: 0.1}, 3: {4: 0.4, 6: 0.3, 0: 0.3},
    4: {2: 0.5, 6: 0.4, 3: 0.1}, 5: {7: 0.7, 9: 0.3}, 6: {0: 0.45, 2: 0.3, 4: 0.25}, 7: {5: 0.5, 9: 0.5},
    8: {4: 0.5, 5: 0.5}, 9: {7: 0.7, 5: 0.3},
}
MAX_CLASS_RATE = 0.65  # even the worst annotator gets most images of a class right
KEYS = {"aggre_label": 0.09, "worse_label": 0.40}
METHODS = ("comining", "coteaching", "jocor")


def class_rates(target: float, counts: np.ndarray) -> np.ndarray:
    """Per-class wrong-label rates ∝ HARDNESS (capped) whose count-weighted mean is ``target``."""
    lo, hi = 0.0, 10.0
    for _ in range(60):  # bisection on the common scale
        scale = (lo + hi) / 2
        rates = np.minimum(HARDNESS * scale, MAX_CLASS_RATE)
        lo, hi = (scale, hi) if (rates * counts).sum() / counts.sum() < target else (lo, scale)
    return np.minimum(HARDNESS * lo, MAX_CLASS_RATE)


def look_alike_scores(images: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    """[N×C] softmax of minus the squared distance of each image to every class mean, in a 40-d PCA
    space of the pixels: how much an image looks like each class."""
    x = images.reshape(len(images), -1).float() / 255
    x = (x - x.mean(0)).double()
    # exact PCA from the 784×784 covariance: a randomised one (torch.pca_lowrank) draws from the
    # unseeded global generator, and the file came out different on every build
    _, vectors = torch.linalg.eigh(x.T @ x)
    z = (x @ vectors[:, -40:]).float().numpy()
    means = np.stack([z[labels == c].mean(0) for c in range(10)])
    d = (z ** 2).sum(1, keepdims=True) - 2 * z @ means.T + (means ** 2).sum(1)
    d = d - d.min(1, keepdims=True)
    temperature = np.median(d[np.arange(len(z)), labels]) + 1e-6
    e = np.exp(-d / temperature)
    return e / e.sum(1, keepdims=True)


def annotate(labels: np.ndarray, scores: np.ndarray, target: float, seed: int) -> np.ndarray:
    """Labels with about ``target`` of them replaced by a look-alike class, ambiguous images first."""
    rng = np.random.RandomState(seed)
    noisy = labels.copy()
    counts = np.bincount(labels, minlength=10)
    for c, rate in enumerate(class_rates(target, counts)):
        members = np.flatnonzero(labels == c)
        others = np.array(list(CONFUSED_WITH[c]))
        prior = np.array(list(CONFUSED_WITH[c].values()))
        # How much each member looks like its look-alikes, mixed with a uniform share: people also
        # slip on clear images.
        pull = (scores[members][:, others] + 1e-3) * prior
        weight = pull.sum(1) / pull.sum() * 0.8 + 0.2 / len(members)
        flipped = rng.choice(members, size=int(round(rate * len(members))), replace=False, p=weight / weight.sum())
        for i in flipped:
            p = (scores[i, others] + 1e-3) * prior  # never quite zero: far look-alikes stay possible
            noisy[i] = rng.choice(others, p=p / p.sum())
    return noisy


def build(out: Path) -> dict:
    """Write the CIFAR-N style file; returns {key: realised share of wrong labels}."""
    data = load_arrays("fashion-mnist")
    clean = np.asarray(data.train_labels, dtype=np.int64)
    scores = look_alike_scores(data.train_images, clean)
    content = {"clean_label": clean}
    for seed, (key, target) in enumerate(KEYS.items(), start=1):
        content[key] = annotate(clean, scores, target, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, out)
    return {key: float((content[key] != clean).mean()) for key in KEYS}


def train_all(label_file: Path, runs: Path, subset: int = 3200) -> list[dict]:
    """Run every method on every noisy key (forget rate = the key's realised rate on the subset, the
    paper's protocol of a known noise rate); returns one result row per run."""
    clean = labelfile.read_cifar_n(label_file, "clean_label")[:subset]
    rows = []
    for key in KEYS:
        rate = float((labelfile.read_cifar_n(label_file, key)[:subset] != clean).mean())
        for method in METHODS:
            out = runs / f"{key}-{method}"
            if not (out / "results.json").exists():
                cmd = [str(Path(sys.executable).parent / "comining"), "train", "--dataset", "fashion-mnist",
                       "--labels", str(label_file), "--label-key", key, "--method", method,
                       "--train-subset", str(subset), "--test-subset", "2000", "--forget-rate", f"{rate:.3f}",
                       "--out", str(out), "--quiet"]
                print(" ".join(cmd), flush=True)
                subprocess.run(cmd, check=True)
            results = json.loads((out / "results.json").read_text())
            rows.append({"key": key, "method": method, "noise": results["noise"]["wrong_labels"],
                         "last10": f"{results['last10_mean']:.2f}±{results['last10_std']:.2f}",
                         "precision": results.get("label_precision"), "seconds": round(results["seconds"])})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/fm_human.pt"), help="the .pt file to write")
    parser.add_argument("--train", type=Path, metavar="DIR", help="also run the methods, run directories in DIR")
    args = parser.parse_args()
    if not args.out.exists():
        print(json.dumps({"realised_noise": build(args.out)}), flush=True)
    if args.train:
        train_all(args.out, args.train)


if __name__ == "__main__":
    main()
