"""--backbone frozen: cached features of a frozen network and a head trained on them.

On hand-built image folders (three classes of patterned 24-px PNGs): the cache is keyed by each
file's content (a changed file is computed again, the others reused), a second run decodes no image,
concurrent writers leave a readable cache, `comining cache` lists and clears it; a TorchScript
extractor trains Co-mining end to end, and its run predicts, reviews and exports like any other,
while predict refuses the extractor once the file changed; an offline ImageNet download is one line
naming the file and where to put it; --backbone auto picks frozen only where the issue says.
"""

from __future__ import annotations

import csv
import json
import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comining import config
from comining.data import decode as decode_module
from comining.data import feature_cache as feature_cache_module
from comining.data.feature_cache import FeatureCache
from comining.data.features import FeatureData, stack_views
from comining.errors import UserError
from comining.models.backbone import feature_width, restore_backbone
from conftest import cli_runner

CLASSES = ("disc", "ring", "stripe")


def pattern(kind: int, rng: np.random.RandomState, side: int = 24) -> np.ndarray:
    """A noisy RGB picture of class ``kind``: a bright disc, a ring, or vertical stripes."""
    y, x = np.mgrid[:side, :side] - side / 2
    radius = np.hypot(x, y)
    shape = [radius < 6, (radius > 6) & (radius < 9), (np.arange(side)[None, :] % 6 < 3) & (radius < 99)][kind]
    image = rng.randint(0, 60, (side, side, 3)) + 180 * shape[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def write_folder(root: Path, per_class: int = 10, val: int = 3) -> list[str]:
    """root/train/<class>/ (one image per class wrongly placed in the next class) and root/val/<class>/;
    returns the training files relative to root."""
    rng = np.random.RandomState(0)
    files = []
    for c, name in enumerate(CLASSES):
        for j in range(per_class):
            kind = (c + 1) % 3 if j == 0 else c
            rel = f"train/{name}/{j:02d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pattern(kind, rng)).save(root / rel)
            files.append(rel)
        for j in range(val):
            (root / f"val/{name}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(pattern(c, rng)).save(root / f"val/{name}/{j:02d}.png")
    return files


def frozen_cfg(root: Path, cache: Path, **extra):
    return config.resolve({"dataset": "folder", "data_root": str(root), "backbone": "frozen", "arch": "small",
                           "weights": "none", "rescale_size": 24, "crop_size": 16, "workers": 0,
                           "cache_dir": str(cache), "batch_size": 8, "quiet": True, **extra})


def features_of(cfg) -> FeatureData:
    data = FeatureData(cfg, "cpu", progress=False)
    data.prepare(("weak", "strong"))
    return data


@pytest.fixture
def folder(tmp_path) -> Path:
    write_folder(tmp_path / "data")
    return tmp_path / "data"


def test_a_changed_file_is_computed_again_and_the_others_reused(folder, tmp_path):
    cfg = frozen_cfg(folder, tmp_path / "cache")
    first = features_of(cfg)
    assert (first.computed, first.cached) == (39, 0)  # 30 training and 9 evaluation images
    assert first.images.shape == (30, 1 + 2 * cfg.feature_views, first.feature_dim)
    again = features_of(cfg)
    assert (again.computed, again.cached) == (0, 39)
    assert torch.equal(again.images, first.images) and torch.equal(again.test_images, first.test_images)

    changed = "train/ring/03.png"
    Image.fromarray(pattern(2, np.random.RandomState(7))).save(folder / changed)
    third = features_of(cfg)
    assert (third.computed, third.cached) == (1, 38)
    # More views than the cache holds: the new views of every training image are computed, and the
    # summary must not call those images cached.
    more = features_of(frozen_cfg(folder, tmp_path / "cache", feature_views=cfg.feature_views + 1))
    assert (more.computed, more.cached) == (30, 9)

    position = third.sample_names().index(changed)
    others = [i for i in range(30) if i != position]
    assert torch.equal(third.images[others], first.images[others])
    assert not torch.equal(third.images[position, 0], first.images[position, 0])  # not served stale


def test_identical_files_are_counted_once_each_as_computed(tmp_path):
    write_folder(tmp_path / "data")
    twin = tmp_path / "data" / "train" / "ring" / "twin.png"
    twin.write_bytes((tmp_path / "data" / "train" / "ring" / "03.png").read_bytes())  # same content, same key
    data = features_of(frozen_cfg(tmp_path / "data", tmp_path / "cache"))
    assert (data.computed, data.cached) == (40, 0)  # 31 training and 9 evaluation images


def test_the_key_holds_the_backbone_and_the_geometry(folder, tmp_path):
    features_of(frozen_cfg(folder, tmp_path / "cache"))
    for other in ({"seed": 2}, {"crop_size": 24}, {"arch": "cnn"}):  # other random weights, geometry, network
        data = features_of(frozen_cfg(folder, tmp_path / "cache", **other))
        assert (data.computed, data.cached) == (39, 0), other


def test_two_stages_widen_the_features_and_end_in_the_last_stages_own(folder, tmp_path):
    """The small CNN at 16 px: its last convolution's map is 64 × 2 × 2 (256 values) before its
    128-wide hidden layer. Two stages are 256 + 128 columns, the last 128 of them the features that
    one stage gives; each has its own cache folder, and one stage's recipe is as it was before stages
    could be chosen, so the caches written then are still found."""
    one = features_of(frozen_cfg(folder, tmp_path / "cache", feature_stages=1))
    two = features_of(frozen_cfg(folder, tmp_path / "cache", feature_stages=2))
    assert (one.feature_dim, two.feature_dim, two.backbone["last_dim"], two.computed) == (128, 384, 128, 39)
    assert torch.equal(two.images[..., -128:], one.images)
    recipes = [entry["recipe"] for entry in FeatureCache(tmp_path / "cache").usage()]
    assert sorted(r.get("stages", 1) for r in recipes) == [1, 1, 1, 2, 2, 2]  # un-augmented, weak, strong
    assert "last 2 stages" in two.summary()["backbone"] and "stages" not in one.summary()["backbone"]
    rebuilt = restore_backbone(two.backbone, "the run")  # as predict rebuilds it from data.json
    assert feature_width(rebuilt, 3, 16, "rebuilt") == 384
    with pytest.raises(UserError, match=r"--feature-stages 3: --arch small offers 2"):
        features_of(frozen_cfg(folder, tmp_path / "cache", feature_stages=3))


def test_the_probe_reads_the_last_stage_only(folder, tmp_path):
    """The noise rate's probe is fitted on the classifier's input alone, whatever the head trains on."""
    from comining.engine import Trainer

    two, one = (Trainer(frozen_cfg(folder, tmp_path / "cache", feature_stages=stages, forget_rate="auto"),
                        tmp_path / f"run{stages}") for stages in (2, 1))
    assert (two.data.feature_dim, one.data.feature_dim) == (384, 128)
    assert np.array_equal(two.probe_features(), one.probe_features())


def test_the_cache_remembers_an_array_until_it_is_damaged(tmp_path, monkeypatch):
    cache, calls = FeatureCache(tmp_path / "cache"), []
    folder = cache.folder({"kind": "test"})

    def compute():
        calls.append(1)
        return np.arange(6.0).reshape(3, 2)

    first = cache.remembered(folder, "probe-abc", (3, 2), compute)
    again = cache.remembered(folder, "probe-abc", (3, 2), compute)
    assert len(calls) == 1 and np.array_equal(first, again)
    for damage in (b"half a file", b""):
        (folder / "probe-abc.npy").write_bytes(damage)
        assert np.array_equal(cache.remembered(folder, "probe-abc", (3, 2), compute), first)
    assert len(calls) == 3
    # Another shape is not that array: computed anew.
    assert np.array_equal(cache.remembered(folder, "probe-abc", (4, 2), lambda: np.zeros((4, 2))), np.zeros((4, 2)))
    assert cache.usage()[0]["samples"] == 0  # not a chunk of features

    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(feature_cache_module, "atomic_write", full_disk)  # a cache that cannot be written to
    assert np.array_equal(cache.remembered(folder, "probe-new", (3, 2), compute), first)
    assert not (folder / "probe-new.npy").exists()


def test_a_second_frozen_run_reads_the_probe_back_from_the_cache(folder, tmp_path, monkeypatch):
    from comining import probe
    from comining.engine import Trainer

    cfg = frozen_cfg(folder, tmp_path / "cache", forget_rate="auto")
    first = Trainer(cfg, tmp_path / "run1").probe_probabilities()
    monkeypatch.setattr(probe, "out_of_fold_probabilities", lambda *a: pytest.fail("fitted the probe again"))
    assert np.array_equal(Trainer(cfg, tmp_path / "run2").probe_probabilities(), first, equal_nan=True)
    with pytest.raises(pytest.fail.Exception):  # another seed draws other folds: fitted anew
        Trainer(frozen_cfg(folder, tmp_path / "cache", forget_rate="auto", seed=2), tmp_path / "run3").probe_probabilities()


def test_another_seed_with_the_same_weights_file_reuses_the_cache(folder, tmp_path):
    """Only the backbone's features key the cache: a weights file for 4 classes leaves the 1000-way
    classifier at a random draw from --seed, which computes no feature."""
    from comining.models import build_model
    weights = tmp_path / "four_classes.pt"
    torch.manual_seed(0)
    torch.save(build_model("small", 3, 4, 16).state_dict(), weights)
    first = features_of(frozen_cfg(folder, tmp_path / "cache", weights=str(weights), seed=1))
    again = features_of(frozen_cfg(folder, tmp_path / "cache", weights=str(weights), seed=2))
    assert (first.computed, again.computed, again.cached) == (39, 0, 39)
    assert torch.equal(again.images, first.images)
    assert first.backbone["sha256"] != again.backbone["sha256"]  # the whole state differs, as predict checks it


def test_a_second_run_decodes_no_image(folder, tmp_path, monkeypatch):
    cfg = frozen_cfg(folder, tmp_path / "cache")
    calls = []
    real = decode_module.decode

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decode_module, "decode", counting)
    features_of(cfg)
    assert len(calls) >= 39  # the check and the features of every image
    calls.clear()
    data = features_of(cfg)
    assert calls == [] and data.cached == 39


def test_concurrent_writers_leave_a_valid_cache(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    folder = cache.folder({"kind": "test", "count": 1})
    keys = [f"{i:040x}" for i in range(64)]
    value = {key: torch.full((1, 5), float(i), dtype=torch.float16) for i, key in enumerate(keys)}
    errors = []

    def writer(part: int):
        try:
            for rep in range(10):  # every writer writes its own chunks and the shared one, at once
                mine = keys[part * 16:(part + 1) * 16]
                for chunk in (mine, keys[:8]):
                    cache.store(folder, chunk, torch.stack([value[k] for k in chunk]))
        except Exception as err:  # noqa: BLE001  reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(part,)) for part in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found, rows = cache.fill(folder, keys, torch.zeros(64, 1, 5, dtype=torch.float16))
    assert rows == set(range(64))
    assert all(torch.equal(found[i], value[k]) for i, k in enumerate(keys))
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_damaged_chunk_is_computed_again(folder, tmp_path):
    cfg = frozen_cfg(folder, tmp_path / "cache")
    features_of(cfg)
    for chunk in (tmp_path / "cache").rglob("*.pt"):
        chunk.write_bytes(chunk.read_bytes()[:100])
    data = features_of(cfg)
    assert data.computed == 39


def test_cache_command_lists_and_clears(folder, tmp_path, run_main):
    cache = tmp_path / "cache"
    features_of(frozen_cfg(folder, cache))
    listed = run_main("cache", "--cache-dir", cache)
    assert listed.returncode == 0, listed.stderr
    assert "3 recipe(s)" in listed.stdout and listed.stdout.count("30 images") == 2, listed.stdout
    assert "39 images" in listed.stdout and "comining cache --clear" in listed.stdout
    # A folder of the user's beside the recipes (--cache-dir pointed one level too high) is not the cache's.
    (cache / "photos").mkdir()
    (cache / "photos" / "a.png").write_bytes(b"mine")
    (cache / "notes.txt").write_text("mine")
    cleared = run_main("cache", "--cache-dir", cache, "--clear")
    assert cleared.returncode == 0 and "freed" in cleared.stdout and "2 other entries left" in cleared.stdout
    assert not list(cache.rglob("*.pt"))
    assert (cache / "photos" / "a.png").read_bytes() == b"mine" and (cache / "notes.txt").exists()
    assert "empty" in run_main("cache", "--cache-dir", cache).stdout
    # A folder that holds no cache at all is refused, and keeps everything.
    refused = run_main("cache", "--cache-dir", cache, "--clear")
    assert refused.returncode == 2 and len(refused.stderr_lines) == 1 and "nothing removed" in refused.stderr
    assert (cache / "photos" / "a.png").exists()


def test_an_offline_download_is_one_line_naming_the_file_and_where_it_goes(folder, tmp_path, monkeypatch,
                                                                           run_main):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    result = run_main("train", "--dataset", "folder", "--data-root", folder, "--backbone", "frozen",
                      "--arch", "resnet18", "--weights", "imagenet", "--cache-dir", tmp_path / "cache")
    assert result.returncode == 2 and len(result.stderr_lines) == 1, result.stderr
    line = result.stderr_lines[0]
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in line
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in line
    assert not (tmp_path / "cwd" / "runs").exists()  # nothing trained on random weights instead


def test_auto_is_frozen_for_own_image_sets_on_a_cpu_with_pretrained_weights(folder, tmp_path):
    base = {"dataset": "folder", "data_root": str(folder), "device": "cpu"}
    cfg = config.resolve(base)  # the web preset: ImageNet weights
    assert cfg.backbone == "frozen" and (cfg.rescale_size, cfg.crop_size) == (256, 224)
    # a head's schedule, not the preset's fine-tuning one, unless asked
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs, cfg.schedule) == ("adam", 0.001, 64, 40, "linear")
    assert config.resolve({**base, "batch_size": 25}).batch_size == 25
    assert config.resolve({**base, "backbone": "finetune"}).optimizer == "sgd"
    # a group the user touched keeps the preset's values whole: no SGD at Adam's rate, no decay past the end
    sgd = config.resolve({**base, "optimizer": "sgd"})
    assert (sgd.optimizer, sgd.lr, sgd.weight_decay) == ("sgd", 0.01, 1e-5)
    short = config.resolve({**base, "epochs": 10})
    assert (short.epochs, short.schedule, short.warmup_epochs) == (10, "cosine", 10) and short.optimizer == "adam"
    assert config.resolve({**base, "crop_size": 160}).crop_size == 160
    assert config.resolve({**base, "backbone": "finetune"}).crop_size == 448
    assert config.resolve({**base, "weights": "none"}).backbone == "finetune"  # from scratch: no features
    assert config.resolve({**base, "backbone_file": "x.pt", "weights": "none"}).backbone == "frozen"
    assert config.resolve({"dataset": "web-bird", "device": "cpu"}).backbone == "finetune"
    assert config.resolve({"dataset": "digits"}).backbone == "finetune"
    assert config.resolve({"dataset": "digits", "backbone": "frozen"}).backbone == "frozen"
    with pytest.raises(UserError, match="--backbone-file"):
        config.resolve({**base, "backbone": "finetune", "backbone_file": "x.pt"})


def test_in_memory_sets_take_frozen_too(tmp_path):
    cfg = config.resolve({"dataset": "digits", "backbone": "frozen", "weights": "none", "train_subset": 100,
                          "test_subset": 50, "cache_dir": str(tmp_path / "cache")})
    data = features_of(cfg)
    assert data.images.shape[:2] == (100, 5) and data.test_images.shape[:2] == (50, 1)
    assert data.true_labels is not None and data.reads_files is False
    assert features_of(cfg).cached == 150


# -- a TorchScript extractor, end to end ------------------------------------------------------------

class TinyExtractor(torch.nn.Module):
    def __init__(self, width: int = 6):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean((2, 3))


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory):
    """Co-mining trained by the CLI on a folder with a scripted extractor: (run dir, extractor file, runner)."""
    base = tmp_path_factory.mktemp("scripted")
    root = base / "data"
    write_folder(root)
    torch.manual_seed(0)
    extractor = base / "extractor.pt"
    torch.jit.save(torch.jit.script(TinyExtractor()), str(extractor))
    run = cli_runner(base / "cwd")
    result = run("train", "--dataset", "folder", "--data-root", root, "--backbone-file", extractor,
                 "--head", "mlp", "--rescale-size", "24", "--crop-size", "16", "--epochs", "4", "--warmup-epochs",
                 "1", "--batch-size", "8", "--workers", "0", "--cache-dir", base / "cache", "--out", base / "run",
                 "--quiet")
    assert result.returncode == 0, result.stderr
    return base / "run", extractor, run, result.stdout


