"""comining.models: ResNet-18/50 in torchvision's layout, `--weights none | imagenet | PATH` loading, and
the CNNs' (logits, features) of the documented sizes."""

from __future__ import annotations

import sys

import pytest
import torch

from comining.errors import UserError
from comining.models import MODELS, build_model
from comining.models import weights as weights_module
from comining.models.weights import load_weights

# Names and shapes of torchvision's resnet50 / resnet18 state dicts (torchvision.models.resnet).
RESNET50_KEYS = {
    "conv1.weight": [64, 3, 7, 7],
    "bn1.running_mean": [64],
    "layer1.0.conv1.weight": [64, 64, 1, 1],
    "layer1.0.conv2.weight": [64, 64, 3, 3],
    "layer1.0.conv3.weight": [256, 64, 1, 1],
    "layer1.0.downsample.0.weight": [256, 64, 1, 1],
    "layer1.0.downsample.1.running_var": [256],
    "layer2.0.conv2.weight": [128, 128, 3, 3],
    "layer2.0.downsample.0.weight": [512, 256, 1, 1],
    "layer3.5.bn3.weight": [1024],
    "layer4.0.downsample.0.weight": [2048, 1024, 1, 1],
    "layer4.2.bn3.running_var": [2048],
    "layer4.2.bn3.num_batches_tracked": [],
    "fc.weight": [1000, 2048],
    "fc.bias": [1000],
}
RESNET18_KEYS = {
    "conv1.weight": [64, 3, 7, 7],
    "layer1.1.conv2.weight": [64, 64, 3, 3],
    "layer2.0.downsample.0.weight": [128, 64, 1, 1],
    "layer2.0.downsample.1.weight": [128],
    "layer4.1.bn2.running_mean": [512],
    "fc.weight": [1000, 512],
}


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory):
    """A 1000-class ResNet-50 state dict written as torchvision's files are: torch.save(state_dict)."""
    path = tmp_path_factory.mktemp("weights") / "resnet50.pth"
    torch.manual_seed(0)
    torch.save(build_model("resnet50", 3, 1000, 224).state_dict(), path)
    return path


def test_no_torchvision_needed():
    assert {"resnet18", "resnet50"} <= set(MODELS)
    assert "torchvision" not in sys.modules


@pytest.mark.parametrize("arch, keys, entries, params", [
    ("resnet50", RESNET50_KEYS, 320, 25_557_032), ("resnet18", RESNET18_KEYS, 122, 11_689_512)])
def test_state_dict_has_torchvisions_names_and_shapes(arch, keys, entries, params):
    model = build_model(arch, 3, 1000, 224)
    state = model.state_dict()
    for name, shape in keys.items():
        assert list(state[name].shape) == shape, name
    # The totals of torchvision's models: no extra or missing tensor anywhere.
    assert len(state) == entries
    assert sum(p.numel() for p in model.parameters()) == params


def test_resnet50_is_v1_5_with_the_stride_on_the_bottleneck_3x3():
    # torchvision's (and the ImageNet weights') ResNet-50 is v1.5: the first block of stages 2-4
    # halves the resolution in its 3×3 conv2, not in its 1×1 conv1 as v1 did. Strides are not in
    # a state dict, so the shapes above cannot tell; the spatial sizes every convolution produces do.
    model = build_model("resnet50", 3, 1000, 224).eval()
    sizes = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, i, out, name=name: sizes.__setitem__(name, out.shape[-1]))
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    assert sizes["conv1"] == 112 and sizes["layer1.0.conv1"] == sizes["layer1.0.conv2"] == 56  # after the max-pool
    for stage, before in (("layer2", 56), ("layer3", 28), ("layer4", 14)):
        first = f"{stage}.0"
        assert sizes[f"{first}.conv1"] == before, stage  # the 1×1 keeps the resolution
        assert sizes[f"{first}.conv2"] == sizes[f"{first}.conv3"] == before // 2, stage  # the 3×3 halves it
        assert sizes[f"{first}.downsample.0"] == before // 2, stage
        assert sizes[f"{stage}.1.conv1"] == sizes[f"{stage}.1.conv2"] == before // 2, stage
    assert sizes["layer4.2.conv3"] == 7


