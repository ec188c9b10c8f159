"""The training step never waits on the host.

On a GPU a host synchronisation stalls the launch queue; the operators that cause one are those
that read a value back (``.item()``, ``bool(t)``), produce data-dependent shapes (``nonzero``,
boolean-mask indexing) or copy to the CPU. A TorchDispatchMode sees every operator, so on the CPU
the test can refuse exactly those and show the step's code path is free of them. Where CUDA is
present, the same step also runs under ``torch.cuda.set_sync_debug_mode("error")``.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from comining.config import resolve
from comining.data import autoaugment
from comining.engine import Trainer

SYNCING = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default",
           "aten.is_nonzero.default", "aten.equal.default", "aten._unique2.default",
           "aten.repeat_interleave.Tensor", "aten.masked_scatter_.default"}


class RefuseSync(TorchDispatchMode):
    """Raises on any operator that would make a GPU wait for the host."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func)
        syncs = name in SYNCING
        if name.startswith(("aten.index.Tensor", "aten.index_put")):
            syncs |= any(i is not None and i.dtype == torch.bool for i in args[1])
        if name.startswith("aten._to_copy") and kwargs.get("device") is not None:  # a copy to the host
            syncs |= torch.device(kwargs["device"]).type == "cpu" and args[0].device.type != "cpu"
        if syncs:
            raise AssertionError(f"host synchronisation in the training step: {name}")
        return func(*args, **kwargs)


def test_the_guard_catches_what_it_should():
    x = torch.randn(8)
    for sync in (lambda: x.sum().item(), lambda: x[x > 0], lambda: torch.nonzero(x), lambda: bool(x.sum()),
                 lambda: torch.nn.functional.one_hot(x.long().abs(), 9)):
        with pytest.raises(AssertionError, match="host synchronisation"), RefuseSync():
            sync()


@pytest.mark.parametrize("method", ["comining", "standard", "decoupling", "coteaching", "coteachingplus",
                                    "jocor", "peerlearning", "dividemix"])
def test_training_step_makes_no_host_synchronisation(method, monkeypatch):
    # AutoAugment as a GPU runs it: on the CPU it reads which images drew each operation, a host
    # read that costs nothing there (comining.data.autoaugment.SUBSET_DEVICES).
    monkeypatch.setattr(autoaugment, "SUBSET_DEVICES", set())
    cfg = resolve({"method": method, "train_subset": 256, "batch_size": 64, "epochs": 3, "warmup_epochs": 1,
                   "num_gradual": 2, "bank": 128, "quiet": True})
    trainer = Trainer(cfg)
    trainer.train_epoch(0)  # warm-up fills Co-mining's banks; the step under test selects and mines
    epoch = 1
    index, images, labels = next(trainer.data.batches(epoch, cfg.batch_size, cfg.seed))
    with RefuseSync():  # the views (crop, flip, per-image AutoAugment), the loss and its gradient
        views = [trainer.views(images, kind) for kind in trainer.method.view_kinds]
        loss, terms = trainer.method.loss(views, labels, index, epoch, trainer.forget.at(epoch))
        loss.backward()
    assert torch.isfinite(loss)
    if method == "comining":
        assert {"tri", "re"} <= set(terms)  # the selection and mining path ran, not the warm-up one


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU for torch.cuda.set_sync_debug_mode")
def test_cuda_step_under_sync_debug_mode():
    cfg = resolve({"method": "comining", "train_subset": 256, "batch_size": 64, "epochs": 2, "warmup_epochs": 1,
                   "bank": 128, "quiet": True, "device": "cuda"})
    trainer = Trainer(cfg)
    trainer.train_epoch(0)
    index, images, labels = next(trainer.data.batches(1, cfg.batch_size, cfg.seed))
    views = [trainer.views(images, kind) for kind in trainer.method.view_kinds]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss, _ = trainer.method.loss(views, labels, index, 1, trainer.forget.at(1))
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
