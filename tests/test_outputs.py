"""What commands write, and what their summaries say: no command replaces what it did not make, the
summary warns where a result means less than it seems, and too little data stops before training."""

import csv
import shlex
import shutil

import pytest

from comining.errors import UserError
from comining.rundir import RUN_FILES, check_output


def one_line_error(result, *words):
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr_lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


# --- no command replaces what it did not make ---------------------------------------------------

def test_check_output_protects_the_runs_files_and_the_inputs_and_asks_for_force(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in RUN_FILES:
        with pytest.raises(UserError, match=f"the run's own {name}"):
            check_output(run / name, force=True, run_dir=run)
    image = tmp_path / "a.png"
    image.write_bytes(b"png")
    with pytest.raises(UserError, match="one of the files this command reads"):
        check_output(tmp_path / "." / "a.png", force=True, inputs=[image])  # another spelling, the same file
    with pytest.raises(UserError, match="already exists: pass --force"):
        check_output(image, force=False)
    assert check_output(image, force=True) == image  # anything else, with --force
    assert check_output(run / "labels.csv", force=False, run_dir=run) == run / "labels.csv"  # new


def test_no_command_writes_over_another_runs_files_even_with_force(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    (other / "metrics.jsonl").write_text("")
    for name in RUN_FILES:
        with pytest.raises(UserError, match=f"the {name} of the run in"):
            check_output(other / name, force=True, run_dir=tmp_path / "run")
    assert check_output(other / "labels.csv", force=True) == other / "labels.csv"  # not a run's file


def test_training_never_writes_among_files_it_did_not_make(tmp_path, run_main):
    from comining.config import Config
    from comining.rundir import foreign_entry
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    one_line_error(run_main("train", "--epochs", "1", "--quiet", "--out", mine), "not a run's (notes.txt)")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # A settings file of the user's, named as a run's own, read with --config: refused, and kept.
    (mine / "notes.txt").unlink()
    (mine / "config.json").write_text('{"epochs": 1, "quiet": true}')
    one_line_error(run_main("train", "--config", mine / "config.json", "--out", mine), "(config.json)")
    assert (mine / "config.json").read_text() == '{"epochs": 1, "quiet": true}'
    # What a run that stopped before its first checkpoint left (its whole settings), or nothing: used.
    (mine / "config.json").write_text(__import__("json").dumps(Config().to_dict()))
    assert foreign_entry(mine) is None and foreign_entry(tmp_path / "new") is None
    (mine / "results.json").unlink(missing_ok=True)
    (mine / "config.json").unlink()
    (mine / "results.json").write_text("mine")  # a run's name, but no run wrote it (no config.json)
    assert foreign_entry(mine) == "results.json"
    (mine / "results.json").unlink()
    (mine / ".DS_Store").write_text("")  # hidden: a run writes none, so none is replaced
    assert foreign_entry(mine) is None


def test_a_finished_run_whose_checkpoint_was_deleted_still_holds_a_run(tmp_path, run_main):
    from comining.rundir import holds_a_run
    run = tmp_path / "run"
    assert run_main("train", "--train-subset", "200", "--epochs", "1", "--quiet", "--out", run).returncode == 0
    (run / "checkpoint.pt").unlink()
    before = (run / "results.json").read_bytes()
    assert holds_a_run(run) and not holds_a_run(tmp_path)
    one_line_error(run_main("train", "--train-subset", "200", "--epochs", "1", "--quiet", "--out", run),
                   "already holds a run")
    assert (run / "results.json").read_bytes() == before


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """Co-mining on 300 digits for 4 epochs: every file a finished run has, in a few seconds."""
    from comining.config import resolve
    from comining.engine import train
    out = tmp_path_factory.mktemp("outputs") / "run"
    results = train(resolve({"train_subset": 300, "epochs": 4, "warmup_epochs": 1, "num_gradual": 1,
                             "precision": "fp32", "quiet": True}), out=out)
    return results, out


def test_export_never_writes_over_the_runs_verdicts_and_needs_force_for_other_files(small_run, run_main, tmp_path):
    _, run = small_run
    before = (run / "verdicts.csv").read_bytes()
    one_line_error(run_main("export", run, "--out", run / "verdicts.csv", "--force"), "the run's own verdicts.csv")
    assert (run / "verdicts.csv").read_bytes() == before
    mine = tmp_path / "labels.csv"
    mine.write_text("index,label\n0,3\n")
    one_line_error(run_main("export", run, "--out", mine), "already exists", "--force")
    assert mine.read_text() == "index,label\n0,3\n"
    assert run_main("export", run, "--out", mine, "--force").returncode == 0
    assert mine.read_text().startswith("index,label\n") and len(mine.read_text().splitlines()) == 1 + 1437
    assert f"--labels {shlex.quote(str(mine))}" in run_main("export", run, "--out", mine, "--force").stdout


def test_predict_never_writes_over_an_input_image(tmp_path, run_main):
    from test_folder import SMALL, tiny
    root = tiny(tmp_path / "images")
    out = tmp_path / "run with space"
    assert run_main("train", "--dataset", "folder", "--data-root", root, "--epochs", "1", "--workers", "0",
                    "--forget-rate", "0.2", "--out", out, *SMALL).returncode == 0
    image = next((root / "val").rglob("*.png"))
    before = image.read_bytes()
    one_line_error(run_main("predict", "--run", out, image, "--output", image, "--force", "--workers", "0"),
                   "one of the files this command reads")
    assert image.read_bytes() == before
    first = run_main("predict", "--run", out, root / "val", "--output", tmp_path / "p.csv", "--workers", "0")
    assert first.returncode == 0, first.stderr
    one_line_error(run_main("predict", "--run", out, root / "val", "--output", tmp_path / "p.csv", "--workers", "0"),
                   "already exists")


# --- summaries ----------------------------------------------------------------------------------

def test_the_summary_says_why_the_precision_and_quotes_the_commands_it_suggests(tmp_path, run_main):
    from test_folder import SMALL, tiny
    root = tiny(tmp_path / "images")
    out = tmp_path / "my run; rm -rf x"
    result = run_main("train", "--dataset", "folder", "--data-root", root, "--epochs", "1", "--workers", "0",
                      "--precision", "fp32", "--forget-rate", "0.2", "--out", out, *SMALL)
    assert result.returncode == 0, result.stderr
    assert "precision fp32: as asked with --precision" in result.stdout
    assert f"comining inspect {shlex.quote(str(out))}" in result.stdout
    assert shlex.split(f"comining inspect {shlex.quote(str(out))}")[-1] == str(out)


def test_the_same_csv_for_training_and_evaluation_is_warned_about(tmp_path, run_main):
    from test_folder import SMALL, tiny
    root = tiny(tmp_path / "images")
    listing = tmp_path / "all.csv"
    listing.write_text("path,label\n" + "".join(f"{p},{p.parent.name}\n" for p in sorted(root.rglob("*.png"))))
    result = run_main("train", "--dataset", "csv", "--train-csv", listing, "--val-csv", tmp_path / "." / "all.csv",
                      "--epochs", "1", "--workers", "0", "--forget-rate", "0.2", "--out", tmp_path / "run", *SMALL)
    assert result.returncode == 0, result.stderr
    assert "warning: --train-csv and --val-csv are the same file" in result.stdout


# --- too little to train on -------------------------------------------------------------------

@pytest.mark.parametrize("kept", [[3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]])
def test_a_label_file_that_keeps_too_little_stops_before_training(tmp_path, run_main, kept):
    labels = tmp_path / "labels.csv"
    # one sample, or twelve of one class: nothing to set a class against, or no second class
    labels.write_text("index,label\n" + "".join(f"{i},{'0' if len(kept) > 1 else '3'}\n" for i in kept))
    out = tmp_path / "run"
    result = run_main("train", "--labels", labels, "--epochs", "1", "--out", out, "--quiet")
    one_line_error(result, f"only {len(kept)} training sample", "at least 10 samples of at least 2 classes",
                   "to estimate its noise rate")
    assert not out.exists()


def test_the_results_say_why_the_precision(small_run):
    results, _ = small_run
    assert results["precision"] == "fp32" and results["precision_reason"] == "fp32: as asked with --precision"


# --- label files round trip ---------------------------------------------------------------------

def test_an_exported_label_file_reads_back_names_with_spaces_included(tmp_path, run_main):
    from test_folder import SMALL, digit_images, save, to_image
    images, _ = digit_images()
    root = tmp_path / "images"
    for split in ("train", "val"):
        for k, name in enumerate(("cat", "dog", "owl")):
            for j in range(6):
                file = f" spaced {j} .png" if j == 0 else f"{j}.png"  # spaces at both ends of one name
                save(to_image(images[k * 6 + j]), root / split / name / file)
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--dataset", "folder", "--data-root", root, "--epochs", "1", "--workers", "0", "--forget-rate", "0.3",
              *SMALL]
    assert run_main("train", *common, "--out", first).returncode == 0
    spaced = "train/cat/ spaced 0 .png"
    with open(first / "verdicts.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert spaced in {r["sample"] for r in rows}
    for keep in (["--keep-discarded"], []):
        labels = tmp_path / f"labels{len(keep)}.csv"
        assert run_main("export", first, "--out", labels, *keep).returncode == 0
        again = run_main("train", *common, "--labels", labels, "--out", second)
        assert again.returncode == 0, again.stderr
        with open(second / "verdicts.csv", newline="") as fh:
            given = {r["sample"]: r["given_label"] for r in csv.DictReader(fh)}
        decided = {r["sample"]: (r["suggested_label"] or r["given_label"]) for r in rows
                   if keep or r["verdict"] != "discarded"}
        assert given == decided  # every sample the file keeps, with its decided label, spaces and all
        shutil.rmtree(second)


def test_inspect_and_export_refuse_an_output_their_format_cannot_be(small_run, run_main, tmp_path):
    _, run = small_run
    for name in ("sheet.txt", "sheet"):
        one_line_error(run_main("inspect", run, "--output", tmp_path / name), "name it .png or .jpg")
        assert not (tmp_path / name).exists()
    one_line_error(run_main("export", run, "--out", tmp_path / "x.csv", "--format", "npy"), "name it .npy")
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("flag, value, words", [("--noise", "", "names nothing"), ("--noise", "sym20,sym20", "sym20 more than once"),
                                               ("--methods", "standard, standard", "standard more than once")])
def test_a_grid_refuses_an_empty_or_repeated_list_before_training(run_main, tmp_path, flag, value, words):
    args = {"--methods": "standard", "--noise": "sym20", flag: value}
    out = tmp_path / "table"
    one_line_error(run_main("table", "--methods", args["--methods"], "--noise", args["--noise"], "--epochs", "1",
                            "--out", out), words)
    assert not out.exists()


def test_csv_lists_without_dataset_csv_are_refused_not_ignored():
    from comining.config import resolve
    with pytest.raises(UserError, match="--dataset csv only, not of digits: add --dataset csv"):
        resolve({"train_csv": "train.csv"})
    with pytest.raises(UserError, match="give both"):
        resolve({"dataset": "csv", "train_csv": "train.csv"})


def test_too_small_a_subset_is_named_and_a_missing_file_reason_is_whole(run_main):
    one_line_error(run_main("train", "--train-subset", "1", "--epochs", "1"), "raise --train-subset 1")
    from comining.data.decode import describe
    err = FileNotFoundError(2, "No such file or directory", "/photos/a.png")
    assert describe(err) == "FileNotFoundError: No such file or directory"


def test_a_training_list_of_one_class_is_named_as_such(tmp_path, run_main):
    from PIL import Image
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (8, 8), (40, 80, 120)).save(tmp_path / name)
    (tmp_path / "train.csv").write_text("path,label\na.png,cat\nb.png,cat\n")
    (tmp_path / "val.csv").write_text("path,label\nc.png,dog\n")
    one_line_error(run_main("train", "--dataset", "csv", "--train-csv", tmp_path / "train.csv", "--val-csv",
                            tmp_path / "val.csv", "--epochs", "1"), "train.csv labels its images with one class only (cat)")
