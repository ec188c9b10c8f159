"""Multi-process training with PyTorch's DistributedDataParallel, launched by ``torchrun``.

``torchrun --nproc_per_node N -m comining train ...`` starts N processes; each takes its share of
every batch, DDP averages the gradients, and the pieces below keep the rest consistent: memory banks
receive the features of all ranks, the verdicts of all ranks are merged, and only rank 0 writes.
Without torchrun's environment every function here is the single-process identity.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """Whether torchrun (or another launcher) set up a process group environment."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name: str) -> torch.device:
    """Join the process group (NCCL on GPUs, gloo on CPUs) and return this rank's device."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Rows of every rank, rank 0's first (every rank must pass the same number of rows)."""
    if not active():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Element-wise ``op`` ("sum" or "max") over ranks (in place, returned for convenience)."""
    if active():
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, op.upper()))
    return tensor


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) to every rank.
    DDP broadcasts them before each forward, so after the last step of an epoch each rank holds
    statistics of its own last batch; evaluation and checkpoints should all see rank 0's."""
    if active():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def any_rank(flag: bool, device) -> bool:
    """True on every rank when it is true on any: lets all ranks stop at the same step."""
    return bool(reduce(torch.tensor(float(flag), device=device), "max").item()) if active() else flag


def gather_objects(obj) -> list:
    """A picklable object from every rank, in rank order (RNG states at checkpoints, readings of the
    noise rate and the probe, skipped files)."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
