"""Do batch-norm running statistics cost Co-mining test accuracy? (issue 11, docs/RESULTS.md)

Co-mining forwards each batch's weak and strong views together, so the running statistics that
evaluation uses mix both. For each finished run directory given, this prints the test accuracy as
trained and after recomputing the statistics (a cumulative average, no weight changes) over the
training images' weak, test-time and strong views. Usage:

    python experiments/bn_statistics.py study/cpu-screen/default/sym50-comining-seed1 ...
"""

from __future__ import annotations

import copy
import sys

import torch

from comining import hardware
from comining.engine import Trainer


def recompute_statistics(trainer: Trainer, kind: str) -> None:
    """Reset every batch-norm layer and average its statistics over one pass of ``kind`` views."""
    layers = [m for m in trainer.method.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the whole pass
    trainer.method.train()
    with torch.no_grad():
        for _, images in trainer.data.ordered_batches(trainer.cfg.eval_batch_size):
            x = trainer.views(images, kind)
            with hardware.autocast(trainer.device, trainer.precision):
                for net in trainer.method.nets:
                    net(x)


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
