"""The real command line, run in a subprocess on tiny data sets in their real on-disk layouts.

Every run's working directory is a fresh folder under tmp_path, so no `runs/` lands in the repo.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
import torch

from conftest import cli_runner, write_cifar10, write_fashion_mnist

VERDICTS = {"clean", "relabelled", "discarded"}


def _ok(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _load_checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)


def _output_widths(state: dict) -> set[int]:
    """Rows of every 2-D weight of the networks: the paper CNN's only one is the final linear layer."""
    return {tuple(v.shape)[0] for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.ndim == 2 and k.endswith("weight")}


# --- 1. the authors' code's CIFAR-10 command ------------------------------------------------------------

@pytest.fixture(scope="module")
def cifar10_run(tmp_path_factory):
    """The authors' code's cifar10nc command (2 epochs) on a 200/100-image CIFAR-10, run once for the tests below."""
    base = tmp_path_factory.mktemp("cifar10")
    root = base / "data"
    write_cifar10(root, n_train=200, n_test=100)
    out = base / "run"
    result = cli_runner(base / "cwd")(
        "train", "--synthetic-data", "cifar10nc", "--dataset", "cifar10", "--noise-type", "symmetric",
        "--closeset_ratio", "0.2", "--method", "comining", "--data-root", root, "--n_epoch", "2",
        "--warmup-epochs", "1", "--out", out, "--quiet", "--batch-size", "32")
    return result, out


