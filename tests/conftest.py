"""Shared fixtures: tiny data sets in their real on-disk layouts, a runner for the real CLI, and the
trained digits runs that several test files check (trained once per session)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# Under pytest-xdist (`make test` runs -n auto) the workers share the cores: give each its share of
# threads, so two workers on two cores do not run four compute threads.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# --- data writers -----------------------------------------------------------------------------

def _dump(path: Path, obj, protocol: int = 2) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def _balanced_labels(n: int, num_classes: int, rng: np.random.RandomState) -> list[int]:
    """n labels with every class as equally often as n allows, in random order."""
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    return [int(v) for v in labels]


def write_cifar10(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """A tiny CIFAR-10 in the python-pickle layout: root/cifar-10-batches-py/{data_batch_1..5,
    test_batch, batches.meta}, bytes keys as the original Python 2 files have. Returns the folder."""
    rng = np.random.RandomState(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per_batch = np.array_split(np.arange(n_train), 5)
    labels = _balanced_labels(n_train, 10, rng)
    for i, idx in enumerate(per_batch, start=1):
        data = rng.randint(0, 256, (len(idx), 3072)).astype(np.uint8)
        _dump(folder / f"data_batch_{i}", {b"batch_label": f"training batch {i} of 5".encode(), b"data": data,
                                            b"labels": [labels[j] for j in idx],
                                            b"filenames": [f"img{j}.png".encode() for j in idx]})
    _dump(folder / "test_batch", {b"batch_label": b"testing batch 1 of 1",
                                  b"data": rng.randint(0, 256, (n_test, 3072)).astype(np.uint8),
                                  b"labels": _balanced_labels(n_test, 10, rng)})
    _dump(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)],
                                    b"num_cases_per_batch": per_batch[0].size, b"num_vis": 3072})
    return folder


def write_cifar100(root: Path, n_train: int = 400, n_test: int = 200, seed: int = 0) -> Path:
    """A tiny CIFAR-100 in the python-pickle layout: root/cifar-100-python/{train, test, meta}.
    Every fine class appears equally often, so classes 80–99 are exactly 20 % of the images."""
    rng = np.random.RandomState(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = _balanced_labels(n, 100, rng)
        _dump(folder / name, {b"filenames": [f"{name}{j}.png".encode() for j in range(n)],
                              b"batch_label": name.encode(), b"fine_labels": fine,
                              b"coarse_labels": [v // 5 for v in fine],
                              b"data": rng.randint(0, 256, (n, 3072)).astype(np.uint8)})
    _dump(folder / "meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]})
    return folder


def _idx(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_fashion_mnist(folder: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> Path:
    """The four gzip-compressed IDX files of a tiny Fashion-MNIST, directly in ``folder``."""
    rng = np.random.RandomState(seed)
    arrays = {
        "train_images": rng.randint(0, 256, (n_train, 28, 28)),
        "train_labels": rng.randint(0, 10, n_train),
        "test_images": rng.randint(0, 256, (n_test, 28, 28)),
        "test_labels": rng.randint(0, 10, n_test),
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in FASHION_FILES.items():
        (folder / (stem + ".gz")).write_bytes(gzip.compress(_idx(np.asarray(arrays[key]))))
    return folder


@pytest.fixture
def cifar10_root(tmp_path) -> Path:
    root = tmp_path / "data"
    write_cifar10(root)
    return root


@pytest.fixture
def cifar100_root(tmp_path) -> Path:
    root = tmp_path / "data"
    write_cifar100(root)
    return root


# --- the CLI in a subprocess ------------------------------------------------------------------

@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # Small CPU runs: no GPU, one thread each (the test machines have few cores).
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    env.setdefault("MPLCONFIGDIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "comining-test-mpl"))
    return env


def cli_runner(workdir: Path):
    """A function running ``python -m comining ARGS...`` in ``workdir`` (created), returning a CliResult."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    def run(*args, timeout: float = 300) -> CliResult:
        proc = subprocess.run([sys.executable, "-m", "comining", *map(str, args)], cwd=workdir, env=_cli_env(),
                              capture_output=True, text=True, timeout=timeout)
        return CliResult(proc.returncode, proc.stdout, proc.stderr, workdir)

    return run


@pytest.fixture
def run_cli(tmp_path):
    """Run the real CLI in a subprocess whose cwd is a fresh folder under tmp_path (no runs/ in the repo)."""
    return cli_runner(tmp_path / "cwd")


@pytest.fixture
def run_main(tmp_path, capsys):
    """Like run_cli, but through comining.cli.main in this process: the same parser and error
    handling without the seconds each new interpreter spends importing torch. For commands that
    stop before training (a training run belongs in a subprocess, with its own threads and signals)."""
    from comining import cli

    cwd = tmp_path / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)

    def run(*args) -> CliResult:
        capsys.readouterr()
        here = os.getcwd()
        os.chdir(cwd)
        try:
            status = cli.main([str(a) for a in args])
        except SystemExit as stop:  # argparse's own errors
            status = stop.code
        finally:
            os.chdir(here)
        captured = capsys.readouterr()
        return CliResult(status, captured.out, captured.err, cwd)

    return run


def one_torch_thread():
    """One intra-op thread for a module's tests: on a small shared machine two threads contend and
    run ten times slower. Used as ``one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- trained runs shared between test files -----------------------------------------------------

# The demo (digits, 40 % symmetric noise) shortened to 24 epochs annealed from epoch 8: the last 10
# have settled (std about 1 point), and Standard has memorised the wrong labels by then.
DIGITS_SHORT = {"epochs": 24, "epoch_decay_start": 8, "warmup_epochs": 4, "num_gradual": 4, "quiet": True}
DIGITS_RUNS = {"comining-fp32": ("comining", "fp32"), "comining-bf16": ("comining", "bf16"),
               "standard": ("standard", "fp32")}


@pytest.fixture(scope="session")
def digits_runs(tmp_path_factory):
    """The shortened demo for Co-mining (in bf16 and in fp32) and Standard, each trained on first use:
    a function name → (results dict, run directory), name one of DIGITS_RUNS."""
    from comining.config import resolve
    from comining.engine import train

    base = tmp_path_factory.mktemp("digits")
    done = {}

    def get(name: str):
        if name not in done:
            method, precision = DIGITS_RUNS[name]
            out = base / name
            done[name] = train(resolve({**DIGITS_SHORT, "method": method, "precision": precision}), out=out), out
        return done[name]

    return get
