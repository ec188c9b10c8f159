"""Finding wrong labels: comining's final verdicts against cleanlab, where the truth is known.

For one data set and noise setting, trains a Co-mining run (its verdicts: comining.find_label_issues)
and, on the same noisy labels, gives cleanlab.filter.find_label_issues out-of-fold probabilities of
a standard model trained as cleanlab's documentation recommends: a logistic regression on digits; on
other data the same small CNN as ours, plain cross-entropy, K folds, each fold's probabilities taken
at the epoch where its held-out part's given labels are predicted best. Prints precision, recall and
F1 of both, each side's CPU time, and for open-set noise the AUROC of comining's outlier_score and
of cleanlab's OutOfDistribution at telling the open-set samples apart. cleanlab is a benchmark
dependency only (pip install -e '.[test]').

    python benchmarks/label_issues_vs_cleanlab.py --dataset digits --noise sym40
    python benchmarks/label_issues_vs_cleanlab.py --dataset fashion-mnist --noise open \
        --train-subset 3200 --test-subset 2000
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import comining
from comining.config import resolve
from comining.data.augment import Views
from comining.engine import Trainer
from comining.evidence import final_view_kinds, gather
from comining.methods import METHODS

NOISE = {"sym40": {"noise_type": "symmetric", "closed_rate": 0.4, "open_ratio": 0.0},
         "asym40": {"noise_type": "asymmetric", "closed_rate": 0.4, "open_ratio": 0.0},
         "open": {"noise_type": "symmetric", "closed_rate": 0.2, "open_ratio": 0.2}}


def scores(flagged: np.ndarray, wrong: np.ndarray) -> dict:
    caught = int((flagged & wrong).sum())
    precision = caught / max(int(flagged.sum()), 1)
    recall = caught / max(int(wrong.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "flagged": int(flagged.sum())}


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(positive, score))


def run_comining(cfg, out: Path, save_evidence: bool):
    """Train; return (trainer, flag mask, label quality, outlier score, CPU seconds)."""
    start = time.process_time()
    trainer = Trainer(cfg, out=out)
    trainer.fit()
    seconds = time.process_time() - start
    if save_evidence:  # for choosing the rule offline (docs/METHOD.md, "Final verdicts")
        ev = gather(trainer.method, trainer.data, trainer.views, trainer.selections, trainer.precision,
                    cfg.eval_batch_size, cfg.seed, trainer.forget.prior)
        np.savez(out / "evidence.npz", probs=ev.probs, kinds=np.array(final_view_kinds(trainer.method)), labels=ev.labels, history=ev.history,
                 votes=ev.votes if ev.votes is not None else np.zeros(0), prior_rate=ev.prior_rate,
                 history_weight=ev.history_weight,
                 true=trainer.data.true_labels.cpu().numpy(), num_classes=trainer.data.num_classes)
    rows = comining.load_verdicts(out)
    return (trainer, comining.find_label_issues(out), comining.label_quality_scores(out),
            np.array([float(r["outlier_score"]) for r in rows]), seconds)


def logistic_oof(data, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold probabilities of a logistic regression on the pixels (cleanlab's tutorial model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    x = data.images.reshape(len(data), -1).float().numpy() / 255
    model = LogisticRegression(max_iter=1000)
    return cross_val_predict(model, x, data.labels.numpy(), cv=folds, method="predict_proba")


def cnn_oof(cfg, data, folds: int, epochs: int, seed: int) -> np.ndarray:
    """Out-of-fold probabilities of our small CNN trained with plain cross-entropy, per fold taken at
    the epoch whose held-out accuracy on the given labels is highest (early stopping)."""
    from sklearn.model_selection import StratifiedKFold

    from comining.models import build_model

    labels = data.labels
    views = Views(data.crop_size, data.padding, data.flip, data.normalize, False)
    oof = np.zeros((len(data), data.num_classes), dtype=np.float32)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fold, (train_idx, held_idx) in enumerate(splitter.split(np.zeros(len(data)), labels.numpy())):
        torch.manual_seed(seed + fold)
        model = build_model(cfg.arch, data.channels, data.num_classes, data.crop_size)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        train_idx, held_idx = torch.from_numpy(train_idx), torch.from_numpy(held_idx)
        best = -1.0
        for _ in range(epochs):
            model.train()
            order = train_idx[torch.randperm(len(train_idx))]
            for b in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
                index = order[b:b + cfg.batch_size]
                loss = F.cross_entropy(model(views(data.images[index], "weak"))[0], labels[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                probs = torch.cat([model(views(data.images[held_idx[s:s + 512]], "test"))[0].softmax(1)
                                   for s in range(0, len(held_idx), 512)])
            accuracy = float((probs.argmax(1) == labels[held_idx]).float().mean())
            if accuracy > best:
                best, oof[held_idx.numpy()] = accuracy, probs.numpy()
    return oof


def cleanlab_verdicts(labels: np.ndarray, oof: np.ndarray):
    """cleanlab's flags and OOD scores (higher = more outlier) from out-of-fold probabilities."""
    from cleanlab.filter import find_label_issues
    from cleanlab.outlier import OutOfDistribution

    return find_label_issues(labels, oof), 1.0 - OutOfDistribution().fit_score(pred_probs=oof, labels=labels)


