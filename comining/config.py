"""All settings of a run in one dataclass, the paper's presets, and validation.

A run's settings resolve in this order, later winning: the dataclass defaults (the paper's CIFAR
settings, on the embedded digits data set), the preset of the data set, a named preset (``--preset`` /
``--synthetic-data``), the Co-mining recipe (``--recipe``), a JSON config file (``--config``), and flags
given on the command line.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from comining.errors import UserError

WEB_DATASETS = ("web-bird", "web-car", "web-aircraft")
# Image sets read from disk (folders, or a CSV list of files); their labels carry real noise.
FOLDER_DATASETS = (*WEB_DATASETS, "folder", "csv")


@dataclass
class Config:
    # data
    dataset: str = "digits"  # the embedded default; its preset makes `comining train` the demo
    data_root: str | None = None
    synthetic: str | None = None  # cifar10nc | cifar100nc | cifar80no: the paper's named settings
    noise_type: str = "symmetric"
    closed_rate: float = 0.2
    open_ratio: float = 0.0
    noise_seed: int = 0
    train_subset: int | None = None  # keep the first n training images (CPU-sized runs)
    test_subset: int | None = None
    labels: str | None = None  # a label file replacing the training labels (comining/labelfile.py)
    label_key: str | None = None  # the array of a CIFAR-N .pt label file
    train_csv: str | None = None  # --dataset csv: the training images, rows path,label
    val_csv: str | None = None
    # model
    arch: str = "cnn"
    weights: str | None = None
    # method
    method: str = "comining"
    recipe: str = "default"  # a named set of Co-mining settings (RECIPES); the defaults below are its values
    forget_rate: float | str | None = None  # None: from the noise rates ("auto" where they are unknown); "auto": estimated
    num_gradual: int = 10
    warmup_epochs: int = 10
    epsilon: float | None = None  # None: the paper's 0.5, or 0.2 with two classes (default_epsilon)
    confident_fraction: float = 0.5
    w_pc: float = 0.0  # the default recipe's; the paper's is 1 (--recipe paper)
    w_tri: float = 0.0  # the default recipe's; the paper's is 3 (--recipe paper)
    w_re: float = 0.01
    margin: float = 0.0
    plk: int = 0
    puk: int = 5
    nlk: int = 0
    nuk: int = 5
    re_k: int = 15
    re_sigma: float = 0.15
    bank: int = 4096
    aug: str = "ws"
    tri_positives: str = "least"  # triplet positives ranked from the least (DESIGN.md §2) or most similar entries
    tri_confident_bank: bool = False  # triplet mines only bank entries pushed after warm-up (from H)
    re_confident_bank: bool = False  # relabelling votes only with bank entries pushed after warm-up
    score_ema: float = 0.0  # select on an exponential average of each sample's score over epochs (0: this step's)
    select_per_class: bool = True  # split C/H/D within each given label instead of across the batch
    forget_ramp: bool = True  # after warm-up, ramp the forget rate from 0 over --num-gradual epochs (the default recipe's)
    select_on: str = "both"  # the selection score: both views' CE + consistency (paper), or the weak view's CE
    score_target: str = "smoothed"  # selection's cross-entropy: against the smoothed target (paper) or the given label
    select_by: str = "self"  # whose score picks a network's clean set: its own (paper), or a second network's
    ce_on: str = "both"  # the views whose cross-entropy fits the labels: both (paper), or the weak view alone
    baseline_aug: str = "none"
    jocor_lambda: float | None = None  # None: the paper's rule from the class count and noise rate
    # optimisation
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 200
    schedule: str = "linear"  # linear: decay to 0 from epoch_decay_start (Adam β1 → 0.1); cosine
    epoch_decay_start: int = 80
    # images
    crop_size: int | None = None  # None: the image side (in-memory data) or 448 (image folders)
    rescale_size: int = 512
    padding: int | None = None  # None: crop_size // 8, the 4 px of 32-px CIFAR
    flip: bool | None = None  # None: per data set (digits are not mirror-symmetric)
    # run
    seed: int = 1
    device: str = "auto"
    precision: str = "auto"
    out: str | None = None
    workers: int = 4
    eval_batch_size: int = 512
    quiet: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CHOICES = {
    "noise_type": ("symmetric", "asymmetric"),
    "aug": ("ws", "ww", "ss"),
    "baseline_aug": ("none", "weak"),
    "optimizer": ("adam", "sgd"),
    "schedule": ("linear", "cosine"),
    "precision": ("auto", "fp32", "bf16"),
    "tri_positives": ("least", "most"),
    "select_on": ("both", "weak"),
    "select_by": ("self", "peer"),
    "score_target": ("smoothed", "given"),
    "ce_on": ("both", "weak"),
}

# Named sets of Co-mining's own settings (not the data set's: margin and σ stay the preset's). Each
# recipe names every setting below, so recipes never depend on one another or on the order applied.
_PAPER_RECIPE = {"w_tri": 3.0, "tri_positives": "least", "tri_confident_bank": False, "re_confident_bank": False,
                 "score_ema": 0.0, "select_per_class": False, "forget_ramp": False, "aug": "ws", "w_re": 0.01,
                 "w_pc": 1.0, "select_on": "both", "select_by": "self",
                 "score_target": "smoothed", "ce_on": "both"}
RECIPES = {
    "paper": _PAPER_RECIPE,  # DESIGN.md §2 as written, with the intended triplet loss
    "authors": {**_PAPER_RECIPE, "w_tri": 0.0},  # what the authors' code optimised: its triplet term is 0
    # The study's choice (docs/RESULTS.md, issue 11): no triplet term, selection within each given label,
    # no prediction-consistency term (on clean labels it alone cost 2.9 points), and the forget rate
    # ramped in after warm-up (at symmetric 80 % a jump to it loses classes in the first epoch).
    "default": {**_PAPER_RECIPE, "w_tri": 0.0, "select_per_class": True, "w_pc": 0.0, "forget_ramp": True},
}
# A run directory written before recipes existed ran the paper's settings.
LEGACY_RECIPE = "paper"

# The paper's settings (DESIGN.md §6) and the CPU-sized defaults of the small data sets.
PRESETS = {
    "cifar": {},  # the dataclass defaults are the paper's CIFAR settings
    "cifar10nc": {"synthetic": "cifar10nc", "dataset": "cifar10", "open_ratio": 0.0},
    "cifar100nc": {"synthetic": "cifar100nc", "dataset": "cifar100", "open_ratio": 0.0},
    "cifar80no": {"synthetic": "cifar80no", "dataset": "cifar100", "open_ratio": 0.2},
    "web": {"arch": "resnet50", "weights": "imagenet", "optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-5,
            "batch_size": 25, "epochs": 60, "schedule": "cosine", "warmup_epochs": 10, "re_sigma": 0.5,
            "margin": 0.4, "closed_rate": 0.0, "crop_size": 448, "rescale_size": 512, "flip": True},
    # The demo: 40 % symmetric noise on scikit-learn's digits, a couple of minutes on two CPU cores.
    "digits": {"dataset": "digits", "arch": "small", "closed_rate": 0.4, "epochs": 40, "epoch_decay_start": 15,
               "warmup_epochs": 5, "num_gradual": 5, "batch_size": 64, "bank": 1024, "flip": False},
    # Shortened CPU schedule: the last 10 epochs stay annealed (DESIGN.md §6).
    "fashion-mnist": {"dataset": "fashion-mnist", "arch": "small", "epochs": 40, "epoch_decay_start": 10,
                      "warmup_epochs": 5, "num_gradual": 5},
}
DATASET_PRESET = {"digits": "digits", "fashion-mnist": "fashion-mnist", "cifar10": "cifar", "cifar100": "cifar",
                  **{name: "web" for name in FOLDER_DATASETS}}


def dataset_preset(dataset: str) -> dict:
    return PRESETS.get(DATASET_PRESET.get(dataset, ""), {})


def resolve(overrides: dict, preset: str | None = None, config_file: str | None = None) -> Config:
    """The settings of a run from explicit ``overrides`` (CLI flags), a preset name and a JSON file."""
    layers = []
    if config_file:
        layers.append(read_config_file(config_file))
    named = [preset] if preset else []
    from comining.noise import SYNTHETIC
    for source in (overrides, *layers):
        if source.get("synthetic") is not None and source["synthetic"] not in SYNTHETIC:
            raise UserError(f"--synthetic-data {source['synthetic']!r} is not one of the paper's settings: choose "
                            f"one of {', '.join(SYNTHETIC)}, or leave it out and give --dataset")
    if overrides.get("synthetic"):
        named.append(overrides["synthetic"])
    for name in named:
        if name not in PRESETS:
            raise UserError(f"unknown preset '{name}': choose one of {', '.join(PRESETS)}")
    merged = {}
    for layer in [*(PRESETS[n] for n in named), *layers, overrides]:
        merged.update(layer)
    dataset = merged.get("dataset", Config.dataset)
    recipe = merged.get("recipe", Config.recipe)
    if recipe not in RECIPES:
        raise UserError(f"unknown recipe '{recipe}': choose one of {', '.join(RECIPES)}")
    # The recipe sits between the presets and the user's own settings (config file, then flags).
    values = dict(dataset_preset(dataset))
    for layer in [*(PRESETS[n] for n in named), RECIPES[recipe], *layers, overrides]:
        values.update(layer)
    values["recipe"] = recipe
    asked = {key for layer in (*layers, overrides) for key in layer}
    if values.get("labels") and "closed_rate" not in asked:  # a label file's noise is real: none added
        values["closed_rate"] = 0.0
    check_keys(values, "settings")
    synthetic = values.get("synthetic")
    if synthetic is not None:
        if values["dataset"] != SYNTHETIC[synthetic][0]:
            raise UserError(f"--synthetic-data {synthetic} is built on {SYNTHETIC[synthetic][0]}, not "
                            f"{values['dataset']}: drop --dataset or --synthetic-data")
    cfg = Config(**values)
    validate(cfg)
    return cfg


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
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown setting(s) {', '.join(unknown)} in {where}: "
                        f"see `comining train --help` for the known ones")


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
    """Raise UserError naming the first setting that is out of range; nothing heavy has started yet."""
    _types_ok(cfg)
    from comining.noise import canonical_noise_type
    cfg.noise_type = canonical_noise_type(cfg.noise_type)
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name.replace('_', '-')} {getattr(cfg, name)!r} is not one of {', '.join(allowed)}")

    def need(ok: bool, message: str):
        if not ok:
            raise UserError(message)

    for name in ("closed_rate", "open_ratio"):
        need(0 <= getattr(cfg, name) < 1, f"--{name.replace('_', '-')} {getattr(cfg, name)} is outside [0, 1): "
             "give a fraction such as 0.2")
    need(cfg.forget_rate in (None, "auto") or (not isinstance(cfg.forget_rate, str) and 0 <= cfg.forget_rate < 1),
         f"--forget-rate {cfg.forget_rate} is outside [0, 1): give a fraction such as 0.2, or auto")
    need(cfg.recipe in RECIPES, f"--recipe {cfg.recipe!r} is not one of {', '.join(RECIPES)}")
    need(not (cfg.score_ema and cfg.select_by == "peer"), "--score-ema averages one network's scores: "
         "use it with --select-by self, or pass --score-ema 0")
    need(0 <= cfg.score_ema < 1, f"--score-ema {cfg.score_ema} is outside [0, 1): the weight of the past, e.g. 0.5")
    need(not (cfg.dataset in FOLDER_DATASETS and (cfg.closed_rate or cfg.open_ratio)),
         "--closed-rate and --open-ratio add synthetic noise to in-memory data sets only; an image folder's "
         "labels are used as given: drop them (set --forget-rate for the share of each batch to treat as suspect)")
    need((cfg.dataset == "csv") == bool(cfg.train_csv and cfg.val_csv),
         "--dataset csv reads the images listed in --train-csv FILE and --val-csv FILE (rows path,label): "
         "give all three, or neither CSV")
    need(cfg.label_key is None or cfg.labels is not None, "--label-key picks an array of a .pt --labels file: "
         "give --labels FILE too")
    need(cfg.epsilon is None or 0 <= cfg.epsilon < 1,
         f"--epsilon {cfg.epsilon} is outside [0, 1): the label-smoothing mass, e.g. 0.5")
    need(0 < cfg.confident_fraction <= 1, f"--confident-fraction {cfg.confident_fraction} is outside (0, 1]")
    for name in ("w_pc", "w_tri", "w_re", "margin", "lr", "weight_decay", "momentum"):
        need(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} {getattr(cfg, name)} must not be negative")
    need(cfg.lr > 0, f"--lr {cfg.lr} must be positive")
    need(0 <= cfg.plk < cfg.puk, f"--plk {cfg.plk} --puk {cfg.puk}: need 0 <= plk < puk (a rank range)")
    need(0 <= cfg.nlk < cfg.nuk, f"--nlk {cfg.nlk} --nuk {cfg.nuk}: need 0 <= nlk < nuk (a rank range)")
    need(cfg.re_k >= 1, f"--re-k {cfg.re_k} must be at least 1")
    need(0 <= cfg.re_sigma <= 1, f"--re-sigma {cfg.re_sigma} is outside [0, 1]")
    need(cfg.bank >= 1, f"--bank {cfg.bank} must be at least 1")
    need(cfg.batch_size >= 2, f"--batch-size {cfg.batch_size} must be at least 2 (BatchNorm needs two samples)")
    need(cfg.epochs >= 1, f"--epochs {cfg.epochs} must be at least 1")
    for name in ("warmup_epochs", "num_gradual", "epoch_decay_start", "noise_seed", "seed"):
        need(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} {getattr(cfg, name)} must not be negative")
    need(cfg.workers >= 0, f"--workers {cfg.workers} must not be negative")
    need(cfg.eval_batch_size >= 1, f"--eval-batch-size {cfg.eval_batch_size} must be at least 1")
    for name in ("train_subset", "test_subset", "crop_size", "padding"):
        value = getattr(cfg, name)
        need(value is None or value >= (0 if name == "padding" else 1),
             f"--{name.replace('_', '-')} {value} is too small")
    need(cfg.jocor_lambda is None or 0 <= cfg.jocor_lambda <= 1, f"--jocor-lambda {cfg.jocor_lambda} is outside [0, 1]")
    need(cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"),
         f"--device {cfg.device!r} is not auto, cpu or cuda[:N]")


def effective_forget_rate(cfg: Config) -> float | None:
    """--forget-rate if given; else the share of wrong labels the noise protocol implies. None where
    the rate is to be estimated from the losses (``auto``, the default where no protocol fixes it)."""
    from comining.noise import forget_rate
    if cfg.forget_rate == "auto" or (cfg.forget_rate is None and rate_is_unknown(cfg)):
        return None
    if cfg.forget_rate is not None:
        return cfg.forget_rate
    return forget_rate(cfg.closed_rate, cfg.open_ratio)


def rate_is_unknown(cfg: Config) -> bool:
    """Whether the labels carry real noise of unknown rate (image folders, label files) rather than a
    synthetic protocol's, whose rate is known."""
    return cfg.dataset in FOLDER_DATASETS or cfg.labels is not None


