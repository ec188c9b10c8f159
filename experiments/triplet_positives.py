"""Who are the triplet loss's "hard positives"? A diagnostic on a finished Co-mining run.

The semi-hard triplet loss (docs/METHOD.md, step 7) pulls each confident anchor towards the positives
(bank entries with the anchor's *given* label) it is least similar to. On noisy data those are the
entries most likely to carry a wrong label. This script measures that on a trained run: it embeds
the run's training images (test view), rebuilds a bank from the run's confident set H (the lowest
scores of the last epoch), and for every anchor of H reports how often its 5 hardest positives are
mislabelled, against the share of mislabelled entries in the bank as a whole; and how often its 5
hardest negatives are truly of the anchor's own class.

    .venv/bin/python experiments/triplet_positives.py RUN_DIR [--bank 4096] [--rank 0:5] [--bank-from all]

Run it on a run stopped at the end of warm-up (``--epochs`` = ``--warmup-epochs``) with
``--bank-from all`` to see the bank that selection starts with.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from comining.data import load_arrays
from comining.predict import load_networks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--bank", type=int, default=4096)
    parser.add_argument("--bank-from", choices=["confident", "all"], default="confident",
                        help="what the bank holds: the confident set H (after selection started) or every "
                             "sample (what warm-up leaves in it)")
    parser.add_argument("--rank", default="0:5", help="rank range of the positives and negatives, lo:hi")
    args = parser.parse_args()
    lo, hi = (int(v) for v in args.rank.split(":"))

    nets, info, cfg = load_networks(args.run, torch.device("cpu"))
    data = load_arrays(cfg["dataset"], cfg["data_root"])
    images = data.train_images[: info["train_size"]].float() / 255
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in info["normalize"])
    with torch.no_grad():
        feats = torch.cat([nets[0](((chunk - mean) / std))[1] for chunk in images.split(512)])
    feats = F.normalize(feats.float(), dim=1)

    rows = list(csv.DictReader(open(Path(args.run) / "verdicts.csv")))
    names = {name: i for i, name in enumerate(info["classes"])}
    given = torch.tensor([names[r["given_label"]] for r in rows])
    true = torch.tensor([names[r["true_label"]] for r in rows])
    score = torch.tensor([float(r["score"]) for r in rows])
    clean = torch.tensor([r["verdict"] == "clean" for r in rows])
    # H: the confident half of the clean set, by the last epoch's score; the bank holds the newest of them.
    order = torch.where(clean, score, torch.full_like(score, float("inf"))).argsort()
    confident = order[: int(clean.sum()) // 2]
    pool = confident if args.bank_from == "confident" else torch.arange(len(rows))
    bank = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))[: args.bank]]

    sim = feats[confident] @ feats[bank].T
    same_given = given[confident, None] == given[None, bank]
    sim_pos = sim.masked_fill(~same_given | (confident[:, None] == bank[None, :]), float("inf"))
    sim_neg = sim.masked_fill(same_given, float("-inf"))
    hard_pos = bank[sim_pos.topk(hi, dim=1, largest=False).indices[:, lo:]]
    hard_neg = bank[sim_neg.topk(hi, dim=1, largest=True).indices[:, lo:]]
    wrong = given != true
    report = {
        "run": args.run, "anchors": len(confident), "bank": len(bank),
        "bank_mislabelled": round(wrong[bank].float().mean().item(), 4),
        "hard_positive_mislabelled": round(wrong[hard_pos].float().mean().item(), 4),
        "hard_negative_truly_same_class": round((true[hard_neg] == true[confident, None]).float().mean().item(), 4),
        "rank": f"{lo}:{hi}", "bank_from": args.bank_from,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
