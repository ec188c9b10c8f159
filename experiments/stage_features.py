"""Which of a frozen backbone's stages carry what new classes need (issue 28; docs/notes/2026-12-07-two-stages.md).

On a folder of frozen_backbone_study.py (its backbone trained on Fashion-MNIST classes 0-3, the folder's
classes 4-7): the un-augmented features of each stage of the backbone, for the folder's closed-set
training images with their *true* labels, and a scikit-learn logistic regression and MLP (256 hidden
units, two seeds averaged) fitted on them and scored on the folder's validation images. What a head
can reach at best from each choice of features, before any label noise or Co-mining.

    python experiments/stage_features.py runs/frozen-study                 # the small CNN's backbone
    python experiments/stage_features.py runs/frozen-study --arch resnet18 # backbone-resnet18/

2026-12-07, Intel Xeon (AVX512-BF16, AMX), one thread, float32; 2,823 training and 400 validation images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from comining.data.image_set import IMAGENET_MEAN, IMAGENET_STD
from comining.models import build_model
from comining.models.weights import load_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frozen_backbone_study import backbone_file  # noqa: E402


def load(paths: list[Path]) -> torch.Tensor:
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    x = torch.tensor(pixels).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def small_stages(model, x: torch.Tensor) -> dict:
    """The small CNN: the last convolution's pooled map flattened (576 at 28 px), its channel
    averages (64), and the hidden layer (128, the classifier's input)."""
    feature_map = model.body[:6](x)
    return {"hidden": model.body[6:](feature_map), "map": feature_map.flatten(1),
            "map averaged": feature_map.mean(dim=(2, 3))}


def resnet_stages(model, x: torch.Tensor) -> dict:
    """ResNet-18: the average-pooled outputs of layer2, layer3 and layer4 (the classifier's input)."""
    x = model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x))))))
    layer3 = model.layer3(x)
    return {"layer2": x.mean(dim=(2, 3)), "layer3": layer3.mean(dim=(2, 3)), "layer4": model.layer4(layer3).mean(dim=(2, 3))}


CHOICES = {"small": [["hidden"], ["map"], ["map averaged"], ["map", "hidden"], ["map averaged", "hidden"]],
           "resnet18": [["layer4"], ["layer3"], ["layer3", "layer4"], ["layer2", "layer3", "layer4"]]}


def main() -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a frozen_backbone_study.py --out folder")
    parser.add_argument("--arch", choices=tuple(CHOICES), default="small")
    args = parser.parse_args()
    torch.set_num_threads(1)
    truth = json.loads((args.out / "truth.json").read_text())
    model = build_model(args.arch, 3, 4, 28)
    load_weights(model, str(backbone_file(args.out, args.arch)), args.arch)
    model.eval()
    train = [(name, true) for name, true in truth.items() if true != "open"]
    val = sorted((args.out / "noisy" / "val").glob("*/*.png"))
    y_train = np.array([int(true.removeprefix("class")) for _, true in train])
    y_val = np.array([int(p.parent.name.removeprefix("class")) for p in val])
    stages = small_stages if args.arch == "small" else resnet_stages
    with torch.no_grad():
        f_train = {k: v.numpy() for k, v in stages(model, load([args.out / "noisy" / n for n, _ in train])).items()}
        f_val = {k: v.numpy() for k, v in stages(model, load(val)).items()}
    print("| features | width | logistic regression (%) | MLP (%) |\n|---|---:|---:|---:|")
    for keys in CHOICES[args.arch]:
        scaler = StandardScaler().fit(np.concatenate([f_train[k] for k in keys], 1))
        a = scaler.transform(np.concatenate([f_train[k] for k in keys], 1))
        b = scaler.transform(np.concatenate([f_val[k] for k in keys], 1))
        linear = LogisticRegression(max_iter=3000).fit(a, y_train).score(b, y_val)
        mlp = np.mean([MLPClassifier((256,), max_iter=300, random_state=r).fit(a, y_train).score(b, y_val)
                       for r in range(2)])
        print(f"| {' + '.join(keys)} | {a.shape[1]} | {100 * linear:.2f} | {100 * mlp:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
