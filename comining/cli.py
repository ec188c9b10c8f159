"""Command line: argument parsing and sub-commands only.

Every setting of ``Config`` is a flag with a readable name (``--closed-rate``) and the spelling of
the authors' scripts (``--closeset_ratio``), so their commands run with ``comining train`` in place
of ``python cifarmain.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from comining.config import CHOICES, PRESETS, RECIPES, Config
from comining.errors import TrainingStopped, UserError
from comining.table import PAPER_METHODS, PAPER_NOISE, TABLE_PRESETS

# Extra spellings: the seed's option names and common variants.
ALIASES = {
    "synthetic": ["--synthetic-data"],
    "closed_rate": ["--closeset_ratio", "--closeset-ratio", "--noise-rate", "--noise_rate"],
    "open_ratio": ["--openset_ratio", "--openset-ratio"],
    "margin": ["--m"],
    "re_k": ["--re_k1", "--re-k1"],
    "epochs": ["--n_epoch", "--n-epoch", "--n_epochs"],
    "warmup_epochs": ["--warmup"],
    "data_root": ["--root"],
}
HELP = {
    "dataset": "digits (default, bundled), fashion-mnist, cifar10, cifar100, web-bird, web-car, web-aircraft, "
               "folder (an image folder given by --data-root), csv (images listed in --train-csv / --val-csv); "
               "see docs/DATA.md",
    "data_root": "folder holding the data set (default: datasets/)",
    "synthetic": "the paper's named setting: cifar10nc, cifar100nc, cifar80no",
    "noise_type": "symmetric or asymmetric (pair flip)",
    "closed_rate": "closed-set noise rate ρc",
    "open_ratio": "share of classes (the last ones) turned into open-set noise ρo",
    "noise_seed": "seed of the label corruption (0 reproduces the established protocol)",
    "train_subset": "train on the first N training images only",
    "test_subset": "evaluate on the first N test images only",
    "labels": "label file replacing the training labels: .csv (index,label or path,label), .npy, or a "
              "CIFAR-N .pt; -1 or an empty label leaves a sample out (docs/DATA.md)",
    "label_key": "the array of a CIFAR-N .pt label file (default aggre_label or noisy_label)",
    "train_csv": "--dataset csv: CSV of training images, rows path,label (paths relative to the CSV)",
    "val_csv": "--dataset csv: CSV of correctly labelled evaluation images, rows path,label",
    "arch": "cnn (the paper's 6-layer CNN), small (a CPU-sized CNN), resnet18, resnet50",
    "weights": "initial weights: none (random), imagenet (torchvision's, downloaded), or a state-dict file",
    "rescale_size": "image folders: side every image is resized to before cropping",
    "crop_size": "side of the training crops and the centre crop for evaluation",
    "workers": "image folders: processes decoding images",
    "method": "training method, e.g. comining, standard",
    "forget_rate": "share of each batch treated as noisy, or auto: estimated from the losses after warm-up, "
                   "and for Co-mining again after as many epochs of selection (default: implied by the "
                   "synthetic noise rates; auto for image folders and label files)",
    "recipe": "named set of Co-mining settings: " + ", ".join(RECIPES) + " (docs/METHOD.md)",
    "tri_positives": "triplet positives ranked from the least (paper) or most similar bank entries",
    "tri_confident_bank": "the triplet loss mines only bank entries pushed after warm-up (the confident set)",
    "re_confident_bank": "relabelling votes only with bank entries pushed after warm-up (the confident set)",
    "score_ema": "select on an exponential average of each sample's score over epochs (weight of the past)",
    "select_per_class": "split clean / noisy within each given label instead of across the batch",
    "forget_ramp": "ramp Co-mining's forget rate from 0 after warm-up over --num-gradual epochs (the default "
                   "recipe's; --no-forget-ramp jumps to it, as the paper)",
    "select_on": "selection score: both (both views' cross-entropy + consistency, the paper's) or weak "
                 "(the first view's cross-entropy alone)",
    "score_target": "the selection score's cross-entropy against: smoothed (the training target, the paper's) "
                    "or given (the given label alone, as the small-loss baselines rank)",
    "select_by": "whose score picks each network's clean set: self (the paper's one network) or peer "
                 "(two networks, each training on the split the other's score makes, as in Co-teaching)",
    "ce_on": "the views whose cross-entropy fits the labels: both (the paper's) or weak (the first view alone; "
             "the strong view still enters the consistency term where --w-pc > 0)",
    "num_gradual": "epochs over which the forget rate ramps up (the baselines'; Co-mining's with --forget-ramp)",
    "warmup_epochs": "epochs of plain training before Co-mining starts selecting",
    "epsilon": "label-smoothing mass ε (default: the paper's 0.5; 0.2 with two classes)",
    "confident_fraction": "share e of the clean set used as high-confidence anchors",
    "w_pc": "weight of the prediction-consistency loss",
    "w_tri": "weight of the semi-hard triplet loss",
    "w_re": "weight of the relabelling loss",
    "margin": "triplet margin m",
    "plk": "lowest positive rank", "puk": "positive ranks end (exclusive)",
    "nlk": "lowest negative rank", "nuk": "negative ranks end (exclusive)",
    "re_k": "k of the k-reciprocal neighbours",
    "re_sigma": "in-distribution threshold σ on the soft label",
    "bank": "memory bank size per view",
    "aug": "Co-mining's two views: ws (weak+strong), ww, ss",
    "baseline_aug": "baselines' view: none (as the paper) or weak",
    "jocor_lambda": "JoCoR's co-regularisation weight (default: the paper's rule)",
    "epoch_decay_start": "epoch from which the learning rate decays linearly",
    "precision": "auto (bf16 where the hardware computes it natively), fp32, bf16",
    "device": "auto, cpu, cuda or cuda:N",
    "out": "run directory (default runs/<dataset>-<noise>-<method>-<time>)",
    "quiet": "no progress bars",
}


def forget_rate_arg(text: str):
    """--forget-rate: a fraction, or auto."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a fraction such as 0.2 nor auto") from None


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): the problem and where to read more."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field; defaults are suppressed so only what the user typed overrides."""
    for field in dataclasses.fields(Config):
        name = field.name
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else []) + ALIASES.get(name, [])
        kind = str(field.type).split(" |")[0]
        options = {"dest": name, "default": argparse.SUPPRESS, "help": HELP.get(name, "")}
        if kind == "bool":
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = {"int": int, "float": float}.get(kind, str)
            options["metavar"] = name.upper()
            if name in CHOICES and name != "noise_type":  # noise types also accept aliases (pairflip)
                options["choices"] = CHOICES[name]
        if name == "forget_rate":
            options["type"] = forget_rate_arg
        if name == "recipe":
            options["choices"] = list(RECIPES)
        parser.add_argument(*flags, **options)