@pytest.mark.parametrize("arch, dim", [("resnet18", 512), ("resnet50", 2048)])
def test_returns_logits_and_pooled_features(arch, dim):
    model = build_model(arch, 3, 5, 32).eval()
    logits, features = model(torch.rand(2, 3, 32, 32))
    assert model.feature_dim == dim and features.shape == (2, dim) and logits.shape == (2, 5)
    torch.testing.assert_close(model.fc(features), logits)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnet_stage_features_are_layer3_and_layer4_pooled(arch):
    torch.manual_seed(0)
    model = build_model(arch, 3, 5, 32).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        earlier, last = model.stage_features(x)
        layer3 = model.layer3(model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x)))))))
        torch.testing.assert_close(earlier, layer3.mean(dim=(2, 3)))
        assert torch.equal(last, model(x)[1])
    assert model.stage_count == 2 and earlier.shape == (2, model.feature_dim // 2)


def test_small_cnn_stage_features_keep_the_last_map_in_at_most_three_by_three_cells():
    torch.manual_seed(0)
    model = build_model("small", 3, 4, 28).eval()
    x = torch.rand(2, 3, 28, 28)
    with torch.no_grad():
        earlier, last = model.stage_features(x)
        # At 28 px the last convolution's pooled map is 3 × 3 already: the earlier stage is that map as
        # the body flattens it for its hidden layer.
        assert torch.equal(earlier, model.body[:7](x)) and earlier.shape == (2, 64 * 9)
        assert torch.equal(last, model(x)[1])
        # At 64 px the map is 8 × 8, averaged into 3 × 3 cells: the width does not grow with the image.
        # The centre cell covers rows and columns 2-5 (from 8 · 1 // 3 = 2 up to ⌈8 · 2 / 3⌉ = 6).
        big = build_model("small", 3, 4, 64).eval()
        image = torch.rand(1, 3, 64, 64)
        cells = big.stage_features(image)[0].view(64, 3, 3)
        torch.testing.assert_close(cells[:, 1, 1], big.body[:6](image)[0, :, 2:6, 2:6].mean(dim=(1, 2)))
    assert cells.shape == (64, 3, 3)
    assert build_model("mlp", 8, 3, 1).stage_count == 1  # a head has no earlier stage


def test_resnet50_loads_a_torchvision_layout_file_completely(resnet50_file):
    source = torch.load(resnet50_file, weights_only=True)
    model = build_model("resnet50", 3, 1000, 224)
    missing, unexpected = model.load_state_dict(source, strict=True)
    assert not missing and not unexpected
    fresh = build_model("resnet50", 3, 1000, 224)
    load_weights(fresh, str(resnet50_file), "resnet50")
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, source[name]), name


def test_other_class_count_keeps_a_new_classifier(resnet50_file):
    source = torch.load(resnet50_file, weights_only=True)
    model = build_model("resnet50", 3, 7, 224)
    head = model.fc.weight.clone()
    load_weights(model, str(resnet50_file), "resnet50")
    assert torch.equal(model.layer4[2].bn3.running_var, source["layer4.2.bn3.running_var"])
    assert torch.equal(model.fc.weight, head) and model.fc.weight.shape == (7, 2048)


@pytest.mark.parametrize("wrap", [lambda s: {"state_dict": s}, lambda s: {"model": s},
                                  lambda s: {f"module.{k}": v for k, v in s.items()}])
def test_nested_and_ddp_prefixed_files_load(tmp_path, wrap):
    source = build_model("resnet18", 3, 10, 32).state_dict()
    path = tmp_path / "w.pt"
    torch.save(wrap(source), path)
    model = build_model("resnet18", 3, 10, 32)
    load_weights(model, str(path), "resnet18")
    assert torch.equal(model.conv1.weight, source["conv1.weight"]) and torch.equal(model.fc.bias, source["fc.bias"])


def test_wrong_keys_are_one_line_naming_a_few(tmp_path):
    path = tmp_path / "small.pt"
    torch.save(build_model("small", 3, 10, 32).state_dict(), path)
    with pytest.raises(UserError, match=r"does not fit --arch resnet18 \(missing conv1.weight.*unexpected body") as err:
        load_weights(build_model("resnet18", 3, 10, 32), str(path), "resnet18")
    assert "\n" not in str(err.value) and "more" in str(err.value)


