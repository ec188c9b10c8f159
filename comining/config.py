"""The settings of a run: four sections (``SECTIONS``), each method's own options, the presets, and validation.

A run's settings are flat (``cfg.epochs``, ``cfg.w_tri``) but declared in sections, and each method's
options in the method's own file (``Method.Options``; Co-mining's recipes are named instances of its
options), each field carrying its help, flag spellings and choices, from which the command line and
its help are made. They resolve in this order, later winning: the defaults (the paper's CIFAR
settings, on the embedded digits data set), the preset of the data set, a named preset (``--preset`` /
``--synthetic-data``), the Co-mining recipe (``--recipe``), a JSON file (``--config``), and the flags.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from comining import models
from comining.errors import UserError, need
from comining.methods import METHODS
from comining.noise import FOLDER_DATASETS, NOISE_TYPES, USER_IMAGE_SETS
from comining.setting import setting


@dataclass
class DataSettings:
    dataset: str = setting("digits", "digits (bundled), fashion-mnist, cifar10, cifar100, web-bird, web-car, "
                           "web-aircraft, folder, csv (docs/DATA.md)", main=True, metavar="NAME")
    data_root: str | None = setting(None, "folder holding the data set (default datasets/)", flags=("--root",),
                                    main=True, metavar="DIR")
    synthetic: str | None = setting(None, "the paper's named setting: cifar10nc, cifar100nc, cifar80no",
                                    flags=("--synthetic-data",), metavar="NAME")
    noise_type: str = setting("symmetric", "symmetric or asymmetric (pair flip)", main=True, metavar="KIND",
                              choices=NOISE_TYPES)
    closed_rate: float = setting(0.2, "closed-set noise rate ρc added to in-memory data sets",
                                 flags=("--closeset_ratio", "--closeset-ratio", "--noise-rate", "--noise_rate"),
                                 main=True, metavar="RATE")
    open_ratio: float = setting(0.0, "share of classes (the last ones) turned into open-set noise ρo",
                                flags=("--openset_ratio", "--openset-ratio"), main=True, metavar="RATE")
    noise_seed: int = setting(0, "seed of the label corruption (0 reproduces the established protocol)")
    train_subset: int | None = setting(None, "train on the first N images of the training set's fixed order "
                                       "(in-memory sets: theirs; image sets: a seeded shuffle, so no class "
                                       "is left out)", main=True, metavar="N")
    test_subset: int | None = setting(None, "evaluate on the first N images of the evaluation split's fixed "
                                      "order (as --train-subset)", metavar="N")
    labels: str | None = setting(None, "label file replacing the training labels: .csv, .npy or CIFAR-N .pt",
                                 main=True, metavar="FILE")
    label_key: str | None = setting(None, "the array of a CIFAR-N .pt label file (default aggre_label or "
                                    "noisy_label)", metavar="KEY")
    train_csv: str | None = setting(None, "--dataset csv: the training images, rows path,label", main=True,
                                    metavar="FILE")
    val_csv: str | None = setting(None, "--dataset csv: correctly labelled evaluation images, rows path,label",
                                  main=True, metavar="FILE")
    crop_size: int | None = setting(None, "training and evaluation crop side (none: the image side; "
                                    "image sets 448)", main=True, metavar="PX")
    rescale_size: int = setting(512, "image folders: side every image is resized to before cropping", main=True,
                                metavar="PX")
    padding: int | None = setting(None, "padding of the random crops (default crop-size / 8)", metavar="PX")
    flip: bool | None = setting(None, "random horizontal flips (default: per data set; digits none)")


@dataclass
class ModelSettings:
    arch: str = setting("cnn", f"{models.described()}; with --backbone frozen the backbone "
                        f"({', '.join(models.names(heads=True))}: --head)", main=True, metavar="NAME")
    weights: str | None = setting(None, "initial weights: none, imagenet (downloaded), or a state-dict file",
                                  main=True, metavar="W")
    backbone: str = setting("auto", "frozen: a head trains on the pretrained network's cached features (minutes "
                            "on a CPU); finetune: the whole network trains; auto: frozen for folder/csv without a "
                            "GPU and with pretrained weights (docs/BACKBONE.md)", main=True, metavar="MODE",
                            choices=("auto", "frozen", "finetune"))
    backbone_file: str | None = setting(None, "--backbone frozen: a TorchScript feature extractor (images in, N×D "
                                        "features out) instead of --arch/--weights. Loading it runs the code inside "
                                        "it: use only files from someone you trust", metavar="FILE")
    head: str = setting("mlp", f"--backbone frozen: what trains on the features: {models.described(heads=True)}",
                        choices=models.names(heads=True))
    feature_stages: int = setting(2, "--backbone frozen with --arch: the features are the pooled outputs of the "
                                  "backbone's last N stages, concatenated (1: its classifier's input only)",
                                  metavar="N")
    feature_views: int = setting(2, "--backbone frozen: augmented views cached per image and view kind (weak, "
                                 "strong), besides the un-augmented one", metavar="K")
    cache_dir: str | None = setting(None, "--backbone frozen: folder of the feature cache (default "
                                    "$XDG_CACHE_HOME/comining/features, or ~/.cache/comining/features)", metavar="DIR")


@dataclass
class TrainingSettings:
    method: str = setting("comining", "comining, or a baseline: " + ", ".join(sorted(set(METHODS) - {"comining"})),
                          main=True, metavar="NAME")
    recipe: str = setting("default", "named set of Co-mining's options (docs/METHOD.md)", main=True, metavar="NAME")
    forget_rate: float | str | None = setting(
        None, "share of each batch treated as noisy, or auto: estimated (default: the synthetic noise's rate; "
        "auto for image sets and label files)", flags=("--forget_rate",), main=True, metavar="RATE")
    num_gradual: int = setting(10, "epochs over which the forget rate ramps in", metavar="N")
    warmup_epochs: int = setting(10, "epochs of plain training, before selection and cosine decay",
                                 flags=("--warmup",), main=True, metavar="N")
    baseline_aug: str = setting("none", "the baselines' view: none (as the paper) or weak", choices=("none", "weak"))
    optimizer: str = setting("adam", "adam, or sgd (Nesterov)", choices=("adam", "sgd"))
    lr: float = setting(1e-3, "learning rate", main=True)
    momentum: float = setting(0.9, "SGD momentum")
    weight_decay: float = setting(0.0, "weight decay")
    batch_size: int = setting(128, "images per step", main=True, metavar="N")
    epochs: int = setting(200, "epochs to train", flags=("--n_epoch", "--n-epoch", "--n_epochs"), main=True, metavar="N")
    schedule: str = setting("linear", "linear: decay to 0 from --epoch-decay-start (Adam β1 0.1); cosine",
                            choices=("linear", "cosine"))
    epoch_decay_start: int = setting(80, "epoch from which the learning rate decays linearly", metavar="N")


@dataclass
class RunSettings:
    seed: int = setting(1, "seed of the training (initial weights, batch order, views)", main=True)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", main=True)
    precision: str = setting("auto", "auto (bf16 where PyTorch's kernels compute it natively), fp32, bf16",
                             choices=("auto", "fp32", "bf16"), main=True)
    out: str | None = setting(None, "run directory (default runs/DATASET-NOISE-METHOD-TIME)", main=True,
                              metavar="DIR")
    workers: int = setting(4, "image sets: processes decoding images", main=True, metavar="N")
    eval_batch_size: int = setting(512, "images per forward pass when evaluating", metavar="N")
    quiet: bool = setting(False, "no progress bars", main=True)


SECTIONS = {"data and labels": DataSettings, "model": ModelSettings, "training": TrainingSettings,
            "run and hardware": RunSettings}


def method_options() -> dict[str, type]:
    """Each method's options dataclass, by method name (methods without options left out)."""
    return {name: cls.Options for name, cls in METHODS.items() if cls.Options is not None}