def build_parser() -> Parser:
    parser = Parser(prog="comining", description="Train image classifiers on noisy labels with Co-mining "
                                                 "and its baselines.")
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    train = commands.add_parser("train", help="train one run (no arguments: the digits demo)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--preset", choices=sorted(PRESETS), help="a named set of the paper's settings")
    train.add_argument("--config", metavar="FILE", help="JSON file of settings (flags override it)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    add_config_flags(train)

    table = commands.add_parser("table", help="run a grid of methods × noise settings and write its table",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    table.add_argument("--preset", choices=sorted(TABLE_PRESETS) + sorted(PRESETS),
                       help="table1/table2/table3: the paper's CIFAR-10N / CIFAR-100N / CIFAR-80N tables")
    table.add_argument("--config", metavar="FILE", help="JSON file of settings shared by every run")
    table.add_argument("--methods", default=",".join(PAPER_METHODS), help="comma-separated methods (columns)")
    table.add_argument("--noise", default=",".join(PAPER_NOISE),
                       help="comma-separated settings (rows), e.g. sym50,asym40,sym20-open20")
    table.add_argument("--seeds", metavar="LIST",
                       help="comma-separated training seeds, one run per cell and seed (replaces --seed); "
                            "cells report mean ± std over the seeds")
    add_config_flags(table)

    inspect = commands.add_parser("inspect", help="summarise a run's verdicts per class and draw a contact sheet")
    inspect.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (--out of comining train)")
    inspect.add_argument("--output", metavar="PNG", help="contact sheet path (default: RUN_DIR/contact_sheet.png)")
    inspect.add_argument("--per-class", type=int, default=8, help="images shown per class and verdict (default: 8)")
    inspect.add_argument("--max-classes", type=int, default=50,
                         help="classes drawn, those with the most images set aside first (default: 50)")

    predict = commands.add_parser("predict", help="classify image files or folders with a trained run",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    predict.add_argument("--run", required=True, metavar="RUN_DIR", help="the run directory whose model to use")
    predict.add_argument("--output", default="predictions.csv", metavar="CSV", help="where to write the predictions")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    predict.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    predict.add_argument("--workers", type=int, default=2, help="processes decoding images")

    review = commands.add_parser("review", help="write a page to look at a run's verdicts, decide, and save labels")
    review.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (--out of comining train)")
    review.add_argument("--serve", action="store_true",
                        help="also serve the page on 127.0.0.1; saving then writes RUN_DIR/reviewed_labels.csv")
    review.add_argument("--port", type=int, default=8765, help="port for --serve (default: 8765; 0: any free one)")

    export = commands.add_parser("export", help="write a run's decisions as a label file to train on again")
    export.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (--out of comining train)")
    export.add_argument("--out", required=True, metavar="FILE", help="label file to write (.csv or .npy)")
    export.add_argument("--format", choices=("csv", "npy"), help="file format (default: from FILE's extension)")
    export.add_argument("--keep-discarded", action="store_true",
                        help="keep discarded samples with their given label instead of leaving them out")
    return parser


def typed_settings(args) -> dict:
    """The Config settings the user gave on the command line (argparse suppressed the rest)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}


# Settings a resumed run may change: they leave what is computed, and in which order, as it was.
RESUMABLE = {"device", "precision", "lr", "workers", "quiet", "eval_batch_size"}


def cmd_train(args) -> int:
    from comining import distributed
    from comining.config import resolve
    from comining.engine import Trainer
    from comining.rundir import default_out

    overrides = typed_settings(args)
    if args.resume:
        fixed = sorted(set(overrides) - RESUMABLE) + (["--preset"] if args.preset else []) + (
            ["--config"] if args.config else [])
        if fixed:
            raise UserError(f"--resume continues a run with its own settings; drop {', '.join(fixed)} "
                            f"(a resumed run may change only {', '.join(sorted(RESUMABLE))})")
        trainer = Trainer.resume(args.resume, overrides)
        out = args.resume
    else:
        cfg = resolve(overrides, preset=args.preset, config_file=args.config)
        out = cfg.out or str(default_out(cfg))
        trainer = Trainer(cfg, out)
    main_process = distributed.is_main()
    try:
        results = trainer.fit()
    finally:
        distributed.cleanup()
    if main_process:
        print_summary(trainer.cfg, results, out)
    return 0


def cmd_table(args) -> int:
    from comining.config import resolve
    from comining.table import run_grid, write_table

    overrides = typed_settings(args)
    preset = TABLE_PRESETS.get(args.preset, args.preset)
    base = resolve(overrides, preset=preset, config_file=args.config)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    noises = [n.strip() for n in args.noise.split(",") if n.strip()]
    out = base.out or f"tables/{args.preset or base.synthetic or base.dataset}"
    seeds = parse_seeds(args.seeds, "seed" in overrides) if args.seeds is not None else None
    results = run_grid(base, methods, noises, out, seeds)
    title = f"{base.synthetic or base.dataset}, {base.arch} network, last-10 mean ± std of test accuracy (%)"
    if seeds and len(seeds) > 1:
        title += f", {len(seeds)} seeds"
    print(write_table(results, methods, noises, out, title))
    print(f"table, CSV and plot in {out}/ (table.md, table.csv, table.png)")
    return 0


def parse_seeds(text: str, seed_given: bool) -> list[int]:
    """--seeds 1,2,3 → [1, 2, 3]; a one-line error for anything else."""
    if seed_given:
        raise UserError("--seeds replaces --seed for a grid: give one of them")
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--seeds {text!r} is not a comma-separated list of integers, e.g. 1,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"--seeds {text!r} must list distinct non-negative integers, e.g. 1,2,3")
    return seeds


def print_summary(cfg: Config, results: dict, out: str) -> None:
    noise = results.get("noise", {})
    n = results["train_size"]
    method = cfg.method + (f" (recipe {cfg.recipe})" if cfg.method == "comining" else "")
    if "skipped_files" in results:  # an image folder: labels as given, no synthetic noise to report
        skipped = results["skipped_files"]
        head = (f"{method} on {cfg.dataset}: {n} training images"
                + (f" ({skipped} unreadable file{'s' if skipped != 1 else ''} skipped, listed in skipped_files.txt)"
                   if skipped else ", no unreadable files"))
    else:
        parts = [f"labels of {cfg.labels}" + (f"[{cfg.label_key}]" if cfg.label_key else "")] if cfg.labels else []
        if cfg.closed_rate or cfg.open_ratio or not cfg.labels:  # synthetic noise, on its own or on top
            parts.append(f"{cfg.noise_type} {cfg.closed_rate:.0%}"
                         + (f", open-set {cfg.open_ratio:.0%}" if cfg.open_ratio else ""))
        head = (f"{method} on {cfg.dataset}: {n} training images, "
                f"{noise.get('wrong_labels', 0) * 100:.1f} % of labels wrong ({' + '.join(parts)})")
    left_out = results.get("left_out")
    if left_out:
        head += f"; {left_out} sample{'s' if left_out != 1 else ''} left out of training (no label in the label file)"
    lines = [head,
             f"test accuracy {results['last10_mean']:.2f} ± {results['last10_std']:.2f} % "
             f"(last {min(10, results['epochs'])} epochs; best {results['best_acc']:.2f} at epoch {results['best_epoch']}; "
             f"{results['precision']} on {results['device']}, {results['seconds']:.0f} s)"]
    if "estimated_noise_rate" in results:
        lines.append(f"noise rate estimated from the losses: {results['estimated_noise_rate']:.1%}"
                     + (f" (realised {noise['wrong_labels']:.1%})" if "wrong_labels" in noise else "")
                     + "; used as the forget rate")
    if "n_wrong_labels" in results:  # final verdicts: every method has them
        wrong = results["n_wrong_labels"]
        lines.append(f"wrong labels caught: {results['wrong_caught']} of {wrong}"
                     + (f" ({results['wrong_caught'] / wrong:.0%})" if wrong else "")
                     + f"; right labels set aside: {results['right_flagged']} of {n - wrong}")
    lines.append(f"verdicts: {results['n_clean']} clean, {results['n_relabelled']} relabelled"
                 + (f" ({results['relabelled_correctly']} to the true class)" if "relabelled_correctly" in results else "")
                 + f", {results['n_discarded']} discarded")
    lines.append(f"run directory: {out} (verdicts.csv, metrics.jsonl, curves.png)")
    if "skipped_files" in results:
        lines.append(f"look at the verdicts with `comining inspect {out}`; "
                     f"classify new images with `comining predict --run {out} PATH...`")
    print("\n".join(lines))


def cmd_inspect(args) -> int:
    from comining.verdicts_view import inspect_run

    if args.per_class < 1 or args.max_classes < 1:
        raise UserError("--per-class and --max-classes must be at least 1")
    text, _ = inspect_run(args.run_dir, args.output, args.per_class, args.max_classes)
    print(text)
    return 0


def cmd_predict(args) -> int:
    from comining.predict import predict

    if args.batch_size < 1 or args.workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers not negative")
    result = predict(args.run, args.paths, args.output, args.device, args.batch_size, args.workers)
    counts = ", ".join(f"{n} {name}" for name, n in list(result["counts"].items())[:8])
    more = len(result["counts"]) - 8
    print(f"classified {result['images'] - result['errors']} of {result['images']} images with {args.run}"
          + (f" ({result['errors']} unreadable, marked in the error column)" if result["errors"] else "")
          + (f": {counts}" + (f" and {more} more classes" if more > 0 else "") if counts else ""))
    print(f"predictions: {result['output']} (path, class, confidence, error)")
    return 0


def cmd_review(args) -> int:
    from comining.review import build_review
    from comining.review.serve import serve

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port: give 1-65535, or 0 for any free one")
    print(f"review page: {build_review(args.run_dir)}", flush=True)
    if args.serve:
        serve(args.run_dir, args.port)


def cmd_export(args) -> int:
    from comining.export import export_run

    result = export_run(args.run_dir, args.out, args.keep_discarded, args.format)
    print(f"wrote {result['path']}: labels of {result['samples']} training samples, {result['relabelled']} "
          f"relabelled, " + (f"{result['discarded']} discarded ones left out (keep them with --keep-discarded)"
                             if not args.keep_discarded else "discarded ones kept with their given label")
          + (f"; {result['untrained']} samples the run did not train on are left out" if result["untrained"] else ""))
    print(f"train on them with `comining train ... --labels {result['path']}`")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:
        argv = ["train"]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"train": cmd_train, "table": cmd_table, "inspect": cmd_inspect,
                "predict": cmd_predict, "review": cmd_review,
                "export": cmd_export}[args.command](args)
    except UserError as err:
        print(f"comining: error: {err}", file=sys.stderr)
        return 2
    except TrainingStopped as err:
        print(f"comining: stopped: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 1)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as err:  # a full disk, a vanished directory: the files already written are intact
        where = f" ({err.filename})" if err.filename else ""
        print(f"comining: error: {err.strerror or err}{where}: free space or fix the path; "
              "files already written are intact and an interrupted run resumes with --resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside the epochs (loading, final files, between table cells)
        print("comining: interrupted; files already written are intact (a run resumes with --resume RUN_DIR, "
              "a table by running the same command again)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
