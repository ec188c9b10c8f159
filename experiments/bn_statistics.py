"""Do batch-norm running statistics cost Co-mining test accuracy? (issue 11, docs/RESULTS.md)

Co-mining forwards each batch's weak and strong views together, so the running statistics that
evaluation uses mix both. For each finished run directory given, this prints the test accuracy as
trained and after recomputing the statistics (a cumulative average, no weight changes) over the
training images' weak, test-time and strong views. Usage:

    OMP_NUM_THREADS=1 python experiments/bn_statistics.py study/cpu-screen/default/sym50-comining-seed1 ...
"""

from __future__ import annotations

import copy
import sys

import torch
from torch.optim.swa_utils import update_bn

from comining import hardware
from comining.engine import Trainer


def recompute_statistics(trainer: Trainer, kind: str) -> None:
    """Reset every batch-norm layer and average its statistics over one pass of ``kind`` views
    (PyTorch's ``update_bn``: a cumulative average, the networks' weights untouched). Seeded, so the
    random weak and strong views, and with them the printed figures, repeat."""
    hardware.seed_everything(trainer.cfg.seed)
    for net in trainer.method.nets:
        views = (trainer.views(images, kind) for _, images in trainer.data.ordered_batches(trainer.cfg.eval_batch_size))
        with hardware.autocast(trainer.device, trainer.precision):
            update_bn(views, net)


def main() -> None:
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    for path in sys.argv[1:]:
        trainer = Trainer.resume(path, {"quiet": True})
        trained = copy.deepcopy(trainer.method.state_dict())
        line = [path, f"as trained {trainer.evaluate()[0]:.2f}"]
        for kind in ("weak", "test", "strong"):
            trainer.method.load_state_dict(trained)
            recompute_statistics(trainer, kind)
            line.append(f"{kind} {trainer.evaluate()[0]:.2f}")
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
