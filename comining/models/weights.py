"""Initial weights for a model: ``--weights none | imagenet | PATH``.

A file is read with ``torch.load(path, map_location="cpu", weights_only=True)``: a bare state dict,
one nested under 'state_dict' or 'model', or a comining checkpoint.pt (its first network). A
'module.' prefix (DataParallel/DDP) is stripped. Everything but the classifier ``fc`` must match
the model by name and shape; ``fc`` is loaded too when its shape fits (same class count) and
otherwise stays freshly initialised, the usual fine-tuning start.
"""

from __future__ import annotations

import socket
from pathlib import Path

import torch
from torch import nn

from comining.errors import UserError

# torchvision's ImageNet-1k weights (IMAGENET1K_V1) for the architectures whose layout we share.
IMAGENET_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
}
HEAD = "fc."


def load_weights(model: nn.Module, spec: str | None, arch: str, progress: bool = False) -> None:
    """Load ``spec`` (None/'none': keep the random initialisation) into ``model`` of ``--arch arch``."""
    if spec is None or spec.lower() == "none":
        return
    if spec.lower() == "imagenet":
        state, source = fetch_imagenet(arch, progress), f"the ImageNet weights of {arch}"
    else:
        state, source = read_file(spec), f"weights file {spec}"
    apply(model, unwrap(state, source), source, arch)


def fetch_imagenet(arch: str, progress: bool = False) -> dict:
    """torchvision's ImageNet state dict for ``arch``, from torch's hub cache or downloaded into it.
    The cache is torch.hub's (``$TORCH_HOME/hub/checkpoints``), where torchvision keeps the same
    files, so weights fetched once (by either) are found offline. The file's hash is checked."""
    url = IMAGENET_URLS.get(arch)
    if url is None:
        raise UserError(f"no ImageNet weights for --arch {arch} (only {', '.join(IMAGENET_URLS)}): "
                        "use --weights none or --weights PATH")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    if not cached.is_file():
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)  # an unreachable network should fail in seconds, not hang
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            hash_prefix = cached.stem.rsplit("-", 1)[1]  # torchvision names files <arch>-<sha256 prefix>.pth
            # Its progress bar appears once the server answers, so an offline failure stays one line.
            torch.hub.download_url_to_file(url, str(cached), hash_prefix, progress=progress)
        except Exception as err:  # noqa: BLE001  offline, proxy, HTTP error, bad hash: all mean "no weights"
            reason = " ".join(str(getattr(err, "reason", err)).split())[:100] or type(err).__name__
            raise UserError(f"cannot download the ImageNet weights of {arch} ({reason}): fetch {url} elsewhere "
                            f"and put it at {cached} (or pass it with --weights PATH; --weights none trains from "
                            "random weights)") from None
        finally:
            socket.setdefaulttimeout(previous)
    return read_file(str(cached))


def read_file(path: str) -> dict:
    if not Path(path).is_file():
        raise UserError(f"weights file {path} not found: pass an existing file to --weights, "
                        "or 'imagenet' or 'none'")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  not a torch file, truncated, or holds pickled code
        reason = " ".join(str(err).split())[:100] or type(err).__name__
        raise UserError(f"cannot load weights file {path} ({reason}): pass a state dict saved with "
                        "torch.save(model.state_dict(), path)") from None


def unwrap(state, source: str) -> dict:
    """The tensors of a checkpoint as {name: tensor} in the model's own naming."""
    if isinstance(state, dict) and isinstance(state.get("method"), dict):  # a comining checkpoint.pt
        state = {k[len("nets.0."):]: v for k, v in state["method"].items() if k.startswith("nets.0.")}
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UserError(f"{source} holds a {type(state).__name__}, not a state dict: "
                        "save it with torch.save(model.state_dict(), path)")
    tensors = {(k[len("module."):] if k.startswith("module.") else k): v
               for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UserError(f"{source} holds no tensors: save it with torch.save(model.state_dict(), path)")
    return tensors


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def apply(model: nn.Module, state: dict, source: str, arch: str) -> None:
    """Copy ``state`` into ``model``: every backbone tensor must be there with its shape; fc if it fits."""
    own = model.state_dict()
    head_fits = all(k in state and state[k].shape == v.shape for k, v in own.items() if k.startswith(HEAD))
    state = {k: v for k, v in state.items() if head_fits or not k.startswith(HEAD)}
    ignorable = ("num_batches_tracked",)  # old torchvision files predate this BatchNorm counter
    missing = [k for k in own if k not in state and not k.startswith(HEAD) and not k.endswith(ignorable)]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {list(state[k].shape)} vs {list(own[k].shape)}" for k in state
             if k in own and state[k].shape != own[k].shape]
    problems = [f"{label} {_few(names)}" for label, names in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape:", wrong)) if names]
    if problems:
        raise UserError(f"{source} does not fit --arch {arch} ({'; '.join(problems)}): "
                        f"pass weights of a {arch} in torchvision's layout, or another --arch")
    model.load_state_dict(state, strict=False)
