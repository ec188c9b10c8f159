"""Run by tests/test_distributed.py under torchrun: train a few steps, dump this rank's state.

Every write into the run directory is logged per rank, so the test can check that only rank 0 wrote.
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
cfg = resolve({"method": method, "train_subset": 320, "epochs": 2, "warmup_epochs": 1, "batch_size": 64,
               "bank": 256, "quiet": True, "out": out})
trainer = Trainer(cfg, out)
trainer.fit()
state = {"params": trainer.method_state(), "ledger": trainer.ledger.state_dict(),
         "banks": [bank.state_dict() for bank in getattr(trainer.method, "banks", [])]}
torch.save(state, f"{dump}/rank{trainer.rank}.pt")
distributed.cleanup()