def test_a_scripted_extractor_trains_comining_and_writes_verdicts(scripted_run):
    run_dir, extractor, _, stdout = scripted_run
    with open(run_dir / "verdicts.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30 and {r["verdict"] for r in rows} <= {"clean", "relabelled", "discarded"}
    info = json.loads((run_dir / "data.json").read_text())
    assert info["backbone"]["kind"] == "torchscript" and info["backbone"]["dim"] == 6
    assert info["backbone"]["file"] == str(extractor.resolve())
    assert json.loads((run_dir / "config.json").read_text())["backbone"] == "frozen"
    assert "backbone: frozen TorchScript extractor.pt, a mlp head" in stdout
    assert "--backbone finetune" in stdout


def test_review_and_export_work_on_a_frozen_run(scripted_run, tmp_path):
    run_dir, _, run, _ = scripted_run
    review = run("review", run_dir)
    assert review.returncode == 0 and (run_dir / "review.html").is_file(), review.stderr
    exported = run("export", run_dir, "--out", tmp_path / "labels.csv")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "labels.csv").read_text().startswith("path,label")


def test_predict_uses_the_extractor_and_refuses_a_changed_one(scripted_run, tmp_path):
    run_dir, extractor, run, _ = scripted_run
    image = tmp_path / "new.png"
    Image.fromarray(pattern(0, np.random.RandomState(3))).save(image)
    ok = run("predict", "--run", run_dir, image, "--output", tmp_path / "p.csv")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "p.csv").read_text().splitlines()[1].split(",")[1] in CLASSES

    original = extractor.read_bytes()
    try:
        torch.manual_seed(1)
        torch.jit.save(torch.jit.script(TinyExtractor()), str(extractor))
        refused = run("predict", "--run", run_dir, image, "--output", tmp_path / "q.csv")
    finally:
        extractor.write_bytes(original)
    assert refused.returncode == 2 and len(refused.stderr_lines) == 1, refused.stderr
    assert str(extractor.resolve()) in refused.stderr and "changed" in refused.stderr
    assert not (tmp_path / "q.csv").exists()