def from_stored(values: dict) -> dict:
    """Settings of a stored config.json or checkpoint, read by this version: a run made before
    recipes existed ran the paper's settings, so its missing recipe settings are the paper's; a recipe
    setting added later is missing from runs made before it, which ran its paper value (every knob a
    study adds is off in `paper`)."""
    if "recipe" in values:
        return {**RECIPES[LEGACY_RECIPE], **values}
    return {**RECIPES[LEGACY_RECIPE], **values, "recipe": LEGACY_RECIPE}


def default_epsilon(num_classes: int) -> float:
    """The label-smoothing mass where --epsilon is not given: the paper's 0.5, or 0.2 with two classes,
    where 0.5 would give both classes the same target (0.2 keeps the label four times as likely)."""
    return 0.5 if num_classes > 2 else 0.2


def comparable(values: dict) -> dict:
    """Settings in the form two runs are compared in: an ε of 0.5 is what the default (None) means on
    every data set where 0.5 can run at all (three classes or more), so runs stored before the default
    became None still match it."""
    if values.get("epsilon") == 0.5:
        return {**values, "epsilon": None}
    return values


def noise_tag(cfg: Config) -> str:
    """Short name of the noise setting for run directories and tables, e.g. sym50, asym40-open20."""
    if cfg.labels and cfg.closed_rate == 0 and cfg.open_ratio == 0:
        return "labels"
    if cfg.closed_rate == 0 and cfg.open_ratio == 0:
        return "clean"
    tag = f"{'sym' if cfg.noise_type == 'symmetric' else 'asym'}{round(cfg.closed_rate * 100)}"
    return tag + (f"-open{round(cfg.open_ratio * 100)}" if cfg.open_ratio else "")


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Config)]