def _fields_of(classes) -> list[tuple[str, str, dataclasses.Field]]:
    out, seen = [], set()
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.name in seen:
                raise TypeError(f"setting {f.name} is declared twice ({cls.__name__})")
            seen.add(f.name)
            out.append((f.name, f.type, field(default=f.default, metadata=f.metadata)))
    return out


# The flat settings of a run: every section's fields, then every method's options.
Config = dataclasses.make_dataclass("Config", _fields_of([*SECTIONS.values(), *method_options().values()]),
                                    namespace={"to_dict": dataclasses.asdict})
Config.__doc__ = "All settings of a run (see the module docstring for the sections)."
Config.__module__ = __name__


def _recipes():
    from comining.methods.comining import RECIPES
    return RECIPES


def recipe_values(name: str) -> dict:
    """The Co-mining options a recipe sets: those marked ``recipe`` (not the data set's σ or margin)."""
    recipe = _recipes()[name]
    return {f.name: getattr(recipe, f.name) for f in dataclasses.fields(recipe) if f.metadata.get("recipe")}


# A run directory written before recipes existed ran the paper's settings.
LEGACY_RECIPE = "paper"

# Options the study measured and removed (docs/METHOD.md, "Rejected ideas"), with the value that every
# run now uses: a stored run that holds one of them still reads when it has that value.
RETIRED = {"tri_positives": "least", "tri_confident_bank": False, "re_confident_bank": False, "score_ema": 0.0,
           "select_on": "both", "score_target": "smoothed", "select_by": "self", "ce_on": "both"}
