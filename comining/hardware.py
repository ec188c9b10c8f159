"""Device, numeric precision and random-number state of a run."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from comining.errors import UserError


def resolve_device(name: str) -> torch.device:
    """'auto' → the first CUDA GPU if there is one, else the CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for a GPU but PyTorch sees none: use --device cpu or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name} names GPU {device.index}, but PyTorch sees "
                        f"{torch.cuda.device_count()}: use --device cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether the hardware computes bfloat16 natively (CUDA with bf16; CPUs with AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def resolve_precision(name: str, device: torch.device) -> str:
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


def autocast(device: torch.device, precision: str):
    """bfloat16 autocast for the forward pass; the losses cast logits back to float32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every generator's state in types a weights-only checkpoint may hold (no numpy arrays)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
