"""In-memory data sources: digits, Fashion-MNIST (IDX), CIFAR-10/100 (restricted pickles)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from comining.data import ARRAY_SOURCES, load_arrays
from comining.data import cifar, digits, fashion_mnist
from comining.data.safe_pickle import load_pickle
from comining.errors import UserError


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


# --- registry ---------------------------------------------------------------------------------

def test_registry_names_and_unknown_name():
    assert set(ARRAY_SOURCES) == {"digits", "fashion-mnist", "cifar10", "cifar100"}
    with pytest.raises(UserError) as exc:
        load_arrays("mnist", None)
    msg = _one_line(exc)
    assert "mnist" in msg and "cifar10" in msg and "digits" in msg


# --- digits -----------------------------------------------------------------------------------

def test_digits_shapes_split_and_scaling():
    d = load_arrays("digits", None)
    assert d.name == "digits" and d.classes == [str(i) for i in range(10)]
    assert d.train_images.shape == (1437, 1, 8, 8) and d.test_images.shape == (360, 1, 8, 8)
    assert d.train_images.dtype == torch.uint8 and d.train_images.is_contiguous()
    assert d.train_labels.dtype == np.int64 and d.test_labels.dtype == np.int64
    assert d.train_labels.shape == (1437,) and d.test_labels.shape == (360,)
    assert set(d.train_labels) == set(range(10)) and set(d.test_labels) == set(range(10))
    assert int(d.train_images.max()) == 255 and int(d.train_images.min()) == 0
    # Each pixel is one of the 17 scaled levels round(v*255/16).
    levels = {int(np.floor(v * 255 / 16 + 0.5)) for v in range(17)}
    assert set(torch.unique(d.train_images).tolist()) <= levels
    again = digits.load()
    assert torch.equal(again.test_images, d.test_images)
    assert np.array_equal(again.test_labels, d.test_labels)


# --- Fashion-MNIST ----------------------------------------------------------------------------

def _idx(array: np.ndarray, magic: int | None = None, dims: list[int] | None = None) -> bytes:
    dims = list(array.shape) if dims is None else dims
    magic = (0x0800 | array.ndim) if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + array.astype(np.uint8).tobytes()


def _write_fashion(folder: Path, n_train=5, n_test=3, gz=True, overrides=None):
    rng = np.random.RandomState(0)
    arrays = {
        "train_images": rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train_labels": rng.randint(0, 10, n_train).astype(np.uint8),
        "test_images": rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "test_labels": rng.randint(0, 10, n_test).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in fashion_mnist.FILES.items():
        payload = (overrides or {}).get(key) or _idx(arrays[key])
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(payload))
        else:
            (folder / stem).write_bytes(payload)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_tiny_set_round_trips(tmp_path, gz):
    arrays = _write_fashion(tmp_path / "fashion-mnist", gz=gz)
    d = fashion_mnist.load(tmp_path)  # root/fashion-mnist is searched
    assert d.train_images.shape == (5, 1, 28, 28) and d.test_images.shape == (3, 1, 28, 28)
    assert d.train_images.dtype == torch.uint8 and d.train_images.is_contiguous()
    assert np.array_equal(d.train_images[:, 0].numpy(), arrays["train_images"])
    assert np.array_equal(d.test_images[:, 0].numpy(), arrays["test_images"])
    assert np.array_equal(d.train_labels, arrays["train_labels"].astype(np.int64))
    assert d.train_labels.dtype == np.int64
    assert d.classes[0] == "T-shirt/top" and d.classes[9] == "Ankle boot"


def test_fashion_root_itself(tmp_path):
    arrays = _write_fashion(tmp_path)
    d = load_arrays("fashion-mnist", str(tmp_path))
    assert np.array_equal(d.test_labels, arrays["test_labels"].astype(np.int64))


def _bad(tmp_path, **overrides):
    _write_fashion(tmp_path, overrides=overrides)
    with pytest.raises(UserError) as exc:
        fashion_mnist.load(tmp_path)
    return _one_line(exc)


def test_fashion_wrong_magic(tmp_path):
    labels = np.zeros(5, np.uint8)
    msg = _bad(tmp_path, train_labels=_idx(labels, magic=0x00000803))
    assert "train-labels-idx1-ubyte" in msg and "magic" in msg


def test_fashion_header_size_disagreement(tmp_path):
    images = np.zeros((5, 28, 28), np.uint8)
    msg = _bad(tmp_path, train_images=_idx(images, dims=[6, 28, 28]))
    assert "train-images-idx3-ubyte" in msg and "[6, 28, 28]" in msg


def test_fashion_truncated_gzip(tmp_path):
    _write_fashion(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(UserError) as exc:
        fashion_mnist.load(tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in _one_line(exc)


def test_fashion_not_gzip_at_all(tmp_path):
    _write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip data at all")
    with pytest.raises(UserError) as exc:
        fashion_mnist.load(tmp_path)
    assert "t10k-labels-idx1-ubyte.gz" in _one_line(exc)


def test_fashion_count_mismatch(tmp_path):
    msg = _bad(tmp_path, test_labels=_idx(np.zeros(4, np.uint8)))
    assert "3 images" in msg and "4 labels" in msg


def test_fashion_label_out_of_range(tmp_path):
    msg = _bad(tmp_path, train_labels=_idx(np.array([0, 1, 2, 13, 3], np.uint8)))
    assert "train-labels-idx1-ubyte" in msg and "label 13, above 9" in msg  # 13: not in a temporary path


def test_fashion_real_files():
    if not any(fashion_mnist.is_complete(d) for d in fashion_mnist.candidate_dirs(None)):
        pytest.skip("Fashion-MNIST files absent; apt-get install dataset-fashion-mnist")
    d = load_arrays("fashion-mnist", None)
    assert d.train_images.shape == (60000, 1, 28, 28) and d.test_images.shape == (10000, 1, 28, 28)
    assert d.train_labels.shape == (60000,) and d.test_labels.shape == (10000,)
    assert np.bincount(d.train_labels).tolist() == [6000] * 10
    assert np.bincount(d.test_labels).tolist() == [1000] * 10
    assert len(d.classes) == 10


# --- CIFAR ------------------------------------------------------------------------------------

def _rows(n: int, seed: int) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (n, 3072)).astype(np.uint8)


def _dump(path: Path, obj, protocol) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def _write_cifar10(folder: Path, protocol=2, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"c{i}" for i in range(10)]
    train = []
    for i in range(1, 6):
        data, labels = _rows(n, i), [(i + j) % 10 for j in range(n)]
        train.append((data, labels))
        _dump(folder / f"data_batch_{i}", {b"batch_label": b"b", b"data": data, b"labels": labels,
                                           b"filenames": [b"f.png"] * n}, protocol)
    test = (_rows(n, 99), [9 - j for j in range(n)])
    _dump(folder / "test_batch", {b"data": test[0], b"labels": test[1]}, protocol)
    _dump(folder / "batches.meta", {b"label_names": [s.encode() for s in names], b"num_vis": 3072},
          protocol)
    return train, test, names


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, 5])
def test_cifar10_round_trip(tmp_path, protocol):
    train, test, names = _write_cifar10(tmp_path / "cifar-10-batches-py", protocol)
    d = load_arrays("cifar10", str(tmp_path))
    assert d.name == "cifar10" and d.classes == names
    assert d.train_images.shape == (20, 3, 32, 32) and d.test_images.shape == (4, 3, 32, 32)
    assert d.train_images.dtype == torch.uint8 and d.train_images.is_contiguous()
    all_rows = np.concatenate([t[0] for t in train])
    assert np.array_equal(d.train_images.reshape(20, 3072).numpy(), all_rows)
    assert d.train_labels.dtype == np.int64
    assert d.train_labels.tolist() == sum((t[1] for t in train), [])
    assert d.test_labels.tolist() == test[1]
    # Plane order: the first 1024 values are red, row-major; value 1029 is green at row 0, col 5.
    row = all_rows[0]
    assert int(d.train_images[0, 0, 0, 0]) == row[0]
    assert int(d.train_images[0, 0, 1, 2]) == row[32 + 2]
    assert int(d.train_images[0, 1, 0, 5]) == row[1024 + 5]
    assert int(d.train_images[0, 2, 31, 31]) == row[3071]


def test_cifar10_folder_itself_and_str_keys(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    _dump(folder / "batches.meta", {"label_names": [f"k{i}" for i in range(10)]}, 4)
    d = cifar.load_cifar10(folder)
    assert d.classes[3] == "k3" and len(d.train_labels) == 20


def test_cifar10_python2_style_pickle(tmp_path):
    """The original files name numpy.core.multiarray and hold Python 2 str objects."""
    folder = tmp_path / "cifar-10-batches-py"
    train, _, _ = _write_cifar10(folder)
    data = _rows(4, 7)
    (folder / "data_batch_1").write_bytes(_py2_batch(data, [1, 2, 3, 4]))
    d = cifar.load_cifar10(tmp_path)
    assert np.array_equal(d.train_images[:4].reshape(4, 3072).numpy(), data)
    assert d.train_labels[:4].tolist() == [1, 2, 3, 4]


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """Hand-written protocol 2 pickle as Python 2's cPickle writes a CIFAR batch (str = bytes)."""
    def s(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b
    dtype = (b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R(K\x03" + s(b"|")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    raw = data.tobytes()
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
             + b"(K\x01" + b"M" + struct.pack("<H", data.shape[0]) + b"M" + struct.pack("<H", 3072)
             + b"\x86" + dtype + b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb")
    label_list = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return b"\x80\x02}(" + s(b"data") + array + s(b"labels") + label_list + b"u."


def _write_cifar100(folder: Path, protocol):
    folder.mkdir(parents=True, exist_ok=True)
    train = (_rows(6, 1), [0, 99, 50, 1, 2, 3])
    test = (_rows(2, 2), [98, 7])
    _dump(folder / "train", {b"data": train[0], b"fine_labels": train[1], b"coarse_labels": [0] * 6},
          protocol)
    _dump(folder / "test", {b"data": test[0], b"fine_labels": test[1], b"coarse_labels": [0] * 2},
          protocol)
    names = [f"fine{i}" for i in range(100)]
    _dump(folder / "meta", {b"fine_label_names": [n.encode() for n in names],
                            b"coarse_label_names": [b"x"] * 20}, protocol)
    return train, test, names


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
def test_cifar100_round_trip(tmp_path, protocol):
    train, test, names = _write_cifar100(tmp_path / "cifar-100-python", protocol)
    d = load_arrays("cifar100", str(tmp_path))
    assert d.classes == names and d.name == "cifar100"
    assert d.train_images.shape == (6, 3, 32, 32) and d.test_images.shape == (2, 3, 32, 32)
    assert np.array_equal(d.train_images.reshape(6, 3072).numpy(), train[0])
    assert np.array_equal(d.test_images.reshape(2, 3072).numpy(), test[0])
    assert d.train_labels.tolist() == train[1] and d.test_labels.tolist() == test[1]
    assert int(d.test_images[1, 2, 0, 1]) == test[0][1, 2048 + 1]


def test_cifar_missing_folder(tmp_path):
    with pytest.raises(UserError) as exc:
        cifar.load_cifar10(tmp_path)
    msg = _one_line(exc)
    assert "CIFAR-10 not found" in msg and "cifar-10-batches-py" in msg and "--data-root" in msg
    with pytest.raises(UserError) as exc:
        cifar.load_cifar100(tmp_path)
    assert "cifar-100-python" in _one_line(exc)


def test_cifar_missing_test_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    (folder / "test_batch").unlink()
    with pytest.raises(UserError) as exc:
        cifar.load_cifar10(tmp_path)
    assert "test_batch" in _one_line(exc)


def test_cifar_wrong_content(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    _dump(folder / "data_batch_3", {b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, 2)
    with pytest.raises(UserError) as exc:
        cifar.load_cifar10(tmp_path)
    assert "data_batch_3" in _one_line(exc)
    _dump(folder / "data_batch_3", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, 2)
    with pytest.raises(UserError):
        cifar.load_cifar10(tmp_path)
    _dump(folder / "data_batch_3", {b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, 2)
    with pytest.raises(UserError):
        cifar.load_cifar10(tmp_path)


def test_cifar_truncated_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    path = folder / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(UserError) as exc:
        cifar.load_cifar10(tmp_path)
    assert "data_batch_2" in _one_line(exc)
    path.write_bytes(b"")
    with pytest.raises(UserError):
        cifar.load_cifar10(tmp_path)


class _SystemPayload:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _OpenPayload:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


class _EvalPayload:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (eval, (f"open({str(self.target)!r}, 'w')",))


@pytest.mark.parametrize("payload", [_SystemPayload, _OpenPayload, _EvalPayload])
@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
def test_cifar_malicious_pickle_is_refused(tmp_path, payload, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    target = tmp_path / "pwned"
    _dump(folder / "data_batch_1", {b"data": payload(target), b"labels": [0]}, protocol)
    with pytest.raises(UserError) as exc:
        cifar.load_cifar10(tmp_path)
    assert "data_batch_1" in _one_line(exc)
    assert not target.exists()
    with pytest.raises(UserError):
        load_pickle(folder / "data_batch_1")
    assert not target.exists()


def test_load_pickle_missing_file(tmp_path):
    with pytest.raises(UserError) as exc:
        load_pickle(tmp_path / "nope")
    assert "nope" in _one_line(exc)


def test_fashion_incomplete_root_is_reported(tmp_path):
    _write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError) as exc:
        fashion_mnist.load(tmp_path)
    assert "t10k-labels-idx1-ubyte" in _one_line(exc) and "incomplete" in str(exc.value)


def test_fashion_not_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(UserError) as exc:
        fashion_mnist.load(tmp_path / "empty")
    assert "apt-get install dataset-fashion-mnist" in _one_line(exc)