REMOVED_HINT = "removed: see docs/METHOD.md, \"Rejected ideas\""

# The paper's settings and the CPU-sized defaults of the small data sets.
PRESETS = {
    "cifar": {},  # the defaults are the paper's CIFAR settings
    "cifar10nc": {"synthetic": "cifar10nc", "dataset": "cifar10", "open_ratio": 0.0},
    "cifar100nc": {"synthetic": "cifar100nc", "dataset": "cifar100", "open_ratio": 0.0},
    "cifar80no": {"synthetic": "cifar80no", "dataset": "cifar100", "open_ratio": 0.2},
    "web": {"arch": "resnet50", "weights": "imagenet", "optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-5,
            "batch_size": 25, "epochs": 60, "schedule": "cosine", "warmup_epochs": 10, "re_sigma": 0.5,
            "margin": 0.4, "closed_rate": 0.0, "crop_size": 448, "rescale_size": 512, "flip": True},
    # The demo: 40 % symmetric noise on scikit-learn's digits, a couple of minutes on two CPU cores.
    "digits": {"dataset": "digits", "arch": "small", "closed_rate": 0.4, "epochs": 40, "epoch_decay_start": 15,
               "warmup_epochs": 5, "num_gradual": 5, "batch_size": 64, "bank": 1024, "flip": False},
    # Shortened CPU schedule with its last 10 epochs annealed, as the reported last-10 mean needs: with this
    # CNN and Adam, 20 epochs decaying from epoch 10 swing by up to 30 points between epochs; 40 settle.
    "fashion-mnist": {"dataset": "fashion-mnist", "arch": "small", "epochs": 40, "epoch_decay_start": 10,
                      "warmup_epochs": 5, "num_gradual": 5},
}
# --backbone frozen on an image set, unless the user sets them: the geometry ImageNet backbones were
# trained at (the web preset's 448-px crops of 512-px images are for fine-tuning, and cost 4x the
# features' time), and a head's schedule rather than the preset's fine-tuning one (SGD, 25 images a
# step, 60 epochs). In the stand-in study (docs/BACKBONE.md) this schedule ended as accurate (82.40
# against 82.63 % over 3 seeds) with a quarter of the head's training time. Each group applies whole,
# and only where the user set none of its keys, so a setting asked for is never paired with another
# group's values (an --optimizer sgd with Adam's learning rate, --epochs 10 with a decay from epoch 15).
FROZEN_IMAGE_SET = ({"rescale_size": 256}, {"crop_size": 224}, {"batch_size": 64},
                    {"optimizer": "adam", "lr": 0.001, "weight_decay": 0.0},
                    {"epochs": 40, "warmup_epochs": 5, "schedule": "linear", "epoch_decay_start": 15})
