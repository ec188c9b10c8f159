"""The run directory's readers (comining/rundir.py): every file a reader reads, missing, truncated or
damaged, is one UserError line that names the file; the commands that read a run go through them."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import comining
from comining.config import resolve
from comining.engine import train
from comining.errors import UserError
from comining.export import export_run
from comining.predict import load_networks
from comining.review.build import build_review
from comining.rundir import FORMAT, RunDir
from comining.table import check_cell
from comining.verdicts_view import inspect_run

TINY = {"train_subset": 300, "epochs": 2, "warmup_epochs": 1, "num_gradual": 1, "quiet": True}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished Co-mining run on 300 digits, 2 epochs: every file of a run directory, in seconds."""
    out = tmp_path_factory.mktemp("rundir") / "run"
    torch.set_num_threads(1)
    train(resolve(TINY), out=out)
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run that a test may damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def truncate(path: Path) -> None:
    """Cut the file inside its last complete line, as a write stopped part-way leaves it."""
    data = path.read_bytes()
    cut = len(data) * 6 // 10
    path.write_bytes(data[: cut - 1 if data[cut - 1:cut] == b"\n" else cut])


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = text
    path.write_text("".join(lines))


def set_field(path: Path, number: int, column: str, value: str) -> None:
    """Put ``value`` into ``column`` of row ``number`` (the header is row 1) of a CSV file."""
    rows = list(csv.reader(path.open(newline="")))
    rows[number - 1][rows[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def save_npy(path: Path, array) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


READERS = {
    "config.json": RunDir.read_config,
    "data.json": RunDir.read_data_info,
    "results.json": RunDir.read_results,
    "metrics.jsonl": RunDir.read_history,
    "verdicts.csv": RunDir.read_verdicts,
    "pred_probs.npy": RunDir.read_pred_probs,
    "checkpoint.pt": RunDir.load_checkpoint,
}

# (file, how it is damaged, what the message says about it)
DAMAGE = [
    ("config.json", lambda p: p.write_text("[1, 2]\n"), "holds a list, not a JSON object"),
    ("data.json", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe"), "not UTF-8 text at byte 0"),
    ("results.json", lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "last10_mean": "high"})),
     "last10_mean is a string"),
    ("metrics.jsonl", lambda p: replace_line(p, 2, "{'epoch': 2}\n"), "line 2 is not JSON"),
    ("verdicts.csv", lambda p: replace_line(p, 3, "7,3,clean,\r\n"), "row 3 has 4 fields, expected 9"),
    ("pred_probs.npy", lambda p: save_npy(p, np.arange(300)), "holds int64 data of shape (300,), not N×C"),
    ("checkpoint.pt", lambda p: torch.save([1, 2], p), "is not a comining checkpoint"),
]
TRUNCATED = {"config.json": "not complete JSON", "data.json": "not complete JSON",
             "results.json": "not complete JSON", "metrics.jsonl": "ends in the middle of a line",
             "verdicts.csv": "ends in the middle of a row", "pred_probs.npy": "an incomplete .npy array",
             "checkpoint.pt": "cannot be loaded"}


def one_line_error(call, *fragments) -> str:
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("name", list(READERS))
def test_a_missing_file_names_itself_and_the_fix(run, name):
    (run / name).unlink()
    fix = "start a new run" if name == "checkpoint.pt" else f"`comining train --resume {run}`"
    if name == "metrics.jsonl":
        fix = "train the run again to record its per-epoch history"
    one_line_error(lambda: READERS[name](RunDir(run)), f"no {name} in {run}: ", fix)


@pytest.mark.parametrize("name", list(READERS))
def test_a_truncated_file_names_itself(run, name):
    truncate(run / name)
    one_line_error(lambda: READERS[name](RunDir(run)), str(run / name), TRUNCATED[name])