def run_cleanlab(cfg, data, folds: int, epochs: int, out: Path):
    """cleanlab's flags, OOD scores and CPU seconds; the out-of-fold probabilities go to out/."""
    start = time.process_time()
    if cfg.dataset == "digits":
        oof = logistic_oof(data, folds, cfg.seed)
    else:
        oof = cnn_oof(cfg, data, folds, epochs, cfg.seed)
    flagged, ood = cleanlab_verdicts(data.labels.numpy(), oof)
    seconds = time.process_time() - start
    np.save(out / "cleanlab_oof.npy", oof)
    return flagged, ood, seconds


def rescore(out: Path, previous: dict) -> dict:
    """A row again from a finished row's saved evidence and cleanlab probabilities, with the current
    rule (``decide`` is a pure function of the evidence, so this equals training again); the CPU
    times are the ones measured when the row ran."""
    from comining.verdicts import decide
    from comining.evidence import Evidence

    saved = np.load(out / "evidence.npz")
    true, labels, num_classes = saved["true"], saved["labels"], int(saved["num_classes"])
    probs = saved["probs"]
    if "kinds" not in saved and len(probs) == 3:  # saved before the strong view left the final pass
        probs = probs[[0, 2]]
    evidence = Evidence(probs=probs, labels=labels, history=saved["history"],
                        votes=saved["votes"] if saved["votes"].size else None,
                        prior_rate=float(saved["prior_rate"]),
                        # evidence saved before the weight was the method's: this benchmark's rows are Co-mining's
                        history_weight=float(saved.get("history_weight", METHODS["comining"].history_weight)))
    final = decide(evidence)
    is_open = true >= num_classes
    wrong = (labels != true) | is_open
    row = {**previous, "comining": {**scores(final.verdict != 0, wrong), "cpu_s": previous["comining"]["cpu_s"]}}
    if is_open.any():
        row["comining"]["ood_auroc"] = auroc(final.outlier_score, is_open)
    if (out / "cleanlab_oof.npy").exists():
        theirs, ood = cleanlab_verdicts(labels, np.load(out / "cleanlab_oof.npy"))
        row["cleanlab"] = {**scores(theirs, wrong), "cpu_s": previous["cleanlab"]["cpu_s"]}
        if is_open.any():
            row["cleanlab"]["ood_auroc"] = auroc(ood, is_open)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--noise", choices=sorted(NOISE), default="sym40")
    parser.add_argument("--method", default="comining", help="whose final verdicts to score (default: comining)")
    parser.add_argument("--train-subset", type=int)
    parser.add_argument("--test-subset", type=int)
    parser.add_argument("--epochs", type=int, help="Co-mining's epochs (default: the data set's preset)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cnn-epochs", type=int, default=30, help="most epochs per fold of cleanlab's CNN")
    parser.add_argument("--out", default="runs/vs-cleanlab")
    parser.add_argument("--save-evidence", action="store_true", help="also write evidence.npz to the run")
    parser.add_argument("--skip-cleanlab", action="store_true")
    parser.add_argument("--rescore", action="store_true",
                        help="recompute the rows in --out/results.jsonl from their saved evidence (no training)")
    args = parser.parse_args()

    if args.rescore:
        for line in (Path(args.out) / "results.jsonl").read_text().splitlines():
            previous = json.loads(line)
            method = previous.get("method", "comining")
            name = f"{previous['dataset']}-{previous['noise']}" + ("" if method == "comining" else f"-{method}")
            print(json.dumps(rescore(Path(args.out) / name, previous)))
        return
    overrides = {"dataset": args.dataset, "method": args.method, **NOISE[args.noise], "train_subset": args.train_subset,
                 "test_subset": args.test_subset, "device": "cpu", "quiet": True}
    if args.epochs:
        overrides["epochs"] = args.epochs
    cfg = resolve({k: v for k, v in overrides.items() if v is not None})
    out = Path(args.out) / f"{args.dataset}-{args.noise}" if args.method == "comining" else \
        Path(args.out) / f"{args.dataset}-{args.noise}-{args.method}"
    print(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads")
    print("command: python " + " ".join(sys.argv))

    trainer, ours, quality, outlier, ours_s = run_comining(cfg, out, args.save_evidence)
    data = trainer.data
    true, given = data.true_labels.cpu().numpy(), data.labels.cpu().numpy()
    is_open = true >= data.num_classes
    wrong = (given != true) | is_open
    row = {"dataset": args.dataset, "noise": args.noise, "method": args.method, "n": len(data), "wrong": int(wrong.sum()),
           "comining": {**scores(ours, wrong), "cpu_s": ours_s}}
    if is_open.any():
        row["comining"]["ood_auroc"] = auroc(outlier, is_open)
    if not args.skip_cleanlab:
        theirs, ood, theirs_s = run_cleanlab(cfg, data, args.folds, args.cnn_epochs, out)
        row["cleanlab"] = {**scores(theirs, wrong), "cpu_s": theirs_s}
        if is_open.any():
            row["cleanlab"]["ood_auroc"] = auroc(ood, is_open)
    print(json.dumps(row, indent=1))
    with open(Path(args.out) / "results.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
