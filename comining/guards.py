"""What keeps a run safe: the loss monitor that stops on a non-finite loss, and graceful signals."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import torch

from comining import distributed
from comining.errors import TrainingStopped


class LossMonitor:
    """Sums an epoch's loss terms on the device and remembers the first step with a non-finite term.
    Checking means one synchronisation, so on a GPU it happens every ``check_every`` steps only."""

    def __init__(self, device, check_every: int):
        self.device, self.check_every = device, check_every
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.bad_step = torch.tensor(-1, device=device)
        self.bad_terms = None

    def add(self, terms: dict, step: int, epoch: int) -> None:
        values = torch.stack([v.detach().float() for v in terms.values()])
        for name, value in zip(terms, values):
            self.sums[name] = self.sums.get(name, 0) + value
        self.steps += 1
        bad = ~torch.isfinite(values)
        first = bad.any() & (self.bad_step < 0)
        self.bad_step = torch.where(first, step, self.bad_step)
        self.bad_terms = bad if self.bad_terms is None else torch.where(first, bad, self.bad_terms)
        self._names = list(terms)
        if (step + 1) % self.check_every == 0:
            self.check(epoch)

    def check(self, epoch: int) -> None:
        # Under DDP every rank learns of a bad step on any rank, so all stop together instead of the
        # others waiting forever in the next collective for the one that stopped.
        # One max-reduction: of the negated step (so the earliest bad step over ranks) and of the flags.
        none = torch.iinfo(torch.long).max
        step = torch.where(self.bad_step < 0, none, self.bad_step).view(1)
        terms = self.bad_terms.long() if self.bad_terms is not None else step.new_zeros(0)
        negated, *bad = distributed.reduce(torch.cat([-step, terms]), "max").tolist()
        if -negated != none:
            raise NonFiniteLoss(epoch, -negated, [n for n, b in zip(self._names, bad) if b])

    def means(self) -> dict:
        return {name: float(total) / max(self.steps, 1) for name, total in self.sums.items()}

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "steps": self.steps}

    @classmethod
    def from_state(cls, state: dict, device, check_every: int) -> "LossMonitor":
        monitor = cls(device, check_every)
        monitor.sums = {name: value.to(device) for name, value in state["sums"].items()}
        monitor.steps = state["steps"]
        return monitor


class NonFiniteLoss(TrainingStopped):
    def __init__(self, epoch: int, step: int, terms: list[str]):
        self.epoch, self.step, self.terms = epoch, step, terms
        super().__init__(f"loss term {'/'.join(terms)} became non-finite at epoch {epoch + 1}, step {step + 1}; "
                         "nothing from this epoch was saved, the last checkpoint is intact: resume with "
                         "`comining train --resume RUN_DIR --lr SMALLER` or `--precision fp32`")


class Interrupted(TrainingStopped):
    """SIGINT or SIGTERM: the run saved a checkpoint and stops; the exit status is 128 + the signal."""

    def __init__(self, signame: str, epochs_done: int, steps_done: int, run):
        self.exit_code = 128 + signal.Signals[signame].value
        where = (f"after step {steps_done} of epoch {epochs_done + 1}" if steps_done
                 else f"at the end of epoch {epochs_done}")
        how = f"; resume with `comining train --resume {run.path}`" if run is not None else ""
        super().__init__(f"{signame} received: checkpoint saved {where}{how}")


@contextlib.contextmanager
def stop_on_signals(trainer):
    """SIGINT/SIGTERM ask the trainer to stop after its current step; a second one exits at once.
    Every file of the run directory is replaced atomically, so exiting at once never leaves half a
    file: at worst the checkpoint of the step before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_signal is not None:
            raise SystemExit(128 + signum)
        trainer.stop_signal = signal.Signals(signum).name
        print(f"\n{trainer.stop_signal}: stopping after this step (send it again to exit at once)",
              file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
