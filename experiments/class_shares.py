"""Where does Co-mining lose a class at symmetric 80 %? (issue 11, docs/RESULTS.md, "The forget rate ramped in")

Trains one Fashion-MNIST run of the study's protocol (3,200 training images) epoch by epoch and
prints, after each, the test accuracy and per class: the share of the training images the network
predicts as that class (un-augmented view, 1.00 = the 10 % a class would get evenly) and its recall
on the images truly of that class. A class that stops being predicted at the start of selection, and
whose recall then stays at 0, is a class the run has lost. Extra settings go in as flags, e.g.:

    OMP_NUM_THREADS=1 python experiments/class_shares.py --seed 7 --epochs 10 --forget-ramp
    OMP_NUM_THREADS=1 python experiments/class_shares.py --seed 7 --epochs 10 --no-forget-ramp
"""

from __future__ import annotations

import argparse

import numpy as np

from comining import engine
from comining.config import resolve
from comining.evidence import plain_probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10, help="epochs to train and report (of the run's 40)")
    parser.add_argument("--rate", type=float, default=0.8, help="symmetric noise rate")
    parser.add_argument("--forget-ramp", action=argparse.BooleanOptionalAction, default=None,
                        help="ramp the forget rate in after warm-up (default: the recipe's)")
    args = parser.parse_args()
    settings = {"dataset": "fashion-mnist", "train_subset": 3200, "test_subset": 2000, "method": "comining",
                "noise_type": "symmetric", "closed_rate": args.rate, "seed": args.seed, "quiet": True}
    if args.forget_ramp is not None:
        settings["forget_ramp"] = args.forget_ramp
    trainer = engine.Trainer(resolve(settings))
    true = trainer.data.true_labels.cpu().numpy()
    classes = trainer.data.num_classes
    print(f"seed {args.seed}, forget ramp {trainer.cfg.forget_ramp}; per class 0..{classes - 1}")
    for epoch in range(args.epochs):
        trainer.train_epoch(epoch)
        probabilities = plain_probabilities(trainer.method, trainer.data, trainer.views, trainer.precision,
                                            trainer.cfg.eval_batch_size)
        predicted = probabilities.float().argmax(1).cpu().numpy()
        share = np.bincount(predicted, minlength=classes) / len(predicted) * classes
        recall = [(predicted[true == c] == c).mean() for c in range(classes)]
        accuracy = float(np.mean(trainer.evaluate()))
        print(f"epoch {epoch + 1:2d} test {accuracy:5.1f} | share " + " ".join(f"{s:.2f}" for s in share)
              + " | recall " + " ".join(f"{r:.2f}" for r in recall), flush=True)


if __name__ == "__main__":
    main()
