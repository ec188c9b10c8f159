"""--precision: auto picks bf16 only where it is native, and autocast computes in the precision chosen.

That bf16 trains as well as fp32 is checked in test_end_to_end.py, on the session's digits runs."""

import torch

from comining import hardware


def test_auto_picks_bf16_only_where_the_hardware_computes_it(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "native_bf16", lambda device: False)
    assert hardware.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(hardware, "native_bf16", lambda device: True)
    assert hardware.resolve_precision("auto", cpu) == "bf16"
    assert hardware.resolve_precision("fp32", cpu) == "fp32"  # an explicit choice is kept


def test_the_autocast_region_computes_in_the_chosen_precision():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with hardware.autocast(torch.device("cpu"), "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with hardware.autocast(torch.device("cpu"), "fp32"):
        assert layer(x).dtype == torch.float32