@pytest.mark.parametrize("name, damage, reason", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_file_names_itself_and_what_is_wrong(run, name, damage, reason):
    damage(run / name)
    one_line_error(lambda: READERS[name](RunDir(run)), str(run / name), reason)


def test_without_a_checkpoint_the_fix_is_training_again(run):
    (run / "checkpoint.pt").unlink()
    (run / "verdicts.csv").write_text("sample,given_label,verdict\r\n0,1,maybe\r\n")
    one_line_error(lambda: RunDir(run).read_verdicts(), "the verdict 'maybe', not one of clean",
                   "train the run again (it has no checkpoint.pt")


def test_a_missing_run_directory_is_named(tmp_path):
    for reader in READERS.values():
        one_line_error(lambda: reader(RunDir(tmp_path / "nowhere")), f"run directory {tmp_path / 'nowhere'} not found")
    (tmp_path / "afile.txt").write_text("")
    for reader in READERS.values():
        one_line_error(lambda: reader(RunDir(tmp_path / "afile.txt")), "afile.txt is a file, not a run directory")


# --- the format ---------------------------------------------------------------------------------

def test_runs_carry_the_format_and_runs_without_it_still_read(run, tmp_path):
    info = json.loads((run / "data.json").read_text())
    assert info["format"] == FORMAT == 1
    before = export_run(run, tmp_path / "new.csv")
    del info["format"]  # as every run written before the format existed
    (run / "data.json").write_text(json.dumps(info))
    assert RunDir(run).read_data_info()["classes"] == [str(c) for c in range(10)]
    assert export_run(run, tmp_path / "old.csv") == {**before, "path": str(tmp_path / "old.csv")}
    assert (tmp_path / "old.csv").read_bytes() == (tmp_path / "new.csv").read_bytes()


def test_a_run_of_a_newer_format_is_refused(run):
    info = json.loads((run / "data.json").read_text())
    (run / "data.json").write_text(json.dumps({**info, "format": FORMAT + 1}))
    one_line_error(lambda: RunDir(run).read_data_info(), str(run / "data.json"), f"run format {FORMAT + 1}",
                   "newer than this comining reads")


# --- the commands read through the readers ---------------------------------------------------------

def test_review_refuses_a_broken_metrics_line_it_used_to_drop(run):
    replace_line(run / "metrics.jsonl", 1, "not json\n")
    one_line_error(lambda: build_review(run), str(run / "metrics.jsonl"), "line 1 is not JSON")
    assert not (run / "review.html").exists() and not (run / "review").exists()  # nothing half-written


def test_review_refuses_a_damaged_summary(run):
    (run / "results.json").write_text('"finished"\n')
    one_line_error(lambda: build_review(run), str(run / "results.json"), "holds a string, not a JSON object")


def test_inspect_refuses_a_damaged_data_json(run):
    (run / "data.json").write_text(json.dumps({"classes": "0123456789"}))
    one_line_error(lambda: inspect_run(run), str(run / "data.json"), "classes is a string")


def test_export_refuses_a_truncated_verdicts_file_instead_of_exporting_part(run, tmp_path):
    truncate(run / "verdicts.csv")
    one_line_error(lambda: export_run(run, tmp_path / "labels.csv"), str(run / "verdicts.csv"), "truncated")
    assert not (tmp_path / "labels.csv").exists()


def test_export_refuses_a_sample_outside_the_training_set(run, tmp_path):
    set_field(run / "verdicts.csv", 2, "sample", "9999")
    one_line_error(lambda: export_run(run, tmp_path / "labels.npy"), str(run / "verdicts.csv"),
                   "row 2 names sample '9999', not a position in the run's training set of 1437")


def test_api_and_predict_read_through_the_readers(run):
    save_npy(run / "pred_probs.npy", np.zeros((2, 3, 4), np.float32))
    one_line_error(lambda: comining.load_pred_probs(run), str(run / "pred_probs.npy"), "shape (2, 3, 4)")
    set_field(run / "verdicts.csv", 4, "label_quality", "x0.5")
    one_line_error(lambda: comining.find_label_issues(run), str(run / "verdicts.csv"), "row 4 has label_quality 'x0.5', not a number")
    info = json.loads((run / "data.json").read_text())
    del info["channels"]
    (run / "data.json").write_text(json.dumps(info))
    one_line_error(lambda: load_networks(run, torch.device("cpu")), str(run / "data.json"), "has no channels")


def test_table_reads_a_cells_config_through_its_reader(run):
    (run / "config.json").write_text('{"method": "comining", "arch": 3}\n')
    one_line_error(lambda: check_cell(run, resolve(TINY)), str(run / "config.json"), "arch is a number")


def test_through_the_command_line_one_line_and_status_2(run, run_main):
    truncate(run / "verdicts.csv")
    result = run_main("export", run, "--out", "labels.csv")
    assert result.returncode == 2
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"comining: error: {run / 'verdicts.csv'} is damaged (it ends in the middle "
                                    f"of a row: truncated): `comining train --resume {run}` writes it again")
    assert not (result.cwd / "labels.csv").exists()
