"""Command line: argument parsing and sub-commands only.

Every setting is a flag made from its declaration (``comining.config``, and each method's
``Options``): a readable name (``--closed-rate``), and the spellings of the authors' scripts
(``--closeset_ratio``), so their commands run with ``comining train`` in place of ``python
cifarmain.py``. ``--help`` shows the settings a user needs, by section, each with its default;
``--help-all`` shows every one.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
import sys
import textwrap

from comining import __version__
from comining.config import (PRESETS, REMOVED_HINT, RESUMABLE, RETIRED, SECTIONS, choices_of, method_options,
                             settings_fields)
from comining.errors import TrainingStopped, UserError
from comining.methods import METHODS, paper_methods
from comining.summary import print_summary
from comining.table import PAPER_NOISE, TABLE_PRESETS

# The data sets whose preset defaults --help shows beside the general default.
HELP_PRESETS = ("digits", "fashion-mnist", "web")


def forget_rate_arg(text: str):
    """--forget-rate: a fraction, or auto."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a fraction such as 0.2 nor auto") from None


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and the compact, grouped help of ``render_help``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, add_help=False, **kwargs)
        self._optionals.title = "help"
        self.add_argument("--help", "-h", action=HelpAction, nargs=0, help="this help")

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(render_help(parser, everything=option_string == "--help-all"))
        parser.exit(0)


class RemovedFlag(argparse.Action):
    """A flag the study retired: one line that says where its result is written down."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} was {REMOVED_HINT}")


def render_help(parser: argparse.ArgumentParser, everything: bool) -> str:
    """One line per option (wrapped to the terminal), grouped under their sections' titles; options
    marked ``extra`` only with ``everything``, where every spelling is listed too."""
    width = max(80, min(shutil.get_terminal_size((100, 24)).columns, 110))
    lines = [f"usage: {parser.prog} [options]" + (" " + parser.usage_tail if getattr(parser, "usage_tail", "") else "")]
    if parser.description:
        lines += textwrap.wrap(parser.description, width)
    for group in parser._action_groups:
        shown = [a for a in group._group_actions
                 if a.help != argparse.SUPPRESS and (everything or not getattr(a, "extra", False))]
        if not shown:
            continue
        lines += ["", f"{group.title}:"]
        # A sub-command group lists its commands, each with its help, as argparse's own help does.
        shown = [sub for a in shown for sub in (a._get_subactions() if isinstance(a, argparse._SubParsersAction) else [a])]
        for action in shown:
            names = action.option_strings if everything or isinstance(action, HelpAction) else action.option_strings[:1]
            names = names or [action.metavar or action.dest]
            flag = ", ".join(names) + (f" {action.metavar}" if action.option_strings and action.nargs != 0
                                       and action.metavar else "")
            text = action.help or ""
            if getattr(action, "default_text", ""):
                text += f" [{action.default_text}]"
            if len(flag) > 26:  # the flag on a line of its own, its help below
                lines.append(f"  {flag}")
                lead = " " * 29
            else:
                lead = f"  {flag:<26} "
            lines += textwrap.wrap(text, width, initial_indent=lead, subsequent_indent=" " * 29) or [lead.rstrip()]
    return "\n".join(lines)


def default_text(f: dataclasses.Field) -> str:
    """'default 200; digits, fashion-mnist 40; web 60': the general default and the data sets'
    presets where they differ from it, with the choices where they are a list."""
    def show(value):
        return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    by_value: dict[str, list[str]] = {}
    for name in HELP_PRESETS:
        value = PRESETS[name].get(f.name, f.default)
        if value != f.default and f.name != "dataset":
            by_value.setdefault(show(value), []).append(name)
    parts = [] if f.default is None and not by_value else [f"default {show(f.default)}"]
    parts += [f"{', '.join(names)} {v}" for v, names in by_value.items()]
    choices = choices_of(f)
    if choices and not all(str(c) in f.metadata["help"] for c in choices):
        parts.append(f"one of {', '.join(map(str, choices))}")
    return "; ".join(parts)


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, under its section's title (each method's options under the method's);
    defaults are suppressed so only what the user typed overrides. Retired flags answer with where
    their result is written down."""
    sections = {title: [f.name for f in dataclasses.fields(cls)] for title, cls in SECTIONS.items()}
    for method, options in method_options().items():
        sections[f"{METHODS[method].title} options (--method {method})"] = [f.name for f in dataclasses.fields(options)]
    fields = {f.name: f for f in settings_fields()}
    for title, names in sections.items():
        group = parser.add_argument_group(title)
        for name in names:
            f = fields[name]
            meta = f.metadata
            flags = list(dict.fromkeys([f"--{name.replace('_', '-')}", f"--{name}", *meta["flags"]]))
            kind = str(f.type).split(" |")[0]
            options = {"dest": name, "default": argparse.SUPPRESS, "help": meta["help"]}
            if kind == "bool":
                options["action"] = argparse.BooleanOptionalAction
            else:
                options["type"] = forget_rate_arg if name == "forget_rate" else {"int": int, "float": float}.get(kind, str)
                options["metavar"] = meta["metavar"] or name.upper().replace("_", "-")
                if choices_of(f) and name != "noise_type":  # noise types also accept aliases (pairflip)
                    options["choices"] = choices_of(f)
            action = group.add_argument(*flags, **options)
            action.extra, action.default_text = not meta["main"], default_text(f)
    for name in RETIRED:
        spellings = {f"--{name.replace('_', '-')}", f"--{name}", f"--no-{name.replace('_', '-')}", f"--no-{name}"}
        parser.add_argument(*sorted(spellings), action=RemovedFlag, nargs="?", help=argparse.SUPPRESS)


