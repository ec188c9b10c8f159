"""A new method, or a new architecture, is one new file: the registries find it, and the command line,
its help, the settings and the table follow. Checked on a copy of the package with one file added."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import comining

pytestmark = pytest.mark.slow  # copies the package and trains in subprocesses: `make test`, not the edit loop

PROBE_METHOD = '''
"""Probe: cross-entropy on the given labels, scaled by its one option."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from comining.errors import UserError
from comining.methods import Method, register
from comining.selection import CLEAN
from comining.setting import setting


@dataclass
class ProbeOptions:
    probe_weight: float = setting(1.0, "scale of the loss", metavar="W")

    @classmethod
    def validate(cls, cfg) -> None:
        if cfg.probe_weight <= 0:
            raise UserError(f"--probe-weight {cfg.probe_weight} must be positive")


@register("probe")
class Probe(Method):
    title = "Probe"
    Options = ProbeOptions

    def loss(self, views, labels, index, epoch, rate):
        logits, _ = self.nets[0](views[0])
        per_sample = F.cross_entropy(logits.float(), labels, reduction="none")
        self.selections.record(index, CLEAN, per_sample)
        return self.cfg.probe_weight * per_sample.mean(), {"ce": per_sample.mean()}
'''

PROBE_ARCH = '''
"""A linear probe on the flattened image."""

from torch import nn

from comining.models import register


class Flat(nn.Module):
    def __init__(self, in_channels, num_classes, image_size):
        super().__init__()
        self.feature_dim = in_channels * image_size * image_size
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x):
        feats = x.float().flatten(1)
        return self.fc(feats), feats


@register("flat", "every pixel, one layer", slow_on_cpu=True)
def flat(in_channels, num_classes, image_size):
    return Flat(in_channels, num_classes, image_size)
'''


@pytest.fixture(scope="module")
def package_with_new_files(tmp_path_factory):
    """A copy of the comining package with methods/probe.py and models/flat.py added, and nothing else."""
    root = tmp_path_factory.mktemp("pkg")
    shutil.copytree(Path(comining.__file__).parent, root / "comining",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "comining" / "methods" / "probe.py").write_text(PROBE_METHOD)
    (root / "comining" / "models" / "flat.py").write_text(PROBE_ARCH)
    return root


def run(root: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "comining", *map(str, args)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_new_method_and_architecture_train_from_one_file_each(package_with_new_files, tmp_path):
    out = tmp_path / "run"
    result = run(package_with_new_files, "train", "--method", "probe", "--probe-weight", "0.5", "--arch", "flat",
                 "--epochs", "2", "--train-subset", "200", "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "probe" and config["probe_weight"] == 0.5 and config["arch"] == "flat"
    assert json.loads((out / "results.json").read_text())["epochs"] == 2
    # Registered as slow on a CPU: a run of it on large crops is warned before it starts.
    env = {**os.environ, "PYTHONPATH": str(package_with_new_files)}
    warning = subprocess.run([sys.executable, "-c", "import torch; from comining.hardware import slow_on_cpu; "
                              "print(slow_on_cpu('flat', 224, torch.device('cpu'), frozen=False))"],
                             cwd=package_with_new_files, env=env, capture_output=True, text=True, timeout=120).stdout
    assert "training a whole flat on 224-px crops on a CPU is slow" in warning
    refused = run(package_with_new_files, "train", "--method", "probe", "--probe-weight", "0", "--quiet")
    assert refused.returncode == 2 and "--probe-weight 0" in refused.stderr  # its own validation


def test_the_help_and_the_table_know_the_new_method(package_with_new_files, tmp_path):
    text = run(package_with_new_files, "train", "--help-all").stdout
    assert "Probe options (--method probe):" in text and "--probe-weight" in text
    assert "flat (every pixel, one layer)" in " ".join(text.split())  # the new architecture, as registered
    assert "probe" in run(package_with_new_files, "train", "--help").stdout  # among the methods named
    out = tmp_path / "grid"
    result = run(package_with_new_files, "table", "--methods", "probe,standard", "--noise", "sym40", "--epochs", "1",
                 "--train-subset", "100", "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "| Probe | Standard |" in (out / "table.md").read_text().replace("| Noise ", "")
