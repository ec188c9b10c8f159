"""The frozen network of ``--backbone frozen``: loaded once, it maps normalised images to features.

Two kinds:
- an architecture of this project (``--arch resnet18`` ...) with ``--weights`` (imagenet, a
  torchvision-layout file, or none: random, seeded by ``--seed``); its features are the pooled
  outputs of its last ``--feature-stages`` stages, concatenated (by default 2: 256 + 512 values for
  ResNet-18, 1024 + 2048 for ResNet-50; with 1 only its classifier's input). The stages before the
  last carry more of what images of other classes need: a network's last stage is the one most
  specialised to the classes it was trained on (docs/BACKBONE.md);
- a TorchScript feature extractor (``--backbone-file FILE``: images [N×C×S×S] in, features [N×D]
  out). ``torch.jit.load`` runs the code inside the file, so it must come from someone you trust.

``record`` describes the backbone for data.json (what it is, where it came from, its SHA-256 and
feature width), so ``predict`` rebuilds it from the run directory alone and refuses one that changed.
The SHA-256 is of the weights as loaded (every tensor of the state dict) for an architecture, of the
file's bytes for TorchScript. The feature cache's key takes ``features_sha256``: for an architecture
the same without its classifier, which computes no feature; for TorchScript the file's.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
from torch import nn

from comining.errors import UserError
from comining.models import build_model
from comining.models.weights import HEAD, load_weights


class Features(nn.Module):
    """An architecture's features as the only output: with ``stages`` 1 its classifier's input (the
    second output of ``(logits, features)``); with 2 the pooled output of the stage before it
    first, then those (``stage_features``). The last ``model.feature_dim`` columns are always the
    classifier's input."""

    def __init__(self, model: nn.Module, stages: int = 1):
        super().__init__()
        self.model, self.stages = model, stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stages == 1:
            return self.model(x)[1]
        return torch.cat(self.model.stage_features(x)[-self.stages:], dim=1)


class FrozenNet(nn.Module):
    """A backbone followed by a trained head: images in, ``(logits, features)`` out, as predict needs."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor):
        return self.head(features_of(self.backbone, x).float())


def features_of(backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The frozen ``backbone``'s features [N×D] of normalised ``images`` [N×C×S×S], fed channels-last:
    oneDNN's CPU convolutions run about twice as fast on that layout (docs/PERFORMANCE.md, (f))."""
    return backbone(images.contiguous(memory_format=torch.channels_last))


