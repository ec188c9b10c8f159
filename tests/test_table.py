"""`comining table`: the grid runs once, resumes without retraining, and writes the paper's format;
--seeds aggregates, and a cell is refused under other settings."""

import csv
import json
import subprocess
import sys
from dataclasses import replace

import pytest

from comining import engine
from comining.config import recipe_values, resolve
from comining.errors import UserError
from comining.table import aggregate, markdown_table, run_grid, write_table
from comining.noise import parse_noise


def test_parse_noise():
    assert parse_noise("sym50") == ("symmetric", 0.5, None)
    assert parse_noise("asym40") == ("asymmetric", 0.4, None)
    assert parse_noise("sym20-open20") == ("symmetric", 0.2, 0.2)
    for bad in ("sym", "sym100", "flip20", "sym-5", "sym20-open", "sym20open20"):
        with pytest.raises(UserError):
            parse_noise(bad)


def test_plots_do_not_import_the_table_module(tmp_path):
    # table imports engine, engine imports report: report must not lead back to table.
    code = ("import sys; from comining import report; "
            "report.plot_table({('sym50', 'standard'): {'last10_mean': 60.0, 'last10_std': 1.0}}, "
            f"['standard'], ['sym50'], {str(tmp_path / 'bars.png')!r}); "
            "sys.exit('comining.table' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert (tmp_path / "bars.png").stat().st_size > 0


def test_two_writers_of_one_plot_do_not_collide(tmp_path):
    # Cells of one study run as separate `comining table` processes sharing an --out folder, and each
    # writes the folder's table.png when it ends: every writer needs a temporary file of its own.
    code = ("from comining import report\n"
            "for i in range(8):\n"
            "    report.plot_table({('sym50', 'standard'): {'last10_mean': 60.0 + i, 'last10_std': 1.0}}, "
            f"['standard'], ['sym50'], {str(tmp_path / 'table.png')!r})\n")
    writers = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(2)]
    errors = [w.communicate()[1].decode() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errors
    assert [p.name for p in tmp_path.iterdir()] == ["table.png"]  # no temporary file left behind


def test_markdown_marks_the_best_of_each_row():
    results = {("sym50", "standard"): [{"last10_mean": 60.0, "last10_std": 1.234}],
               ("sym50", "comining"): [{"last10_mean": 70.5, "last10_std": 0.5}],
               ("asym40", "standard"): [{"last10_mean": 80.0, "last10_std": 2.0}],
               ("asym40", "comining"): [{"last10_mean": 79.0, "last10_std": 0.25}]}
    text = markdown_table(results, ["standard", "comining"], ["sym50", "asym40"])
    assert text.splitlines() == [
        "| Noise | Standard | Co-mining |",
        "|---|---:|---:|",
        "| Symmetric-50% | 60.00±1.23 | **70.50±0.50** |",
        "| Asymmetric-40% | **80.00±2.00** | 79.00±0.25 |",
    ]


def test_grid_runs_once_and_resumes_without_training(tmp_path, monkeypatch):
    base = resolve({"train_subset": 400, "epochs": 3, "warmup_epochs": 1, "epoch_decay_start": 1,
                    "batch_size": 64, "quiet": True})
    methods, noises = ["standard", "comining"], ["sym40", "asym20"]
    first = run_grid(base, methods, noises, tmp_path)
    assert set(first) == {(n, m) for n in noises for m in methods}
    assert [r["epochs"] for r in first["asym20", "comining"]] == [3]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    with monkeypatch.context() as patch:
        patch.setattr(engine.Trainer, "fit", no_training)
        second = run_grid(base, methods, noises, tmp_path)
        assert {k: v[0]["last10_mean"] for k, v in second.items()} == {k: v[0]["last10_mean"] for k, v in first.items()}
        # Co-mining ignores --baseline-aug, so its cells serve a weak-view grid too.
        weak = run_grid(replace(base, baseline_aug="weak"), ["comining"], noises, tmp_path)
        assert weak["sym40", "comining"] == first["sym40", "comining"]
        # Other settings are refused before anything trains, not reported under the new ones.
        for changed in ({"baseline_aug": "weak"}, {"epochs": 4}, {"seed": 2}):
            with pytest.raises(UserError, match="other settings"):
                run_grid(replace(base, **changed), methods, noises, tmp_path)

    # A cell cut off after its checkpoint but before results.json continues from the checkpoint.
    (tmp_path / "sym40-standard" / "results.json").unlink()
    resumed = []
    original = engine.Trainer.resume.__func__
    monkeypatch.setattr(engine.Trainer, "resume",
                        classmethod(lambda cls, *a, **k: resumed.append(a[0]) or original(cls, *a, **k)))
    third = run_grid(base, methods, noises, tmp_path)
    assert resumed == [tmp_path / "sym40-standard"]
    assert third["sym40", "standard"][0]["last10_mean"] == first["sym40", "standard"][0]["last10_mean"]


@pytest.mark.slow
def test_table_command_writes_markdown_csv_and_plot(tmp_path):
    args = ["--methods", "standard,comining", "--noise", "sym40,asym20", "--train-subset", "200", "--epochs", "2",
            "--warmup-epochs", "1", "--batch-size", "64", "--out", str(tmp_path / "t"), "--quiet"]
    done = subprocess.run([sys.executable, "-m", "comining", "table", *args], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "| Symmetric-40% |" in done.stdout and "**" in done.stdout
    table = (tmp_path / "t" / "table.md").read_text()
    assert "| Noise | Standard | Co-mining |" in table
    rows = list(csv.DictReader((tmp_path / "t" / "table.csv").open()))
    assert [(r["noise"], r["method"]) for r in rows] == [
        ("sym40", "standard"), ("sym40", "comining"), ("asym20", "standard"), ("asym20", "comining")]
    assert (tmp_path / "t" / "table.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "t" / "sym40-comining" / "results.json").exists()


def test_table_rejects_an_unknown_method_before_training(tmp_path):
    done = subprocess.run([sys.executable, "-m", "comining", "table", "--methods", "standard,nosuch",
                           "--out", str(tmp_path / "t")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert "nosuch" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "t").exists()


# --- --seeds --------------------------------------------------------------------------------

def _fake_run(folder, cfg, last10_mean, seed):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    (folder / "results.json").write_text(json.dumps({
        "last10_mean": last10_mean, "last10_std": 0.1, "best_acc": last10_mean + 1, "best_epoch": 3,
        "epochs": 3, "seconds": 1.0, "estimated_noise_rate": 0.5}))


def test_seeds_aggregate_hand_written_results(tmp_path, monkeypatch):
    from dataclasses import replace
    from comining import engine
    base = resolve({"quiet": True, "epochs": 3})
    figures = {("sym50", "comining"): [80.0, 82.0, 84.0], ("sym50", "standard"): [70.0, 71.0, 75.0]}
    for (noise, method), values in figures.items():
        for seed, value in zip((1, 2, 3), values):
            cfg = replace(base, method=method, noise_type="symmetric", closed_rate=0.5, seed=seed)
            _fake_run(tmp_path / f"{noise}-{method}-seed{seed}", cfg, value, seed)
    monkeypatch.setattr(engine.Trainer, "fit", lambda self: pytest.fail("a finished run was trained again"))
    results = run_grid(base, ["standard", "comining"], ["sym50"], tmp_path, seeds=[1, 2, 3])
    assert [r["seed"] for r in results["sym50", "comining"]] == [1, 2, 3]
    cell = aggregate(results["sym50", "comining"])
    assert cell["last10_mean"] == pytest.approx(82.0) and cell["last10_std"] == pytest.approx(2.0)  # sample std
    text = markdown_table(results, ["standard", "comining"], ["sym50"])
    assert "| Symmetric-50% | 72.00±2.65 | **82.00±2.00** |" in text
    assert "Co-mining − Standard = +10.00, +11.00, +9.00 (mean +10.00, min +9.00)" in text
    write_table(results, ["standard", "comining"], ["sym50"], tmp_path)
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert [(r["method"], r["seed"], float(r["last10_mean"])) for r in rows] == [
        ("standard", "1", 70.0), ("standard", "2", 71.0), ("standard", "3", 75.0),
        ("comining", "1", 80.0), ("comining", "2", 82.0), ("comining", "3", 84.0)]
    # Runs made under other settings are refused, not averaged in.
    with pytest.raises(UserError, match="other settings"):
        run_grid(replace(base, epochs=4), ["comining"], ["sym50"], tmp_path, seeds=[1])


def test_a_baseline_cell_serves_any_recipe(tmp_path):
    from dataclasses import replace
    from comining.table import check_cell
    base = resolve({"quiet": True, "method": "standard"})
    _fake_run(tmp_path / "cell", replace(base, recipe="paper", **recipe_values("paper")), 70.0, 1)
    check_cell(tmp_path / "cell", replace(base, recipe="authors", **recipe_values("authors")))  # no error
    with pytest.raises(UserError, match="other settings"):
        check_cell(tmp_path / "cell", replace(base, method="comining", recipe="authors", **recipe_values("authors")))


def test_a_cell_that_did_not_train_frozen_serves_any_frozen_setting(tmp_path):
    # A cell stored before the frozen mode's settings existed reads them as ADDED_LATER's (a linear head,
    # one stage); a run that fine-tunes reads none of them, so today's defaults are the same run.
    from comining.table import check_cell
    base = resolve({"quiet": True, "method": "coteaching"})
    stored = {k: v for k, v in base.to_dict().items() if k not in ("head", "feature_stages")}
    (tmp_path / "cell").mkdir()
    (tmp_path / "cell" / "config.json").write_text(json.dumps(stored))
    check_cell(tmp_path / "cell", base)  # no error
    with pytest.raises(UserError, match="head 'linear'"):  # a frozen run reads the head
        check_cell(tmp_path / "cell", replace(base, backbone="frozen"))


def test_a_cell_stored_with_the_old_explicit_epsilon_matches_the_default(tmp_path):
    # Runs made before ε's default became None stored 0.5, which is what None means with three classes
    # or more (the only data sets 0.5 can run on); an ε of 0.2 is another setting.
    from dataclasses import replace
    from comining.table import check_cell
    base = resolve({"quiet": True})
    assert base.epsilon is None
    _fake_run(tmp_path / "old", replace(base, epsilon=0.5), 80.0, 1)
    check_cell(tmp_path / "old", base)  # no error
    check_cell(tmp_path / "old", replace(base, epsilon=0.5))
    _fake_run(tmp_path / "light", replace(base, epsilon=0.2), 80.0, 1)
    with pytest.raises(UserError, match="epsilon 0.2"):
        check_cell(tmp_path / "light", base)
