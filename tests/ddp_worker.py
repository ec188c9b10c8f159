"""Run by tests/test_distributed.py under torchrun: train a few steps, dump this rank's state.

Every write into the run directory is logged per rank, so the test can check that only rank 0 wrote;
the sample indices of every batch this rank trained on are dumped, and (rank 0) the whole batches
a single process would have drawn, so the test can check the sharding.
"""

import sys

import torch

from comining import distributed, rundir
from comining.config import resolve
from comining.engine import Trainer

out, dump, method = sys.argv[1], sys.argv[2], sys.argv[3]
original_write = rundir.atomic_write


def logged_write(path, data):
    with open(f"{dump}/writes-rank{distributed.rank()}.log", "a") as log:
        log.write(f"{path}\n")
    original_write(path, data)


rundir.atomic_write = logged_write
# 330 samples in batches of 64: five full batches an epoch, the last 10 samples dropped.
# Co-mining estimates its forget rate (auto) after epoch 1, and again after epoch 2.
cfg = resolve({"method": method, "train_subset": 330, "epochs": 2, "warmup_epochs": 1, "batch_size": 64,
               "bank": 256, "quiet": True, "out": out, **({"forget_rate": "auto"} if method == "comining" else {})})
trainer = Trainer(cfg, out)
trained_on = []  # per batch, this rank's share of the indices
unsharded = trainer.data.batches


def logged_batches(*args, **kwargs):
    for index, images, labels in unsharded(*args, **kwargs):
        trained_on.append(index.cpu())
        yield index, images, labels


trainer.data.batches = logged_batches
trainer.fit()
whole = [[index.cpu() for index, _, _ in unsharded(epoch, cfg.batch_size, cfg.seed)] for epoch in range(cfg.epochs)]
state = {"params": trainer.method_state(), "ledger": trainer.selections.state_dict(),
         "banks": [bank.state_dict() for bank in getattr(trainer.method, "banks", [])],
         "trained_on": trained_on, "whole_batches": whole, "forget_rate": trainer.forget.target}
torch.save(state, f"{dump}/rank{trainer.rank}.pt")
distributed.cleanup()
