"""Are a real annotator's wrong labels learned, or do the images carry them? (issue 27)

On the testbed's realistic rows the network of a Co-mining `auto` run puts 42-48 % of the wrong labels
in their given class, at epoch 5 as at epoch 10 (docs/notes/2026-12-07-learned-or-seen.md), so every
reading of it counts them as right. Two networks that never trained on those samples' labels tell
why:

  clean   trained on the *true* labels of the other half of the 3,200 images (2 folds): the share of
          a row's wrong labels whose image it puts in the given class. The image itself points there:
          no network, trained on any labels, can call such a label wrong from the image.
  given   trained on the row's *given* labels of the other half: the same share. Where it matches the
          run's, the run's network has not memorised those labels; it learned the annotator's
          confusion as a rule, from other images, and applies it to images it never fitted.

Both: the small CNN of the `fashion-mnist` preset, Adam 1e-3, batch 128, 10 epochs, no augmentation,
plain cross-entropy, one thread; folds and weights seeded by --seeds. Wrong labels are counted on
closed-set rows only (an open-set image has no true class among the labels). The run's share is read
from the testbed's evidence files (``probs_warm`` after epoch 5, ``probs_later`` after epoch 10), and
printed first for every row, with the share of right labels it puts elsewhere and its disagreement.

    python experiments/clean_reference.py runs/testbed --seeds 1,2,3 [--no-training]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from comining.data import fashion_mnist
from comining.models import build_model

ROWS = ("human-aggre", "human-worse", "annot20", "annot35", "sym50", "asym40")
EPOCHS, BATCH, LR = 10, 128, 1e-3


def out_of_fold_predictions(images: torch.Tensor, labels: np.ndarray, seed: int) -> np.ndarray:
    """[N] the class each image is put in by a small CNN trained, for ``EPOCHS``, on ``labels`` of the
    other fold of two (seeded by ``seed``), never on its own."""
    generator = torch.Generator().manual_seed(seed)
    fold = torch.randperm(len(labels), generator=generator).numpy() % 2
    predicted = np.empty(len(labels), dtype=np.int64)
    x = (images.float() / 255 - 0.2860) / 0.3530  # Fashion-MNIST's pixel mean and std
    y = torch.from_numpy(labels)
    for held in (0, 1):
        torch.manual_seed(seed * 2 + held)
        model = build_model("small", 1, 10, 28)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        train = np.flatnonzero(fold != held)
        for _ in range(EPOCHS):
            model.train()
            order = train[torch.randperm(len(train), generator=generator).numpy()]
            for start in range(0, len(order), BATCH):
                index = torch.from_numpy(order[start:start + BATCH])
                loss = F.cross_entropy(model(x[index])[0], y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        model.eval()
        test = np.flatnonzero(fold == held)
        with torch.no_grad():
            predicted[test] = model(x[torch.from_numpy(test)])[0].argmax(1).numpy()
    return predicted


def agreed_share(predicted: np.ndarray, given: np.ndarray, true: np.ndarray) -> float:
    """The share of wrong labels (given ≠ true) whose image is put in its given class."""
    wrong = given != true
    return float((predicted[wrong] == given[wrong]).mean())


def run_readings(testbed: Path, seeds: list[int]) -> None:
    """The first table: per testbed row (every row's evidence file of ``seeds``), the run's share of wrong
    labels it puts in their given class (s), of right labels it puts elsewhere (e), and its disagreement
    with the labels, after epoch 5 and after epoch 10; means over seeds."""
    rows = defaultdict(list)
    for path in sorted(testbed.glob("*-seed*.npz")):
        row, seed = path.stem.rsplit("-seed", 1)
        if int(seed) not in seeds:
            continue
        evidence = np.load(path)
        given, true = evidence["given"], evidence["true"]
        values = []
        for key in ("probs_warm", "probs_later"):
            predicted = evidence[key].argmax(1)
            right = given == true
            values.append([agreed_share(predicted, given, true), float((predicted[right] != given[right]).mean()),
                           float((predicted != given).mean())])
        rows[row].append(np.array(values).T.ravel())  # s5, s10, e5, e10, d5, d10
    print("| row | s, epoch 5 | s, epoch 10 | e, epoch 5 | e, epoch 10 | disagreement, 5 | disagreement, 10 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row, values in rows.items():
        print(f"| {row} | " + " | ".join(f"{v:.3f}" for v in np.mean(values, axis=0)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("testbed", type=Path, help="the testbed folder (noise_testbed.py labels/evidence)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--no-training", action="store_true", help="the first table only (from the evidence)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    run_readings(args.testbed, seeds)
    if args.no_training:
        return
    data = fashion_mnist.load()
    images, true = data.train_images[:3200], np.asarray(data.train_labels[:3200])
    clean = {seed: out_of_fold_predictions(images, true, seed) for seed in seeds}
    table = defaultdict(list)
    for row in ROWS:
        for seed in seeds:
            evidence = np.load(args.testbed / f"{row}-seed{seed}.npz")
            given = evidence["given"]
            assert np.array_equal(evidence["true"], true), "the testbed's images are not the first 3,200"
            table[row].append([agreed_share(clean[seed], given, true),
                               agreed_share(out_of_fold_predictions(images, given, seed), given, true),
                               agreed_share(evidence["probs_warm"].argmax(1), given, true),
                               agreed_share(evidence["probs_later"].argmax(1), given, true)])
    print(f"share of wrong labels put in their given class, mean of seeds {args.seeds}:")
    print("| row | realised | clean, out of fold | given, out of fold | the run, epoch 5 | the run, epoch 10 |")
    print("|---|---:|---:|---:|---:|---:|")
    realised = json.loads((args.testbed / "rows.json").read_text())
    for row, values in table.items():
        mean = np.mean(values, axis=0)
        print(f"| {row} | {realised[row]['realised']:.3f} | " + " | ".join(f"{v:.3f}" for v in mean) + " |")


if __name__ == "__main__":
    main()
