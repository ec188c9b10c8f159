"""Stand-in evidence for --backbone frozen (issue 28): a backbone trained here, used frozen on other classes.

Evidence (docs/RESULTS.md, "Frozen backbone"): 2026-12-06, Intel Xeon, 2 cores, AVX512 with AVX512-BF16
and AMX, torch 2.13.0+cpu, bf16, one thread per run beside other jobs (wall-clock times are loaded);
seeds 1-3, about 1 hour in all:

    python experiments/frozen_backbone_study.py --out runs/frozen-study --seeds 1,2,3

The probe's checks (docs/notes/2026-12-07-frozen-probe-estimate.md), 2026-12-07, the same CPU kind:

    python experiments/frozen_backbone_study.py --out runs/frozen-check-a --folder check-a \
        --arms frozen-linear-K2,frozen-mlp-K2,finetune
    python experiments/frozen_backbone_study.py --out runs/frozen-big --pretrain-per-class 5900 \
        --arms frozen-linear-K2,frozen-mlp-K2,finetune

The last two stages as the features (docs/notes/2026-12-07-two-stages.md), the sixth session of 2026-12-07,
the same CPU kind, up to four runs at a time (each arm also with --clean):

    A=frozen-mlp-K2-ts,frozen-mlp-K2-ts-stages2
    python experiments/frozen_backbone_study.py --out runs/frozen-study --arms $A,finetune
    python experiments/frozen_backbone_study.py --out runs/frozen-check-a --folder check-a --arms $A,finetune
    python experiments/frozen_backbone_study.py --out runs/frozen-big --pretrain-per-class 5900 --arms $A,finetune
    python experiments/frozen_backbone_study.py --out runs/frozen-study --backbone-arch resnet18 --arms $A

1. Backbone: the small CNN trained with clean labels on Fashion-MNIST classes 0-3 (T-shirt, trouser,
   pullover, dress), written as an image folder of 28-px RGB PNGs (4,000 training, 400 validation
   images), plain cross-entropy, 20 epochs: runs/.../backbone/checkpoint.pt, used with --weights.
2. A noisy folder of the other classes: 4-7 (coat, sandal, shirt, sneaker), 600 training images per
   class of which 20 % sit in another of the four class folders (closed-set noise), plus images of
   classes 8-9 (bag, ankle boot) put into the four folders, 15 % of the training set (open-set noise);
   100 correctly labelled validation images per class. truth.json records each file's true class.
3. On that folder, per seed: Co-mining
   - frozen, the backbone's features, head linear with K = 1, 2, 4 cached views per kind, and head mlp
     with K = 2 (what decides the defaults --feature-views and --head);
   - full training from random weights (--backbone finetune --weights none);
   - fine-tuning from the backbone (--backbone finetune --weights checkpoint.pt);
   and cleanlab's find_label_issues given 5-fold out-of-fold probabilities of a logistic regression on
   the same frozen features (the un-augmented view, as the frozen run cached them), of the last stage
   and of the last two.
4. Reported per arm (mean ± sample std over seeds): test accuracy (last-10 mean), wall-clock seconds, and
   the estimated noise rate, and the F1 of finding the wrong labels (a label is wrong when the file's true class differs from its
   folder, open-set images included; flagged = verdict relabelled or discarded), in study.md and study.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
GEOMETRY = ["--rescale-size", "28", "--crop-size", "28", "--padding", "3"]
SCHEDULE = ["--optimizer", "adam", "--lr", "0.001", "--schedule", "linear", "--epoch-decay-start", "15",
            "--batch-size", "64", "--workers", "2", "--quiet"]
# The frozen arms' backbone: its last stage's features only, as every frozen run had before
# --feature-stages, or its last two stages'.
LAST_STAGE = ["--backbone", "frozen", "--weights", "{backbone}", "--feature-stages", "1"]
TWO_STAGES = ["--backbone", "frozen", "--weights", "{backbone}", "--feature-stages", "2"]
ARMS = {
    "frozen-linear-K1": [*LAST_STAGE, "--head", "linear", "--feature-views", "1"],
    "frozen-linear-K2": [*LAST_STAGE, "--head", "linear", "--feature-views", "2"],
    "frozen-linear-K4": [*LAST_STAGE, "--head", "linear", "--feature-views", "4"],
    "frozen-mlp-K2": [*LAST_STAGE, "--head", "mlp", "--feature-views", "2"],
    # Co-mining's first view un-augmented: augmented views of a frozen backbone's input are features off
    # the test view's distribution (docs/notes/2026-12-07-frozen-views.md).
    "frozen-mlp-K2-ts": [*LAST_STAGE, "--head", "mlp", "--feature-views", "2",
                         "--aug", "ts"],
    # The shipped frozen mode's features: the backbone's last two stages (docs/notes/2026-12-07-two-stages.md).
    "frozen-mlp-K2-ts-stages2": [*TWO_STAGES, "--head", "mlp", "--feature-views", "2", "--aug", "ts"],
    # The same head under the image-set preset's schedule (SGD 0.01, batch 25, 60 epochs, cosine): what
    # --backbone frozen trained with by default before it had a schedule of its own.
    "frozen-linear-K2-web-schedule": [*LAST_STAGE, "--head", "linear",
                                      "--feature-views", "2", "{web-schedule}"],
    "scratch": ["--backbone", "finetune", "--weights", "none"],
    "finetune": ["--backbone", "finetune", "--weights", "{backbone}"],
    # Given the realised rate, as the paper's protocol runs: what --forget-rate auto is measured against.
    "finetune-true-rate": ["--backbone", "finetune", "--weights", "{backbone}", "--forget-rate", "{realised}"],
}


def write(root: Path, split: str, folder: str, name: str, pixels: np.ndarray) -> str:
    from PIL import Image

    path = root / split / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert("RGB").save(path)
    return path.relative_to(root).as_posix()


def write_folders(out: Path, folder: str = "study", pretrain_per_class: int = 1000) -> dict:
    """The backbone's clean folder (classes 0-3, ``pretrain_per_class`` training images each) and the
    noisy ``folder`` (4-7, open-set 8-9: "study", "check-a" or "check-c"); returns {training file of
    the noisy folder: true class name or 'open'}."""
    from comining.data.fashion_mnist import load

    arrays = load(None)
    images, labels = arrays.train_images[:, 0].numpy(), np.asarray(arrays.train_labels)
    rng = np.random.RandomState(0)
    pool = {c: list(rng.permutation(np.where(labels == c)[0])) for c in range(10)}
    for c in range(4):
        for j in range(pretrain_per_class):
            write(out / "pretrain", "train", f"class{c}", f"{j:04d}.png", images[pool[c].pop()])
        for j in range(100):
            write(out / "pretrain", "val", f"class{c}", f"{j:04d}.png", images[pool[c].pop()])
    if folder == "check-a":
        truth = write_check_a(out / "noisy", arrays)
    elif folder == "check-c":
        truth = write_check_c(out / "noisy", images, pool)
    else:
        known = [4, 5, 6, 7]
        truth = write_noisy(out / "noisy", lambda c: images[pool[c].pop()],
                            lambda c: c if rng.rand() >= 0.2 else int(rng.choice([k for k in known if k != c])), 0.15)
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def write_noisy(root: Path, take, given_for, open_share: float) -> dict:
    """A noisy folder of classes 4-7: 600 training and 100 validation images of each, drawn by
    ``take(c)``, each training image filed under the class ``given_for(c)``; then open-set images
    of classes 8-9 (also by ``take``), ``open_share`` of the training set, filed under the four
    class folders in turn. Returns {training file: true class name or 'open'}."""
    known, truth = (4, 5, 6, 7), {}
    for c in known:
        for j in range(600):
            given = given_for(c)
            truth[write(root, "train", f"class{given}", f"{c}_{j:04d}.png", take(c))] = f"class{c}"
        for j in range(100):
            write(root, "val", f"class{c}", f"{j:04d}.png", take(c))
    for j in range(int(open_share * 2400 / (1 - open_share))):
        source = 8 + j % 2
        truth[write(root, "train", f"class{known[j % 4]}", f"open{source}_{j:04d}.png", take(source))] = "open"
    return truth


def write_check_a(root: Path, arrays) -> dict:
    """Check A of the probe's note: Fashion-MNIST's *test* images of classes 4-7, 30 % of each class
    in the folder of its look-alike (coat and shirt, sandal and sneaker), open-set images 10 % of
    the training set; returns the truth."""
    images, labels = arrays.test_images[:, 0].numpy(), np.asarray(arrays.test_labels)
    rng = np.random.RandomState(1)
    pool = {c: list(rng.permutation(np.where(labels == c)[0])) for c in range(10)}
    look_alike = {4: 6, 6: 4, 5: 7, 7: 5}
    return write_noisy(root, lambda c: images[pool[c].pop()],
                       lambda c: look_alike[c] if rng.rand() < 0.3 else c, 0.10)


def write_check_c(root: Path, images: np.ndarray, pool: dict) -> dict:
    """Check C of the fine-tuning probe's note: training images of classes 4-7 that the study folder
    does not use (taken from the other end of the same shuffled pools), 35 % of each class in one of
    the other three folders at random, open-set images 5 % of the training set; returns the truth."""
    rng, known = np.random.RandomState(3), (4, 5, 6, 7)
    return write_noisy(root, lambda c: images[pool[c].pop(0)],
                       lambda c: c if rng.rand() >= 0.35 else int(rng.choice([k for k in known if k != c])), 0.05)


def write_clean(out: Path, truth: dict) -> Path:
    """``out/clean``: the noisy folder's closed-set training images, each in its true class's folder,
    and the same validation images; what the arms reach with every label right."""
    clean = out / "clean"
    if not clean.is_dir():
        for name, true in truth.items():
            if true != "open":
                target = clean / "train" / true / Path(name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(out / "noisy" / name, target)
        shutil.copytree(out / "noisy" / "val", clean / "val")
    return clean


def train(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg"}
    start = time.time()
    subprocess.run([sys.executable, "-m", "comining", "train", *args], check=True, env=env, cwd=REPO)
    return time.time() - start


def issue_f1(run: Path, truth: dict) -> float:
    import comining
    from label_issues_vs_cleanlab import scores

    rows = comining.load_verdicts(run)
    wrong = np.array([truth[r["sample"]] != r["given_label"] for r in rows])
    return scores(comining.find_label_issues(run), wrong)["f1"]


def frozen_features(out: Path, truth: dict, seed: int, arch: str = "small", stages: int = 1):
    """The un-augmented cached features [N×D] of ``out``'s noisy folder (its ``arch`` backbone's last
    ``stages`` stages, as the frozen runs cached them), the given labels [N], and which of them are
    wrong by ``truth`` [N]."""
    from comining.config import resolve
    from comining.data.features import FeatureData

    cfg = resolve({"dataset": "folder", "data_root": str(out / "noisy"), "backbone": "frozen", "arch": arch,
                   "feature_stages": stages, "weights": str(backbone_file(out, arch)), "rescale_size": 28,
                   "crop_size": 28, "padding": 3, "seed": seed, "cache_dir": str(out / "cache"), "quiet": True, "device": "cpu"})
    data = FeatureData(cfg, "cpu", progress=False)
    data.prepare(("test",))
    given = data.labels.numpy()
    wrong = np.array([truth[name] != data.classes[label] for name, label in zip(data.sample_names(), given)])
    return data.images[:, 0].float().numpy(), given, wrong


def backbone_file(out: Path, arch: str) -> Path:
    """The checkpoint of ``out``'s backbone of ``arch`` (the small CNN's in ``backbone/``)."""
    return out / ("backbone" if arch == "small" else f"backbone-{arch}") / "checkpoint.pt"


def cleanlab_f1(x: np.ndarray, given: np.ndarray, wrong: np.ndarray, seed: int) -> float:
    """cleanlab's F1 at finding the ``wrong`` labels among ``given``, from 5-fold logistic regression on
    the frozen features ``x`` (stratified, shuffled by ``seed``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from label_issues_vs_cleanlab import cleanlab_verdicts, scores

    # Shuffled: the folder lists its files by name, and the names begin with the true class, so
    # unshuffled folds would hold out each true class, and the open-set images, together.
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    oof = cross_val_predict(LogisticRegression(max_iter=2000), x, given, cv=folds, method="predict_proba")
    flagged, _ = cleanlab_verdicts(given, oof)
    return scores(np.asarray(flagged), wrong)["f1"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "frozen-study")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--arms", help="comma-separated arms to run (default: all)")
    parser.add_argument("--folder", choices=("study", "check-a", "check-c"), default="study",
                        help="the noisy folder to write (check-a: the probe note's check A; check-c: the "
                             "fine-tuning probe note's check C)")
    parser.add_argument("--pretrain-per-class", type=int, default=1000,
                        help="the backbone's training images per class (5900: the probe note's check B)")
    parser.add_argument("--backbone-arch", default="small", choices=("small", "resnet18"),
                        help="the backbone's architecture (resnet18: trained the same way in backbone-resnet18/, "
                             "its runs named resnet18-ARM-seedS)")
    parser.add_argument("--clean", action="store_true",
                        help="run the arms on the folder's closed-set images with their true labels and "
                             "--forget-rate 0 (runs clean-ARM-seedS): each arm's ceiling")
    args = parser.parse_args()
    arms = {name: ARMS[name] for name in (args.arms.split(",") if args.arms else ARMS)}
    seeds = [int(s) for s in args.seeds.split(",")]
    out = args.out.resolve()
    truth = (json.loads((out / "truth.json").read_text()) if (out / "truth.json").is_file()
             else write_folders(out, args.folder, args.pretrain_per_class))
    arch = args.backbone_arch
    backbone = backbone_file(out, arch)
    if not (backbone.parent / "results.json").is_file():
        shutil.rmtree(backbone.parent, ignore_errors=True)
        train(["--dataset", "folder", "--data-root", str(out / "pretrain"), "--method", "standard", "--arch", arch,
               "--backbone", "finetune", "--weights", "none", "--epochs", "20", "--warmup-epochs", "5",
               *GEOMETRY, *SCHEDULE, "--out", str(backbone.parent)])
    realised = 0.0 if args.clean else float(np.mean([truth[name] != name.split("/")[1] for name in truth]))
    root, prefix = (write_clean(out, truth), "clean-") if args.clean else (out / "noisy", "")
    prefix += "" if arch == "small" else f"{arch}-"
    common = ["--dataset", "folder", "--data-root", str(root), "--arch", arch, "--cache-dir",
              str(out / "cache"), *GEOMETRY, *(["--forget-rate", "0"] if args.clean else [])]
    schedule = ["--epochs", str(args.epochs), "--warmup-epochs", "5", *SCHEDULE]
    table: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        for arm, extra in arms.items():
            run = out / f"{prefix}{arm}-seed{seed}"
            if not (run / "results.json").is_file():
                shutil.rmtree(run, ignore_errors=True)
                own = ["--workers", "2", "--quiet"] if "{web-schedule}" in extra else schedule
                filled = [a.replace("{backbone}", str(backbone)).replace("{realised}", f"{realised:.6f}")
                          for a in extra if a != "{web-schedule}"]
                seconds = train([*common, *own, *filled, "--seed", str(seed), "--out", str(run)])
                (run / "wall_seconds.txt").write_text(f"{seconds:.1f}\n")
            results = json.loads((run / "results.json").read_text())
            cell = table.setdefault(arm, {"accuracy": [], "seconds": [], "f1": [], "estimate": []})
            cell["accuracy"].append(results["last10_mean"])
            cell["estimate"].append(results.get("estimated_noise_rate", float("nan")))
            cell["seconds"].append(float((run / "wall_seconds.txt").read_text()))
            if not args.clean:  # with every label right there is nothing to find
                cell["f1"].append(issue_f1(run, truth))
        if not args.clean:
            for stages, name in ((1, "cleanlab (frozen features)"), (2, "cleanlab (two stages' features)")):
                table.setdefault(name, {"f1": []})["f1"].append(
                    cleanlab_f1(*frozen_features(out, truth, seed, arch, stages), seed))
    lines = [f"realised noise rate {realised:.3f}", "",
             "| arm | test accuracy (%) | wall-clock (s) | wrong-label F1 | estimated noise rate |", "|---|---|---|---|---|"]
    for arm, cell in table.items():
        shown = [f"{np.mean(cell[k]):.2f} ± {np.std(cell[k], ddof=1):.2f}" if cell.get(k) else "—"
                 for k in ("accuracy", "seconds", "f1", "estimate")]
        lines.append(f"| {arm} | {' | '.join(shown)} |")
    text = "\n".join(lines)
    (out / f"{prefix}study.md").write_text(text + "\n")
    (out / f"{prefix}study.json").write_text(json.dumps(table, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