def build_parser() -> Parser:
    parser = Parser(prog="comining", description="Train image classifiers on noisy labels with Co-mining "
                                                 "and its baselines.")
    parser.usage_tail = "COMMAND ..."
    parser.add_argument("--version", action="version", version=f"comining {__version__}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", parser_class=Parser, title="commands")
    train = commands.add_parser("train", help="train one run (no arguments: the digits demo)",
                                description="Trains one run and writes its run directory. Defaults are the paper's "
                                            "CIFAR settings; a data set's preset changes some (shown as e.g. "
                                            "'digits 40'). --help-all lists every option and spelling.")
    run = train.add_argument_group("run")
    run.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME",
                     help="a named set of the paper's settings: " + ", ".join(sorted(PRESETS)))
    run.add_argument("--config", metavar="FILE", help="JSON file of settings, by setting name (flags override it)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    run.add_argument("--help-all", action=HelpAction, nargs=0, help="every option, with the authors' code's spellings")
    add_settings_flags(train)

    table = commands.add_parser("table", help="run a grid of methods × noise settings and write its table",
                                description="Trains every missing cell of a grid of methods × noise settings "
                                            "(one run directory each) and writes the table in the paper's format.")
    grid = table.add_argument_group("grid")
    grid.add_argument("--preset", choices=sorted(TABLE_PRESETS) + sorted(PRESETS), metavar="NAME",
                      help="table1/table2/table3: the paper's CIFAR-10N / CIFAR-100N / CIFAR-80N tables")
    grid.add_argument("--config", metavar="FILE", help="JSON file of settings shared by every run")
    grid.add_argument("--methods", default=",".join(paper_methods()), metavar="LIST",
                      help=f"comma-separated methods (columns) [default {','.join(paper_methods())}]")
    grid.add_argument("--noise", default=",".join(PAPER_NOISE), metavar="LIST",
                      help=f"comma-separated settings (rows), e.g. sym50,asym40,sym20-open20 [default {','.join(PAPER_NOISE)}]")
    grid.add_argument("--seeds", metavar="LIST", help="comma-separated training seeds, one run per cell and seed "
                                                      "(replaces --seed); cells report mean ± std over the seeds")
    grid.add_argument("--help-all", action=HelpAction, nargs=0, help="every option, with the authors' code's spellings")
    add_settings_flags(table)

    inspect = commands.add_parser("inspect", help="summarise a run's verdicts per class and draw a contact sheet")
    inspect.usage_tail = "RUN_DIR"
    group = inspect.add_argument_group("inspect")
    group.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (--out of comining train)")
    group.add_argument("--output", metavar="PNG", help="contact sheet path [default RUN_DIR/contact_sheet.png]")
    group.add_argument("--per-class", type=int, default=8, metavar="N", help="images shown per class and verdict [default 8]")
    group.add_argument("--max-classes", type=int, default=50, metavar="N",
                       help="classes drawn, those with the most images set aside first [default 50]")
    group.add_argument("--force", action="store_true", help="replace an existing --output file")

    predict = commands.add_parser("predict", help="classify image files or folders with a trained run")
    predict.usage_tail = "--run RUN_DIR PATH..."
    group = predict.add_argument_group("predict")
    group.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    group.add_argument("--run", required=True, metavar="RUN_DIR", help="the run directory whose model to use")
    group.add_argument("--output", default="predictions.csv", metavar="CSV",
                       help="where to write the predictions [default predictions.csv]")
    group.add_argument("--force", action="store_true", help="replace an existing --output file")
    group = predict.add_argument_group("run and hardware")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N [default auto]")
    group.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per forward pass [default 64]")
    group.add_argument("--workers", type=int, default=2, metavar="N", help="processes decoding images [default 2]")

    review = commands.add_parser("review", help="write a page to look at a run's verdicts, decide, and save labels")
    review.usage_tail = "RUN_DIR"
    group = review.add_argument_group("review")
    group.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (--out of comining train)")
    group.add_argument("--serve", action="store_true",
                       help="also serve the page on 127.0.0.1; saving then writes RUN_DIR/reviewed_labels.csv")
    group.add_argument("--port", type=int, default=8765, metavar="PORT", help="port for --serve (0: any free one) [default 8765]")

    export = commands.add_parser("export", help="write a run's decisions as a label file to train on again")
    export.usage_tail = "RUN_DIR --out FILE"
    group = export.add_argument_group("export")
    group.add_argument("run_dir", metavar="RUN_DIR", help="the run directory (--out of comining train)")
    group.add_argument("--out", required=True, metavar="FILE", help="label file to write (.csv or .npy)")
    group.add_argument("--format", choices=("csv", "npy"), help="file format [default: from FILE's extension]")
    group.add_argument("--keep-discarded", action="store_true",
                       help="keep discarded samples with their given label instead of leaving them out")
    group.add_argument("--share", type=float, metavar="RATE",
                       help="set aside this share of the samples, those of lowest label quality, in place of the run's "
                            "own count (where you know better how many labels are wrong)")
    group.add_argument("--force", action="store_true", help="replace an existing FILE")

    cache = commands.add_parser("cache", help="show the size of the --backbone frozen feature cache, or clear it")
    group = cache.add_argument_group("cache")
    group.add_argument("--cache-dir", metavar="DIR", help="the cache [default $XDG_CACHE_HOME/comining/features, "
                                                          "or ~/.cache/comining/features]")
    group.add_argument("--clear", action="store_true", help="remove every cached feature")
    return parser


def typed_settings(args) -> dict:
    """The settings the user gave on the command line (argparse suppressed the rest)."""
    return {f.name: getattr(args, f.name) for f in settings_fields() if hasattr(args, f.name)}


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
    methods = parse_list(args.methods, "--methods", "comining,coteaching")
    noises = parse_list(args.noise, "--noise", "sym20,asym40")
    out = base.out or f"tables/{args.preset or base.synthetic or base.dataset}"
    seeds = parse_seeds(args.seeds, "seed" in overrides) if args.seeds is not None else None
    results = run_grid(base, methods, noises, out, seeds)
    title = f"{base.synthetic or base.dataset}, {base.arch} network, last-10 mean ± std of test accuracy (%)"
    if seeds and len(seeds) > 1:
        title += f", {len(seeds)} seeds"
    print(write_table(results, methods, noises, out, title))
    print(f"table, CSV and plot in {out}/ (table.md, table.csv, table.png)")
    return 0


def parse_list(text: str, flag: str, example: str) -> list[str]:
    """A grid's comma-separated ``flag``: its distinct names in order; a one-line error where it names
    none, or one twice (a table would show a row or column twice, its seeds counted twice)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UserError(f"{flag} {text!r} names nothing: give a comma-separated list, e.g. {example}")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"{flag} names {', '.join(twice)} more than once: give each once")
    return names


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


def bytes_text(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


def cmd_cache(args) -> int:
    from comining.data.feature_cache import FeatureCache

    cache = FeatureCache(args.cache_dir)
    if cache.root.exists() and not cache.root.is_dir():
        raise UserError(f"--cache-dir {cache.root} is a file, not a feature cache folder")
    foreign = cache.foreign_entries()
    others = f"{foreign} other entr{'ies' if foreign != 1 else 'y'}"
    if args.clear and foreign and not cache.recipe_folders():
        raise UserError(f"{cache.root} holds no cached features (no folder comining wrote): nothing removed; "
                        "check --cache-dir")
    if args.clear:
        print(f"cleared {cache.root}: {bytes_text(cache.clear())} freed"
              + (f"; {others} left as they are" if foreign else ""))
        return 0
    usage = cache.usage()
    if not usage:
        print(f"feature cache {cache.root}: empty" + (f" ({others}, not the cache's)" if foreign else ""))
        return 0
    print(f"feature cache {cache.root}: {bytes_text(sum(u['bytes'] for u in usage))} in {len(usage)} recipe(s)")
    for entry in usage:
        recipe = entry["recipe"]
        what = (f"{recipe.get('backbone_name', '?')}, {recipe.get('kind', '?')} view x{recipe.get('count', '?')}, "
                f"{recipe.get('crop_size', '?')} px")
        print(f"  {entry['folder'].name}  {entry['samples']:>8} images  {bytes_text(entry['bytes']):>9}  {what}")
    where = f" --cache-dir {shlex.quote(args.cache_dir)}" if args.cache_dir else ""
    print(f"clear it with `comining cache --clear{where}`")
    return 0


def cmd_inspect(args) -> int:
    from comining.verdicts_view import inspect_run

    if args.per_class < 1 or args.max_classes < 1:
        raise UserError("--per-class and --max-classes must be at least 1")
    text, _ = inspect_run(args.run_dir, args.output, args.per_class, args.max_classes, args.force)
    print(text)
    return 0


def cmd_predict(args) -> int:
    from comining.predict import predict

    if args.batch_size < 1 or args.workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers not negative")
    result = predict(args.run, args.paths, args.output, args.device, args.batch_size, args.workers, args.force)
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
    return 0


def cmd_export(args) -> int:
    from comining.export import export_run

    result = export_run(args.run_dir, args.out, args.keep_discarded, args.format, args.force, args.share)
    parts = [f"labels of {result['samples']} training samples"]
    if args.share is not None:
        parts.append(f"the {result['set_aside']} of lowest label quality set aside ({args.share * 100:g} % asked)")
    parts.append(f"{result['relabelled']} relabelled")
    if args.keep_discarded:
        parts.append("discarded ones kept with their given label")
    else:
        parts.append(f"{result['discarded']} discarded ones left out"
                     + ("" if args.share is not None else " (keep them with --keep-discarded)"))
    text = ", ".join(parts)
    if result["untrained"]:
        text += f"; {result['untrained']} samples the run did not train on are left out"
    print(f"wrote {result['path']}: {text}")
    print(f"train on them with `comining train ... --labels {shlex.quote(str(result['path']))}`")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:
        argv = ["train"]
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:  # help piped into `head` and the like
        sys.stderr.close()
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"train": cmd_train, "table": cmd_table, "inspect": cmd_inspect,
                "predict": cmd_predict, "review": cmd_review,
                "export": cmd_export, "cache": cmd_cache}[args.command](args)
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