def test_cifar10nc_seed_command_runs(cifar10_run):
    result, out = cifar10_run
    _ok(result)
    assert not (result.cwd / "runs").exists()  # --out was honoured
    assert str(out) in result.stdout  # the summary names the run directory
    for name in ("config.json", "metrics.jsonl", "results.json", "checkpoint.pt", "verdicts.csv"):
        assert (out / name).is_file(), name
    pngs = list(out.glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_cifar10nc_config(cifar10_run):
    _, out = cifar10_run
    cfg = _config(out)
    assert cfg["dataset"] == "cifar10" and cfg["synthetic"] == "cifar10nc"
    assert cfg["closed_rate"] == 0.2 and cfg["open_ratio"] == 0.0
    assert cfg["noise_type"] == "symmetric" and cfg["method"] == "comining"
    assert cfg["arch"] == "cnn"  # the paper's 6-layer CNN
    assert cfg["epochs"] == 2 and cfg["warmup_epochs"] == 1 and cfg["batch_size"] == 32


def test_cifar10nc_metrics_and_results(cifar10_run):
    _, out = cifar10_run
    metrics = _metrics(out)
    assert len(metrics) == 2
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        assert 0 <= m["test_acc"] <= 100
        assert m["label_precision"] is not None and 0 <= m["label_precision"] <= 1
    results = json.loads((out / "results.json").read_text())
    for key in ("last10_mean", "last10_std", "best_acc", "best_epoch", "epochs", "seconds"):
        assert key in results, key
    assert results["epochs"] == 2
    accs = [m["test_acc"] for m in metrics]
    assert results["best_acc"] == pytest.approx(max(accs))
    assert results["best_epoch"] in (1, 2) and accs[results["best_epoch"] - 1] == pytest.approx(max(accs))
    assert results["last10_mean"] == pytest.approx(sum(accs) / 2)
    assert results["last10_std"] >= 0 and results["seconds"] > 0
    assert results["noise"]["open_share"] == 0.0
    assert 0.05 < results["noise"]["closed_noise"] < 0.4  # 20 % symmetric noise on 200 labels


def test_cifar10nc_verdicts(cifar10_run):
    _, out = cifar10_run
    with open(out / "verdicts.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 200  # one per training image
    assert sorted(int(r["sample"]) for r in rows) == list(range(200))
    assert {r["verdict"] for r in rows} <= VERDICTS  # final verdicts: every sample gets one
    assert {r["selection"] for r in rows} <= VERDICTS | {"unseen"}  # 200 images, batches of 128: some never drawn
    classes = {f"class{i}" for i in range(10)}
    assert {r["given_label"] for r in rows} <= classes
    for r in rows:  # a suggestion exactly where the sample was relabelled
        if r["verdict"] == "relabelled":
            assert r["suggested_label"] in classes
        else:
            assert r["suggested_label"] == ""


def test_cifar10nc_checkpoint(cifar10_run):
    _, out = cifar10_run
    state = _load_checkpoint(out)
    assert state["epoch"] == 2
    assert _output_widths(state["method"]) == {10}


def test_cifar10nc_checkpoint_loads_with_rundir(cifar10_run):
    from comining.rundir import RunDir
    _, out = cifar10_run
    state = RunDir(out).load_checkpoint()
    assert state["epoch"] == 2


# --- 2. cifar80no: CIFAR-100 with classes 80–99 as open-set noise --------------------------------

@pytest.mark.slow
def test_cifar80no_trains_80_outputs(run_cli, cifar100_root, tmp_path):
    out = tmp_path / "run80"
    result = run_cli("train", "--synthetic-data", "cifar80no", "--data-root", cifar100_root, "--epochs", "2",
                     "--warmup-epochs", "1", "--batch-size", "64", "--out", out, "--quiet")
    _ok(result)
    cfg = _config(out)
    assert cfg["dataset"] == "cifar100" and cfg["synthetic"] == "cifar80no"
    assert cfg["open_ratio"] == 0.2 and cfg["arch"] == "cnn"
    assert _output_widths(_load_checkpoint(out)["method"]) == {80}
    results = json.loads((out / "results.json").read_text())
    assert results["epochs"] == 2 and results["train_size"] == 400
    assert results["noise"]["open_share"] == pytest.approx(0.2, abs=0.05)
    assert results["n_wrong_labels"] >= 80  # every open-set image carries a wrong label
    with open(out / "verdicts.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 400
    known = {f"fine{i}" for i in range(80)}
    assert {r["given_label"] for r in rows} <= known  # no label ever lands in an open class
    assert {r["verdict"] for r in rows} <= VERDICTS  # final verdicts: every sample gets one
    assert {r["selection"] for r in rows} <= VERDICTS | {"unseen"}  # 200 images, batches of 128: some never drawn
    assert sum(r["true_label"] not in known for r in rows) == 80
    for m in _metrics(out):
        assert m["open_discarded"] is not None and 0 <= m["open_discarded"] <= 1  # open-set images are drawn every epoch


# --- 3. bad input: status 2, one line naming the problem, no traceback, no run directory -------

def _bad_cifar10_missing_test(root: Path) -> None:
    (write_cifar10(root, n_train=20, n_test=10) / "test_batch").unlink()


def _bad_cifar10_truncated(root: Path) -> None:
    path = write_cifar10(root, n_train=20, n_test=10) / "data_batch_1"
    path.write_bytes(path.read_bytes()[:300])


def _bad_fashion_truncated(root: Path) -> None:
    """All four IDX files present; the training images are cut short before compression, so the
    gzip stream is valid but the IDX payload is smaller than its header says."""
    write_fashion_mnist(root)
    path = root / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[: len(raw) // 2]))


def _config_unknown_key(root: Path) -> None:
    (root / "settings.json").write_text(json.dumps({"epochs": 1, "learning_rate": 0.1}))


def _config_malformed(root: Path) -> None:
    (root / "settings.json").write_text('{"epochs": 1,,')


BAD = {
    # id: (data writer or None, CLI arguments after `train`, words the message must hold)
    "missing-dataset": (None, ["--dataset", "cifar10", "--data-root", "{root}"], ["cifar-10", "not found"]),
    "wrong-layout": (_bad_cifar10_missing_test, ["--dataset", "cifar10", "--data-root", "{root}"],
                     ["test_batch"]),
    "corrupt-pickle": (_bad_cifar10_truncated, ["--dataset", "cifar10", "--data-root", "{root}"],
                       ["data_batch_1"]),
    "corrupt-idx": (_bad_fashion_truncated, ["--dataset", "fashion-mnist", "--data-root", "{root}"],
                    ["train-images-idx3-ubyte"]),
    "closed-rate-1": (None, ["--closed-rate", "1.0"], ["closed-rate", "[0, 1)"]),
    "closed-rate-negative": (None, ["--closed-rate", "-0.1"], ["closed-rate", "[0, 1)"]),
    "open-ratio-too-big": (None, ["--open-ratio", "0.95"], ["open-ratio", "0.95"]),
    "unknown-method": (None, ["--method", "nosuchmethod"], ["nosuchmethod", "comining"]),
    "unknown-dataset": (None, ["--dataset", "nosuchdata"], ["nosuchdata", "digits"]),
    "unknown-preset": (None, ["--preset", "nosuchpreset"], ["nosuchpreset", "preset"]),
    "unknown-synthetic": (None, ["--synthetic-data", "cifar10x"], ["cifar10x", "cifar10nc"]),
    "bad-int": (None, ["--epochs", "abc"], ["epochs", "abc"]),
    "config-unknown-key": (_config_unknown_key, ["--config", "{root}/settings.json"], ["learning_rate"]),
    "config-malformed": (_config_malformed, ["--config", "{root}/settings.json"], ["settings.json", "JSON"]),
    "config-is-a-folder": (None, ["--config", "{root}"], ["config file", "cannot be read"]),
    "synthetic-not-a-setting": (None, ["--synthetic-data", "fashion-mnist"], ["fashion-mnist", "cifar80no"]),
    "synthetic-other-dataset": (None, ["--synthetic-data", "cifar10nc", "--dataset", "cifar100"],
                                ["cifar10nc", "cifar100"]),
    "crop-larger-than-images": (None, ["--crop-size", "64"], ["crop-size 64", "8-pixel"]),
    # 2 closed classes left: an ε of 0.5 asked for would give both the same smoothed target.
    "epsilon-two-classes": (None, ["--open-ratio", "0.8", "--epsilon", "0.5"], ["epsilon 0.5", "2 classes"]),
    "removed-flag": (None, ["--select-by", "peer"], ["--select-by", "removed", "docs/METHOD.md"]),
    "removed-switch": (None, ["--no-tri-confident-bank"], ["--no-tri-confident-bank", "removed", "Rejected ideas"]),
    "config-removed-key": (lambda root: (root / "settings.json").write_text('{"score_ema": 0.5}'),
                           ["--config", "{root}/settings.json"], ["score_ema", "removed", "docs/METHOD.md"]),
}


# These go through a real interpreter as well (exit status and stderr as a shell sees them); the
# others call cli.main in this process (conftest.run_main).
THROUGH_A_SUBPROCESS = {"corrupt-pickle", "bad-int"}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_status_2(run_cli, run_main, tmp_path, case):
    writer, args, words = BAD[case]
    root = tmp_path / "input"
    root.mkdir()
    if writer is not None:
        writer(root)
    out = tmp_path / "run"
    args = ["train", *[a.format(root=root) for a in args], "--out", out, "--quiet"]
    result = (run_cli if case in THROUGH_A_SUBPROCESS else run_main)(*args)
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything, everything
    assert result.returncode == 2, f"exit {result.returncode}\n{everything}"
    lines = result.stderr_lines
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("comining"), line
    assert "error" in line
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    assert not out.exists(), "a run directory was created for a run that never started"
    assert not (result.cwd / "runs").exists()


# --- 4. flag aliases and precedence reach config.json ------------------------------------------

TINY = ["--epochs", "1", "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--quiet"]


def _without_out(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k != "out"}


def test_seed_spellings_and_readable_names_give_the_same_config(run_cli, tmp_path):
    # The authors' code's spellings through the real command line; the readable ones through the same parser
    # in-process (one training run is enough to see what reaches config.json).
    from comining.cli import build_parser, typed_settings
    from comining.config import resolve
    seed_style = tmp_path / "seed-style"
    a = run_cli("train", "--closeset_ratio", "0.3", "--m", "0.4", "--re_k1", "5", *TINY, "--out", seed_style)
    _ok(a)
    args = build_parser().parse_args(["train", "--closed-rate", "0.3", "--margin", "0.4", "--re-k", "5", *TINY,
                                      "--out", str(tmp_path / "readable")])
    cfg = _config(seed_style)
    assert cfg["closed_rate"] == 0.3 and cfg["margin"] == 0.4 and cfg["re_k"] == 5
    assert _without_out(cfg) == _without_out(resolve(typed_settings(args)).to_dict())


def test_flags_override_config_file_and_preset(run_cli, tmp_path):
    settings = tmp_path / "settings.json"
    # The digits preset says epochs 40, closed_rate 0.4, warmup_epochs 5, batch_size 64.
    settings.write_text(json.dumps({"epochs": 7, "closed_rate": 0.1, "warmup_epochs": 2, "margin": 0.25}))
    out = tmp_path / "run"
    result = run_cli("train", "--preset", "digits", "--config", settings, "--closeset_ratio", "0.35",
                     "--epochs", "1", "--train-subset", "64", "--test-subset", "32", "--quiet", "--out", out)
    _ok(result)
    cfg = _config(out)
    assert cfg["closed_rate"] == 0.35  # flag (seed spelling) over the file and the preset
    assert cfg["epochs"] == 1  # flag over the file and the preset
    assert cfg["warmup_epochs"] == 2 and cfg["margin"] == 0.25  # file over the preset and the defaults
    assert cfg["batch_size"] == 64 and cfg["arch"] == "small"  # preset where nothing else spoke
    assert len(_metrics(out)) == 1


# --- 5. reproducibility ------------------------------------------------------------------------

@pytest.mark.slow
def test_same_seed_same_accuracies_other_seed_differs(run_cli, tmp_path):
    common = ["train", "--epochs", "2", "--warmup-epochs", "1", "--train-subset", "200", "--quiet"]
    runs = {}
    for name, extra in (("first", []), ("again", []), ("other", ["--seed", "7"])):
        out = tmp_path / name
        result = run_cli(*common, *extra, "--out", out)
        _ok(result)
        runs[name] = [m["test_acc"] for m in _metrics(out)]
        assert len(runs[name]) == 2
    assert runs["first"] == runs["again"]
    assert runs["first"] != runs["other"]


# --- 6. the help and the version ----------------------------------------------------------------

def test_train_help_is_short_grouped_and_shows_defaults(run_main):
    result = run_main("train", "--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) <= 80, len(lines)
    for title in ("data and labels:", "model:", "training:", "run and hardware:"):
        assert title in lines
    text = " ".join(result.stdout.split())  # as read, whatever the terminal's width wrapped
    assert "--epochs N" in text and "default 200; digits, fashion-mnist 40; web 60" in text
    assert "--recipe NAME" in text and "one of default, paper, authors" in text
    assert "--plk" not in text and "--jocor-lambda" not in text  # research knobs: --help-all only


def test_help_all_shows_every_setting_with_the_seeds_spellings(run_main):
    from comining.config import field_names
    text = run_main("train", "--help-all").stdout
    for name in field_names():
        assert f"--{name.replace('_', '-')}" in text, name
    for spelling in ("--closeset_ratio", "--w_tri", "--m", "--re_k1", "--n_epoch"):
        assert spelling in text
    assert "Co-mining options (--method comining):" in text and "JoCoR options (--method jocor):" in text
    assert "--select-by" not in text  # a removed flag is not offered


def test_other_commands_use_the_same_grouped_help(run_main):
    for command, title in (("export", "export:"), ("predict", "run and hardware:"), ("review", "review:"),
                           ("table", "grid:")):
        result = run_main(command, "--help")
        assert result.returncode == 0 and title in result.stdout.splitlines(), command


def test_top_level_help_lists_every_command_with_its_help(run_main):
    from comining.cli import build_parser
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    result = run_main("--help")
    assert result.returncode == 0 and "commands:" in result.stdout.splitlines()
    text = " ".join(result.stdout.split())  # as read, whatever the terminal's width wrapped
    for command in commands._get_subactions():
        assert f"{command.dest} {command.help}" in text, command.dest
    assert len(commands._get_subactions()) == len(commands.choices) >= 7


def test_version(run_main):
    from comining import __version__
    result = run_main("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"comining {__version__}"


def test_the_backbone_line_suggests_a_frozen_backbone_only_for_pretrained_weights():
    from comining.summary import backbone_line
    from comining.config import Config
    random_start = backbone_line(Config(dataset="folder", arch="small", weights="none"), None)
    assert random_start == "backbone: small trained whole from random weights"
    assert "--backbone frozen" in backbone_line(Config(dataset="folder", arch="resnet18", weights="imagenet"), None)