# Co-mining's two views on a frozen backbone, unless the user sets --aug: the un-augmented view and the
# strong one. A frozen backbone cannot learn invariance to augmentation, so an augmented input moves its
# features off the test view's distribution; in the stand-in (docs/notes/2026-12-07-frozen-views.md)
# this made the head 3.1 and 1.9 points more accurate on two folders, 0.3 on the third.
FROZEN_AUG = "ts"
# Settings that only --backbone frozen reads (of an --arch backbone, for feature_stages).
FROZEN_ONLY = ("head", "feature_views", "feature_stages", "cache_dir")
# Settings added after runs were stored, with what those runs did: they trained the whole network.
ADDED_LATER = {"backbone": "finetune", "backbone_file": None, "head": "linear", "feature_views": 2, "cache_dir": None,
               "feature_stages": 1}
DATASET_PRESET = {"digits": "digits", "fashion-mnist": "fashion-mnist", "cifar10": "cifar", "cifar100": "cifar",
                  **{name: "web" for name in FOLDER_DATASETS}}


def settings_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(Config))


def field_names() -> list[str]:
    return [f.name for f in settings_fields()]


def choices_of(f: dataclasses.Field):
    """The values a setting accepts, where they are a fixed list."""
    if f.name == "recipe":
        return tuple(_recipes())
    return f.metadata.get("choices")


def resolve(overrides: dict, preset: str | None = None, config_file: str | None = None) -> Config:
    """The settings of a run from explicit ``overrides`` (CLI flags), a preset name and a JSON file.
    A config file takes the same settings as the flags (by setting name), so ``{"synthetic":
    "cifar10nc"}`` in a file means what ``--synthetic-data cifar10nc`` means on the command line."""
    layers = [read_config_file(config_file)] if config_file else []
    user = [*layers, overrides]  # the user's own settings, later winning
    from comining.noise import SYNTHETIC
    for source in user:
        if source.get("synthetic") is not None and source["synthetic"] not in SYNTHETIC:
            raise UserError(f"--synthetic-data {source['synthetic']!r} is not one of the paper's settings: choose "
                            f"one of {', '.join(SYNTHETIC)}, or leave it out and give --dataset")
    named = [preset] if preset else []
    synthetic = next((s["synthetic"] for s in reversed(user) if s.get("synthetic")), None)
    if synthetic:
        named.append(synthetic)
    for name in named:
        if name not in PRESETS:
            raise UserError(f"unknown preset '{name}': choose one of {', '.join(PRESETS)}")
    merged = {}
    for layer in [*(PRESETS[n] for n in named), *user]:
        merged.update(layer)
    dataset = merged.get("dataset", Config.dataset)
    recipe = merged.get("recipe", Config.recipe)
    if recipe not in _recipes():
        raise UserError(f"unknown recipe '{recipe}': choose one of {', '.join(_recipes())}")
    # The recipe sits between the presets and the user's own settings (config file, then flags).
    values = dict(PRESETS.get(DATASET_PRESET.get(dataset, ""), {}))
    for layer in [*(PRESETS[n] for n in named), recipe_values(recipe), *user]:
        values.update(layer)
    values["recipe"] = recipe
    asked = {key for layer in user for key in layer}
    if values.get("labels") and "closed_rate" not in asked:  # a label file's noise is real: none added
        values["closed_rate"] = 0.0
    check_keys(values, "settings")
    if synthetic is not None and values["dataset"] != SYNTHETIC[synthetic][0]:
        raise UserError(f"--synthetic-data {synthetic} is built on {SYNTHETIC[synthetic][0]}, not "
                        f"{values['dataset']}: drop --dataset or --synthetic-data")
    cfg = Config(**values)
    validate(cfg)
    # A new run only: runs made when these were ignored still resume (validate() checks those).
    if cfg.dataset != "csv" and (cfg.train_csv or cfg.val_csv):
        raise UserError(f"--train-csv and --val-csv list the images of --dataset csv only, not of {cfg.dataset}: "
                        "add --dataset csv, or drop them")
    if cfg.backbone == "frozen" and "aug" not in asked:
        cfg.aug = FROZEN_AUG
    if cfg.backbone == "frozen" and cfg.dataset in FOLDER_DATASETS:
        for group in FROZEN_IMAGE_SET:
            if not asked & group.keys():
                for key, value in group.items():
                    setattr(cfg, key, value)
        validate(cfg)
    return cfg


