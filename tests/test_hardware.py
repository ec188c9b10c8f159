"""--precision: auto picks bf16 only where the kernels that will run compute it natively, says why,
and autocast computes in the precision chosen.

That bf16 trains as well as fp32 is checked in test_end_to_end.py, on the session's digits runs."""

import json
import subprocess
import sys

import pytest
import torch

from comining import hardware
from conftest import _cli_env

CPU = torch.device("cpu")
HAS_BF16_KERNELS = torch.backends.cpu.get_cpu_capability().startswith("AVX512") and bool(hardware.cpu_bf16_features())
ONEDNN_LIMITS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def test_auto_picks_bf16_only_where_the_hardware_computes_it(monkeypatch):
    monkeypatch.setattr(hardware, "native_bf16", lambda device: False)
    assert hardware.resolve_precision("auto", CPU) == "fp32"
    assert hardware.precision_choice("auto", CPU) == (
        "fp32", "fp32: the CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16), where bf16 is emulated and "
                "slower than fp32")
    assert hardware.resolve_precision("fp32", CPU) == "fp32"  # an explicit choice is kept
    assert hardware.precision_choice("bf16", CPU) == ("bf16", "bf16: as asked with --precision")


@pytest.mark.skipif(not HAS_BF16_KERNELS, reason="this CPU runs no native bf16 kernels")
def test_auto_picks_bf16_where_the_cpu_and_pytorch_compute_it(monkeypatch):
    for name in ONEDNN_LIMITS:
        monkeypatch.delenv(name, raising=False)
    precision, why = hardware.precision_choice("auto", CPU)
    assert precision == hardware.resolve_precision("auto", CPU) == "bf16"
    assert why.startswith("bf16: the CPU computes bf16 natively (")
    assert why.endswith("and PyTorch runs its AVX512 kernels")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")  # a limit above bf16 changes nothing
    assert hardware.resolve_precision("auto", CPU) == "bf16"


def choice_under(**env) -> list:
    """[resolve_precision, precision_choice] of 'auto' on the CPU in a fresh Python with ``env`` set:
    PyTorch reads ATEN_CPU_CAPABILITY once, when it starts. The CPU is taken to have bf16
    instructions, so the answer turns on the kernels only, whatever CPU runs the test."""
    code = ("import json, torch; from comining import hardware as h; h.cpu_bf16_features = lambda: ['AVX512-BF16'];"
            "cpu = torch.device('cpu');"
            "print(json.dumps([h.resolve_precision('auto', cpu), h.precision_choice('auto', cpu)]))")
    base = {k: v for k, v in _cli_env().items() if k not in ("ATEN_CPU_CAPABILITY", *ONEDNN_LIMITS)}
    proc = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_auto_picks_fp32_where_pytorch_runs_avx2_kernels():
    assert choice_under(ATEN_CPU_CAPABILITY="avx2") == [
        "fp32", ["fp32", "fp32: PyTorch runs AVX2 kernels here (ATEN_CPU_CAPABILITY=avx2), where bf16 is emulated "
                         "and slower than fp32"]]


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() != "AVX512", reason="PyTorch runs no AVX512 kernels here")
@pytest.mark.parametrize("name, value", [("ONEDNN_MAX_CPU_ISA", "AVX2"), ("DNNL_MAX_CPU_ISA", "avx512_core_vnni")])
def test_auto_picks_fp32_where_onednn_is_limited_below_bf16(name, value):
    assert choice_under(**{name: value}) == [
        "fp32", ["fp32", f"fp32: oneDNN is limited to {value} ({name}={value}), where bf16 is emulated and "
                         "slower than fp32"]]


def test_the_autocast_region_computes_in_the_chosen_precision():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with hardware.autocast(torch.device("cpu"), "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with hardware.autocast(torch.device("cpu"), "fp32"):
        assert layer(x).dtype == torch.float32


def test_a_whole_resnet_on_large_crops_on_a_cpu_is_announced_as_slow():
    from comining.hardware import slow_on_cpu
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert "hours for thousands of images" in slow_on_cpu("resnet50", 448, cpu, frozen=False)
    assert "--backbone frozen" in slow_on_cpu("resnet18", 224, cpu, frozen=False)
    assert slow_on_cpu("resnet50", 448, gpu, frozen=False) is None
    assert slow_on_cpu("resnet50", 448, cpu, frozen=True) is None  # a head on cached features: minutes
    assert slow_on_cpu("small", 448, cpu, frozen=False) is None and slow_on_cpu("resnet18", 32, cpu, False) is None