def test_resnet18_file_into_resnet50_names_the_wrong_shapes(tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(build_model("resnet18", 3, 10, 32).state_dict(), path)
    with pytest.raises(UserError, match="does not fit --arch resnet50"):
        load_weights(build_model("resnet50", 3, 10, 32), str(path), "resnet50")


@pytest.mark.parametrize("content, message", [(None, "not found"), (b"not a torch file", "cannot load")])
def test_unreadable_weights_file(tmp_path, content, message):
    path = tmp_path / "w.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_weights(build_model("resnet18", 3, 10, 32), str(path), "resnet18")


def test_imagenet_offline_says_to_pass_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setitem(weights_module.IMAGENET_URLS, "resnet18", "http://127.0.0.1:9/resnet18-f37072fd.pth")
    with pytest.raises(UserError, match=r"cannot download the ImageNet weights of resnet18 .*--weights PATH") as err:
        load_weights(build_model("resnet18", 3, 10, 32), "imagenet", "resnet18")
    assert "\n" not in str(err.value)


def test_imagenet_weights_come_from_the_hub_cache_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    source = build_model("resnet18", 3, 1000, 224).state_dict()
    torch.save(source, cached)
    model = build_model("resnet18", 3, 4, 32)
    load_weights(model, "imagenet", "resnet18")
    assert torch.equal(model.layer3[0].downsample[0].weight, source["layer3.0.downsample.0.weight"])


def test_imagenet_only_for_resnets():
    with pytest.raises(UserError, match="no ImageNet weights for --arch small"):
        load_weights(build_model("small", 3, 10, 32), "imagenet", "small")


def test_none_keeps_the_random_initialisation():
    model = build_model("resnet18", 3, 10, 32)
    before = model.conv1.weight.clone()
    load_weights(model, "none", "resnet18")
    load_weights(model, None, "resnet18")
    assert torch.equal(model.conv1.weight, before)


def test_resnet18_trains_on_a_folder_with_weights_from_a_file(tmp_path):
    """The engine end to end with a ResNet: --weights PATH (1000 classes → new fc), one epoch."""
    from test_folder import build_folder, read_csv

    from comining.config import resolve
    from comining.engine import train

    build_folder(tmp_path / "images", per_class=16, val=2)
    path = tmp_path / "r18.pth"
    torch.save(build_model("resnet18", 3, 1000, 224).state_dict(), path)
    cfg = resolve({"dataset": "folder", "data_root": str(tmp_path / "images"), "arch": "resnet18",
                   "weights": str(path), "rescale_size": 40, "crop_size": 32, "batch_size": 16, "epochs": 1,
                   "warmup_epochs": 1, "workers": 0, "quiet": True})
    results = train(cfg, out=tmp_path / "run")
    assert results["train_size"] == 64 and results["skipped_files"] == 3
    assert len(read_csv(tmp_path / "run" / "verdicts.csv")) == 64


# --- the CNNs ----------------------------------------------------------------------------------

# Paper CNN: three 2× poolings, 16 channels at the end: 8 px → 16·1·1, 28 → 16·3·3, 32 → 16·4·4.
@pytest.mark.parametrize("size, feature_dim", [(8, 16), (28, 144), (32, 256)])
@pytest.mark.parametrize("channels", [1, 3])
def test_paper_cnn_shapes(size, feature_dim, channels):
    model = build_model("cnn", channels, 7, size)
    assert model.feature_dim == feature_dim
    logits, feats = model(torch.rand(2, channels, size, size))
    assert logits.shape == (2, 7) and feats.shape == (2, feature_dim)
    # The features are the input of the final linear layer.
    torch.testing.assert_close(model.fc(feats), logits)


@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_small_cnn_shapes(size, channels):
    model = build_model("small", channels, 5, size)
    assert model.feature_dim == 128  # global average pooling of 128 channels, whatever the size
    logits, feats = model(torch.rand(2, channels, size, size))
    assert logits.shape == (2, 5) and feats.shape == (2, 128)
    torch.testing.assert_close(model.fc(feats), logits)


def test_paper_cnn_rejects_tiny_images():
    with pytest.raises(UserError, match="at least 8 px"):
        build_model("cnn", 3, 10, 7)  # 7 // 8 = 0: nothing left after three poolings
