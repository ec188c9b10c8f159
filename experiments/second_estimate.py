"""What `--forget-rate auto`'s second estimate could be, measured on saved evaluation passes.

Trains Co-mining with `--forget-rate auto` up to its second estimate (epoch 2 × warm-up), saving the
evaluation pass after warm-up and at the second estimate with the ledger's last selection, then
compares ways to read the noise rate from them against the realised rate:

- ``mixture``: the shipped two-component mixture over p(given label) of the second pass;
- ``logit``: the same mixture over logit p(given label);
- ``warm-up on C``: the warm-up mixture's posterior for the samples in the last clean set C, the
  second pass's for the rest (wrong labels that C kept were memorised since, but not yet at warm-up);
- ``C and D apart``: one mixture within C and one within the rest, their posteriors summed;
- ``confident joint at warm-up``: ``noise_rate.confident_joint_noise_rate`` on the warm-up pass, one of
  the two counts `auto` takes the higher of where the warm-up's mixture does not separate
  (docs/METHOD.md);
- ``disagreement``: the share of samples whose most probable class is not their given label (under
  pair flips the network trained on clean sets rarely predicts the wrong label it was given, but
  the mixture's Gaussian for the wrong labels misses their long tail towards the clean ones);
- ``concentration``: how much the labels' disagreements point to one class each
  (``noise_rate.disagreement_concentration``), which decides which estimate to believe.

    python experiments/second_estimate.py --out runs/second --rows sym20,sym50,asym40 --seeds 4,5,6
    python experiments/second_estimate.py --out runs/second --compare    # reuse the saved passes
    python experiments/second_estimate.py --out runs/second --labels runs/fm_human2.pt --label-key worse_label

Rows are noise names as `comining table --noise` takes them; `--labels` trains on a label file instead;
`--dataset digits --train-subset 0 --test-subset 0` uses all of digits.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from comining import engine, evidence, noise_rate
from comining.config import resolve
from comining.selection import CLEAN
from comining.noise import parse_noise


def mixture_posterior(values: np.ndarray) -> np.ndarray:
    """Per sample, the posterior of the lower-valued component of a two-component mixture (as shipped)."""
    span = np.ptp(values)
    scaled = ((values - values.min()) / span)[:, None]
    fitted = GaussianMixture(2, max_iter=300, tol=1e-5, reg_covar=1e-4, n_init=3, random_state=0).fit(scaled)
    return fitted.predict_proba(scaled)[:, int(np.argmin(fitted.means_.ravel()))]


def save_passes(args, name: str, seed: int, overrides: dict) -> None:
    cfg = resolve({"dataset": args.dataset, "train_subset": args.train_subset or None,
                   "test_subset": args.test_subset or None,
                   "method": "comining", "forget_rate": "auto", "seed": seed, "quiet": True, **overrides})
    trainer = engine.Trainer(cfg)
    saved = {}
    for epoch in range(trainer.method.second_estimate_after):
        record = {"epoch": epoch + 1, **trainer.train_epoch(epoch)}
        for which, due in enumerate((trainer.method.first_estimate_after, trainer.method.second_estimate_after)):
            if epoch + 1 == due:  # 0: after warm-up, 1: at the second estimate
                probs = evidence.plain_probabilities(trainer.method, trainer.data, trainer.views, trainer.precision, 512)
                saved[f"probs{which}"] = probs.float().cpu().numpy()
                saved[f"clean{which}"] = (trainer.selections.status == CLEAN).cpu().numpy()
        if trainer.forget.estimate_due(epoch + 1):
            trainer.estimate_forget_rate(record)
        trainer.history.append(record)
    np.savez_compressed(args.out / f"{name}-seed{seed}.npz", given=trainer.data.labels.cpu().numpy(),
                        true=trainer.data.true_labels.cpu().numpy(), realised=trainer.data.noise["wrong_labels"],
                        **saved)


def compare(path: pathlib.Path) -> str:
    d = np.load(path)
    given, real = d["given"], float(d["realised"])
    rows = np.arange(len(given))
    warm, second = (np.clip(d[f"probs{i}"][rows, given].astype(np.float64), 1e-6, 1 - 1e-6) for i in (0, 1))
    clean = d["clean1"]
    estimates = {
        "mixture": mixture_posterior(second).mean(),
        "logit": mixture_posterior(np.log(second) - np.log1p(-second)).mean(),
        "warm-up on C": np.where(clean, mixture_posterior(warm), mixture_posterior(second)).mean(),
        "C and D apart": (mixture_posterior(second[clean]).sum() + mixture_posterior(second[~clean]).sum()) / len(given),
        "disagreement": (d["probs1"].argmax(axis=1) != given).mean(),
        "confident joint at warm-up": noise_rate.confident_joint_noise_rate(d["probs0"], given),
    }
    cells = "  ".join(f"{k} {v:.3f} ({v - real:+.3f})" for k, v in estimates.items())
    kept_wrong = ((given != d["true"]) & clean).mean()
    return (f"{path.stem:28s} realised {real:.3f}  {cells}  wrong labels in C {kept_wrong:.3f} of all  "
            f"concentration {noise_rate.disagreement_concentration(d['probs1'], given):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--rows", default="sym20,sym50,sym80,asym40,sym20-open20")
    parser.add_argument("--seeds", default="4,5,6")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--train-subset", type=int, default=3200)
    parser.add_argument("--test-subset", type=int, default=2000)
    parser.add_argument("--labels", help="a label file to train on instead of the rows' synthetic noise")
    parser.add_argument("--label-key", default=None)
    parser.add_argument("--compare", action="store_true", help="only compare the passes saved in --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if not args.compare:
        for seed in (int(s) for s in args.seeds.split(",")):
            if args.labels:
                save_passes(args, f"{pathlib.Path(args.labels).stem}-{args.label_key}", seed,
                            {"labels": args.labels, "label_key": args.label_key})
                continue
            for row in args.rows.split(","):
                kind, rate, open_ratio = parse_noise(row)
                save_passes(args, row, seed, {"noise_type": kind, "closed_rate": rate, "open_ratio": open_ratio or 0.0})
    for path in sorted(args.out.glob("*.npz")):
        print(compare(path), flush=True)


if __name__ == "__main__":
    main()