def pretrained(cfg: Config) -> bool:
    """Whether the network starts from pretrained weights: --weights other than none."""
    return (cfg.weights or "none").lower() != "none"


def backbone_mode(cfg: Config) -> str:
    """What --backbone auto means for ``cfg``: frozen with a --backbone-file, and for the user's own image
    sets (folder, csv) on a machine without a GPU where the weights are pretrained (--weights other
    than none); finetune elsewhere (a GPU, the paper's web-* sets, in-memory sets, and
    training from scratch, where frozen features would be random)."""
    if cfg.backbone != "auto":
        return cfg.backbone
    if cfg.backbone_file is not None:  # a feature extractor is only ever used frozen
        return "frozen"
    if cfg.dataset not in USER_IMAGE_SETS or not pretrained(cfg) or cfg.device.startswith("cuda"):
        return "finetune"
    return "frozen" if cfg.device == "cpu" or not torch.cuda.is_available() else "finetune"


def read_config_file(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"config file {path} not found: check the path given to --config") from None
    except OSError as err:  # a folder, no permission
        raise UserError(f"config file {path} cannot be read ({err.strerror}): pass a readable JSON file "
                        "to --config") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"config file {path} is not valid JSON ({err}): fix it or write it again") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold one JSON object of settings, e.g. {{\"epochs\": 40}}")
    check_keys(data, f"config file {path}")
    return data


def check_keys(values: dict, where: str) -> None:
    retired = sorted(set(values) & set(RETIRED))
    if retired:
        raise UserError(f"setting {retired[0]} in {where} was {REMOVED_HINT}")
    unknown = sorted(set(values) - set(field_names()))
    if unknown:
        raise UserError(f"unknown setting(s) {', '.join(unknown)} in {where}: "
                        f"see `comining train --help-all` for the known ones")


def _types_ok(cfg: Config) -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None:
            if "None" not in str(f.type):
                raise UserError(f"setting {f.name} may not be empty: give a value")
            continue
        want = str(f.type).split(" |")[0]
        if f.name == "forget_rate" and value == "auto":  # the one setting that takes a word or a number
            continue
        ok = {"str": isinstance(value, str), "bool": isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool)}.get(want, True)
        if not ok:
            raise UserError(f"setting {f.name} must be of type {want}, got {value!r}")
        if want == "float" and not math.isfinite(value):
            raise UserError(f"setting {f.name} must be a finite number, got {value!r}")


