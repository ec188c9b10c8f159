"""Device, numeric precision and random-number state of a run."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from comining.errors import UserError


def slow_on_cpu(arch: str, crop_size: int, device: torch.device, frozen: bool) -> str | None:
    """What to say before training a whole ``arch`` on ``crop_size``-px crops on ``device`` where that
    takes hours; None where it does not (a GPU, a frozen backbone's head, the small CNN, small crops)."""
    # An architecture registers whether it is slow: a ResNet-18 on 224-px crops took 165 s an epoch for
    # 2,000 images on 2 cores (docs/PERFORMANCE.md, (f)); a ResNet-50, or 448 px, more.
    from comining.models import about

    if device.type != "cpu" or frozen or not about(arch).slow_on_cpu or crop_size < 128:
        return None
    return (f"training a whole {arch} on {crop_size}-px crops on a CPU is slow (a ResNet-18 at 224 px: about 80 ms "
            "an image an epoch on 2 cores, hours for thousands of images); for a first look use pretrained --weights "
            "with --backbone frozen, or --arch small --rescale-size 40 --crop-size 32")


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


# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) below AVX512_CORE_BF16: kernels without bf16 instructions.
# Other values (AVX512_CORE_BF16, the AMX and AVX10 ones, ALL, DEFAULT) leave bf16 native.
ONEDNN_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
EMULATED = "where bf16 is emulated and slower than fp32"


def native_bf16(device: torch.device) -> bool:
    """Whether the hardware computes bfloat16 natively (CUDA with bf16; CPUs with AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(cpu_bf16_features())


def cpu_bf16_features() -> list[str]:
    """The CPU's bf16 instruction sets, by the names Intel gives them (empty: none)."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return [name for flag, name in (("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX-BF16")) if caps.get(flag)]


def precision_choice(requested: str, device: torch.device) -> tuple[str, str]:
    """(precision, a short phrase why) for --precision ``requested`` on ``device``: 'auto' is bf16 only
    where the kernels that will run compute it natively, on a CPU the CPU's bf16 instructions, PyTorch's
    kernels built for AVX512 and oneDNN (convolutions, matrix products) not limited below AVX512_CORE_BF16
    all at once: emulated bf16 trains about 9x slower than fp32."""
    if requested != "auto":
        return requested, f"{requested}: as asked with --precision"
    if device.type == "cuda":
        if native_bf16(device):
            return "bf16", "bf16: the GPU computes bf16 natively"
        return "fp32", f"fp32: this GPU has no native bf16, {EMULATED}"
    if device.type != "cpu":
        return "fp32", f"fp32: bf16 is chosen automatically on CUDA GPUs and CPUs only, not on {device.type}"
    if not native_bf16(device):
        return "fp32", f"fp32: the CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16), {EMULATED}"
    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.startswith("AVX512"):
        lowered = os.environ.get("ATEN_CPU_CAPABILITY")
        cause = f" (ATEN_CPU_CAPABILITY={lowered})" if lowered else ""
        return "fp32", f"fp32: PyTorch runs {capability} kernels here{cause}, {EMULATED}"
    if not torch.backends.mkldnn.is_available():
        return "fp32", f"fp32: this PyTorch has no oneDNN, whose kernels bf16 convolutions need, {EMULATED}"
    limit = next(((name, os.environ[name]) for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
                  if os.environ.get(name)), None)  # oneDNN reads the ONEDNN_ name first
    if limit and limit[1].strip().upper() in ONEDNN_WITHOUT_BF16:
        return "fp32", f"fp32: oneDNN is limited to {limit[1]} ({limit[0]}={limit[1]}), {EMULATED}"
    return "bf16", (f"bf16: the CPU computes bf16 natively ({', '.join(cpu_bf16_features())}) "
                    f"and PyTorch runs its {capability} kernels")


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision a run computes in: ``name`` unless 'auto', which ``precision_choice`` decides."""
    return precision_choice(name, device)[0]


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