def freeze(module: nn.Module) -> nn.Module:
    """``module`` in eval mode without gradients (parameter by parameter: TorchScript modules lack
    ``requires_grad_``), its weights channels-last to match ``features_of``'s input."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module.to(memory_format=torch.channels_last)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def state_sha256(module: nn.Module, skip: tuple[str, ...] = ()) -> str:
    """SHA-256 of every tensor of ``module``'s state dict, with its name, shape and type (but those
    whose names start with one of ``skip``)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        if name.startswith(skip):
            continue
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def load_torchscript(path: str) -> nn.Module:
    """The TorchScript module in ``path`` (this runs the code inside it), or a one-line UserError."""
    if not Path(path).is_file():
        raise UserError(f"backbone file {path} not found: pass a TorchScript feature extractor "
                        "(torch.jit.save of a scripted or traced module) to --backbone-file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript still loads; the notice is noise
            return torch.jit.load(path, map_location="cpu")
    except Exception as err:  # noqa: BLE001  not TorchScript, truncated, or made by a newer torch
        reason = " ".join(str(err).split())[:100] or type(err).__name__
        raise UserError(f"cannot load backbone file {path} as TorchScript ({reason}): save the extractor "
                        "with torch.jit.save(torch.jit.script(model), path)") from None


def build_arch(arch: str, weights: str | None, channels: int, crop: int, seed: int, progress: bool,
               stages: int = 1) -> Features:
    """``--arch`` with ``--weights`` as a feature extractor of its last ``stages`` stages; random weights
    are drawn from ``seed`` (inside a forked generator, so the run's own random state is untouched and
    predict redraws them)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch, channels, 1000, crop)
    offered = getattr(model, "stage_count", 1)  # the registry's contract asks only for forward's features
    if stages > offered:
        raise UserError(f"--feature-stages {stages}: --arch {arch} offers {offered}; pass --feature-stages "
                        f"{offered} or fewer")
    load_weights(model, weights, arch, progress=progress)
    return Features(model, stages)


def feature_width(module: nn.Module, channels: int, crop: int, source: str) -> int:
    """D, from one forward pass of two blank images; UserError unless the output is [2×D]."""
    with torch.no_grad():
        try:
            out = module(torch.zeros(2, channels, crop, crop))
        except Exception as err:  # noqa: BLE001  the extractor's own code failed on our input
            reason = " ".join(str(err).split())[:100] or type(err).__name__
            raise UserError(f"{source} fails on images of {channels}×{crop}×{crop} ({reason}): it must take "
                            "normalised images [N×C×H×W] (set --crop-size to its input size)") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UserError(f"{source} returns {shape} for 2 images: a feature extractor must return "
                        "one row of features per image, [N×D]")
    return int(out.shape[1])


def load_backbone(cfg, channels: int, crop: int, progress: bool = False) -> tuple[nn.Module, dict]:
    """(the frozen backbone on the CPU in eval mode, its record) for ``cfg``."""
    if cfg.backbone_file:
        path = Path(cfg.backbone_file).resolve()
        module = load_torchscript(str(path))
        digest = file_sha256(path)
        record = {"kind": "torchscript", "name": path.name, "file": str(path), "sha256": digest,
                  "features_sha256": digest}
        source = f"backbone file {cfg.backbone_file}"
    else:
        weights = cfg.weights or "none"
        module = build_arch(cfg.arch, weights, channels, crop, cfg.seed, progress, cfg.feature_stages)
        if weights.lower() not in ("none", "imagenet"):
            weights = str(Path(weights).resolve())  # predict finds it from any folder
        # The cache's key: the classifier never computes a feature, and where a weights file does not
        # fit it, it keeps a random initialisation drawn from --seed, which must not key the cache.
        record = {"kind": "arch", "name": cfg.arch, "weights": weights, "seed": cfg.seed,
                  "sha256": state_sha256(module), "features_sha256": state_sha256(module, skip=("model." + HEAD,)),
                  "stages": cfg.feature_stages, "last_dim": module.model.feature_dim}
        source = f"--arch {cfg.arch}"
    freeze(module)
    record.update(dim=feature_width(module, channels, crop, source), channels=channels, crop_size=crop)
    return module, record


def describe(record: dict) -> str:
    """The backbone in a few words, for the summary: "resnet18's last 2 stages (ImageNet weights)"."""
    if record["kind"] == "torchscript":
        return f"TorchScript {record['name']}"
    weights = record["weights"]
    kind = {"imagenet": "ImageNet weights", "none": "random weights: --weights none, so its features are random"}
    stages = f"'s last {record['stages']} stages" if record.get("stages", 1) != 1 else ""
    return f"{record['name']}{stages} ({kind.get(weights.lower(), f'weights {weights}')})"


def restore_backbone(record: dict, where: str) -> nn.Module:
    """The backbone a run recorded (data.json ``backbone``), rebuilt and checked against its SHA-256;
    a one-line UserError where it is gone or changed since the run (``where`` names the run)."""
    if record["kind"] == "torchscript":
        path = Path(record["file"])
        if not path.is_file():
            raise UserError(f"backbone file {path} of {where} not found: put it back where the run found it")
        if file_sha256(path) != record["sha256"]:
            raise UserError(f"backbone file {path} changed since {where} was trained (SHA-256 differs): put back "
                            "the file the run used, or train again with this one")
        module = load_torchscript(str(path))
    else:
        weights = record["weights"]
        if weights.lower() not in ("none", "imagenet") and not Path(weights).is_file():
            raise UserError(f"weights file {weights} of {where}'s backbone not found: put it back where the run "
                            "found it")
        module = build_arch(record["name"], weights, record["channels"], record["crop_size"], record["seed"], False,
                            record.get("stages", 1))
        if state_sha256(module) != record["sha256"]:
            raise UserError(f"the backbone weights of {where} ({weights}) changed since it was trained "
                            "(SHA-256 differs): put back the weights the run used, or train again with these")
    return freeze(module)