def test_an_extractor_that_does_not_return_rows_is_one_line(folder, tmp_path):
    class Maps(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x  # images, not features

    path = tmp_path / "maps.pt"
    torch.jit.save(torch.jit.script(Maps()), str(path))
    with pytest.raises(UserError, match=r"one row of features per image"):
        FeatureData(frozen_cfg(folder, tmp_path / "cache", backbone_file=str(path)), "cpu", progress=False)


def test_a_frozen_co_mining_run_trains_on_the_un_augmented_and_the_strong_view(folder, tmp_path, monkeypatch):
    """A frozen backbone cannot learn invariance to augmentation, so Co-mining's first view is the
    un-augmented one there (--aug ts): only it and the strong views are cached (1 + K per image, not
    1 + 2K), training asks for those two kinds, and the final pass reads the test view once. --aug
    given by the user, and fine-tuning, keep weak and strong."""
    from comining import evidence
    from comining.data.features import FeatureViews
    from comining.engine import Trainer

    cfg = frozen_cfg(folder, tmp_path / "cache", epochs=2, warmup_epochs=1, forget_rate=0.1)
    assert cfg.aug == "ts"
    asked = []
    call = FeatureViews.__call__
    monkeypatch.setattr(FeatureViews, "__call__", lambda self, x, kind: asked.append(kind) or call(self, x, kind))
    trainer = Trainer(cfg, tmp_path / "run")
    assert set(trainer.data.layout) == {"test", "strong"}
    assert trainer.data.images.shape[1] == 1 + cfg.feature_views
    trainer.fit()
    assert {"test", "strong"} <= set(asked) and "weak" not in asked
    assert evidence.final_view_kinds(trainer.method) == ("test",)
    assert frozen_cfg(folder, tmp_path / "cache", aug="ws").aug == "ws"
    assert config.resolve({"dataset": "folder", "data_root": str(folder), "backbone": "finetune"}).aug == "ws"


def test_stack_views_fills_each_kind_in_place_and_widens_where_float16_cannot_hold():
    written = []

    def fetch(kind, count, out):  # kind "test" holds 1, "strong" 2; the second kind's values overflow float16
        value = {"test": 1.5, "strong": 70000.0}[kind]
        written.append((kind, tuple(out.shape), out.dtype))
        if value > torch.finfo(torch.float16).max:
            return torch.full(out.shape, value, dtype=torch.float32)
        out.fill_(value)
        return out

    images, layout = stack_views(3, 4, [("test", 1)], fetch)
    assert layout == {"test": (0, 1)} and images.dtype == torch.float16
    assert torch.equal(images, torch.full((3, 1, 4), 1.5, dtype=torch.float16))  # written through the slice

    written.clear()
    images, layout = stack_views(3, 4, [("test", 1), ("strong", 2)], fetch)
    assert written == [("test", (3, 1, 4), torch.float16), ("strong", (3, 2, 4), torch.float16)]
    assert layout == {"test": (0, 1), "strong": (1, 2)}
    assert images.dtype == torch.float32 and images.shape == (3, 3, 4)
    assert torch.equal(images[:, 0], torch.full((3, 4), 1.5)) and torch.equal(images[:, 1:], torch.full((3, 2, 4), 70000.0))


class _Pooled(torch.nn.Module):
    """A model written to the registry's contract alone: (logits, features) and feature_dim."""

    def __init__(self, in_channels, num_classes, image_size):
        super().__init__()
        self.feature_dim = in_channels
        self.fc = torch.nn.Linear(in_channels, num_classes)

    def forward(self, x):
        features = x.mean(dim=(2, 3))
        return self.fc(features), features


def test_a_registered_model_without_stages_serves_as_a_one_stage_frozen_backbone(monkeypatch):
    from comining.models import MODELS
    from comining.models.backbone import build_arch
    monkeypatch.setitem(MODELS, "pooled", _Pooled)
    extractor = build_arch("pooled", "none", 3, 8, seed=0, progress=False)
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    assert torch.equal(extractor(images), images.mean(dim=(2, 3)))  # forward's features, as the contract says
    with pytest.raises(UserError, match="--feature-stages 2: --arch pooled offers 1"):
        build_arch("pooled", "none", 3, 8, seed=0, progress=False, stages=2)