def validate(cfg: Config) -> None:
    """Raise UserError naming the first setting that is out of range; nothing heavy has started yet.
    Also writes ``cfg.noise_type`` in its canonical spelling (``sym`` → ``symmetric``)."""
    _types_ok(cfg)
    from comining.noise import canonical_noise_type
    cfg.noise_type = canonical_noise_type(cfg.noise_type)
    for f in dataclasses.fields(cfg):
        allowed = choices_of(f)
        if allowed and getattr(cfg, f.name) not in allowed:
            raise UserError(f"--{f.name.replace('_', '-')} {getattr(cfg, f.name)!r} is not one of {', '.join(allowed)}")
    need(cfg.method in METHODS, f"unknown method '{cfg.method}': choose one of {', '.join(sorted(METHODS))}")
    for name in ("closed_rate", "open_ratio"):
        need(0 <= getattr(cfg, name) < 1, f"--{name.replace('_', '-')} {getattr(cfg, name)} is outside [0, 1): "
             "give a fraction such as 0.2")
    need(cfg.forget_rate in (None, "auto") or (not isinstance(cfg.forget_rate, str) and 0 <= cfg.forget_rate < 1),
         f"--forget-rate {cfg.forget_rate} is outside [0, 1): give a fraction such as 0.2, or auto")
    need(not (cfg.dataset in FOLDER_DATASETS and (cfg.closed_rate or cfg.open_ratio)),
         "--closed-rate and --open-ratio add synthetic noise to in-memory data sets only; an image folder's "
         "labels are used as given: drop them (set --forget-rate for the share of each batch to treat as suspect)")
    need(cfg.dataset != "csv" or bool(cfg.train_csv and cfg.val_csv),
         "--dataset csv reads the images listed in --train-csv FILE and --val-csv FILE (rows path,label): "
         "give both")
    need(cfg.label_key is None or cfg.labels is not None, "--label-key picks an array of a .pt --labels file: "
         "give --labels FILE too")
    for name in ("lr", "weight_decay", "momentum"):
        need(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} {getattr(cfg, name)} must not be negative")
    need(cfg.lr > 0, f"--lr {cfg.lr} must be positive")
    need(cfg.batch_size >= 2, f"--batch-size {cfg.batch_size} must be at least 2 (BatchNorm needs two samples)")
    need(cfg.epochs >= 1, f"--epochs {cfg.epochs} must be at least 1")
    for name in ("warmup_epochs", "num_gradual", "epoch_decay_start", "noise_seed", "seed", "workers"):
        need(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} {getattr(cfg, name)} must not be negative")
    need(cfg.eval_batch_size >= 1, f"--eval-batch-size {cfg.eval_batch_size} must be at least 1")
    for name in ("train_subset", "test_subset", "crop_size", "padding"):
        value = getattr(cfg, name)
        need(value is None or value >= (0 if name == "padding" else 1),
             f"--{name.replace('_', '-')} {value} is too small")
    need(cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"),
         f"--device {cfg.device!r} is not auto, cpu or cuda[:N]")
    cfg.backbone = backbone_mode(cfg)
    need(cfg.backbone_file is None or cfg.backbone == "frozen",
         "--backbone-file is the feature extractor of --backbone frozen: add --backbone frozen, or drop it")
    need(cfg.feature_views >= 1, f"--feature-views {cfg.feature_views} must be at least 1")
    need(cfg.feature_stages >= 1, f"--feature-stages {cfg.feature_stages} must be at least 1")
    for options in method_options().values():  # every method's options, so a grid fails before it trains
        options.validate(cfg)


# Settings that change where and how visibly a run is executed, not what it computes.
RUNTIME_SETTINGS = {"out", "quiet", "workers", "eval_batch_size", "device"}
# Settings a resumed run may change: those, but for its folder, and two that change its numbers from the
# resumed epoch on without changing what it computes (the precision; the base --lr, which every epoch's
# schedule starts from).
RESUMABLE = (RUNTIME_SETTINGS - {"out"}) | {"precision", "lr"}


def from_stored(values: dict) -> dict:
    """Settings of a stored config.json or checkpoint, read by this version.

    A run made before recipes existed ran the paper's settings, so its missing recipe options are the
    paper's; a recipe option added later is missing from runs made before it, which ran its paper
    value. A retired option is dropped where it holds the value every run now uses; any other value
    is a UserError (that run used a removed code path)."""
    for key, value in values.items():
        if key in RETIRED and value != RETIRED[key]:
            raise UserError(f"this run used {key} = {value!r}, which was {REMOVED_HINT}; read it with the "
                            "comining version that made it")
    kept = {k: v for k, v in values.items() if k not in RETIRED}
    return {**recipe_values(LEGACY_RECIPE), **ADDED_LATER, **kept, "recipe": kept.get("recipe", LEGACY_RECIPE)}


def comparable(values: dict) -> dict:
    """Settings in the form two runs are compared in: an ε of 0.5 is what the default (None) means on
    every data set where 0.5 can run at all (three classes or more), so runs stored before the default
    became None still match it."""
    return {**values, "epsilon": None} if values.get("epsilon") == 0.5 else values


def noise_tag(cfg: Config) -> str:
    """Short name of the noise setting for run directories and tables, e.g. sym50, asym40-open20."""
    if cfg.closed_rate == 0 and cfg.open_ratio == 0:
        return "labels" if cfg.labels else "clean"
    tag = f"{'sym' if cfg.noise_type == 'symmetric' else 'asym'}{round(cfg.closed_rate * 100)}"
    return tag + (f"-open{round(cfg.open_ratio * 100)}" if cfg.open_ratio else "")
