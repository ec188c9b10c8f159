"""Runs that survive: resume equality, signals, atomic writes, broken checkpoints, non-finite losses,
and configuration errors caught before anything heavy starts.

Everything trains on a few hundred digits on the CPU for a few epochs; most tests run in-process,
and only the signal tests start the real command line in a subprocess.

Every careless or hostile input the suite tries, and where (each must give a one-line error, or be
handled without a word where it is harmless, and never run code or train on a wrong label):

- Interruptions (here): SIGTERM / SIGINT mid-run, a second signal mid-step and mid-checkpoint-write,
  two quick signals; a full disk at write, fsync or rename of every file a run rewrites, and on a
  first write; a non-finite loss in each loss term (stopped before the bad update).
- Checkpoints (here): truncated, empty, not a torch file, not a dict, a pickle that would run code,
  another architecture / class count / bank size, another method's state, an unknown or invalid
  setting, no config or history, a damaged record of the data; resuming with settings it may not
  change; resuming on data that changed since (image files replaced or removed, labels changed, a
  sample left out: refused, saying what changed; test_training_set.py: renamed files, other
  in-memory images); resuming a folder with no checkpoint; a new run over an existing one (also on
  every DDP rank, test_distributed.py).
- Settings (here, test_cli.py, test_config.py, test_noise.py, test_table.py, test_models.py,
  test_views.py): numbers as strings, floats, booleans, null, zero, negative or NaN; rates out of
  range; unknown method, data set, preset, recipe, selector, view, synthetic setting or config key;
  malformed JSON, a folder as --config; a crop larger than the images; an image too small for the
  CNN; a batch that does not split over the DDP processes (test_distributed.py).
- Data sets (test_data_sources.py, test_cli.py): Fashion-MNIST with a wrong magic number, header
  sizes that disagree, truncated gzip, not gzip at all, counts that disagree, labels out of range;
  CIFAR missing folders or batches, wrong content, truncated pickles, Python 2 pickles, and pickles
  that would call os.system, open or eval (refused, nothing run).
- Image folders and lists (test_folder.py, test_label_runs.py): empty class folders, no train/ or
  evaluation split, a class without counterpart, files that are not images (skipped and listed),
  a file that breaks mid-run; a CSV list with a path twice (also one image spelled two ways), an
  index header, no labelled image, a class the training list lacks, paths outside its folder and
  missing files; a FIFO in a folder, in a CSV list and as a predict argument (skipped with its
  reason, never opened); a FIFO as --labels (refused, never opened, test_labelfile.py).
- Label files (test_labelfile.py, test_label_runs.py): a missing file, an unknown extension,
  --label-key on a .csv / .npy; CSV without header, with a BOM, unknown labels (the classes listed,
  ten at most), digits meaning a class name where class names are numbers (classes 0,1,2,5: label 3
  is an error, not class 5), indices out of range or not plain digits (1_0, +3, Arabic-Indic digits),
  a sample listed twice (an index, or one image spelled two ways), a row without its label field,
  file names with spaces at either end (kept); .npy of fractions, 2-D, booleans, values beyond
  int64 (2**63+5, 2**64-1, 1e30, not wrapped to -1) or not .npy at all; .npy and .pt whose pickle
  would run code (refused, nothing run); CIFAR-N files without the key, of the wrong length or
  with labels out of range; a file leaving every sample out; weights files with wrong keys or
  shapes, or unreadable (test_models.py).
- The review page and server (test_review.py, test_review_server.py): file and class names that are
  markup or close the script element (shown as text, nothing run); unreadable thumbnails; unknown
  verdicts; saves without the page's header, too large, or not a label file of the run; requests
  addressed to another name (DNS rebinding) or with no Host (421), framing (refused on every
  response), a client hanging up mid-response (no traceback).
- Precision (test_hardware.py): ATEN_CPU_CAPABILITY=avx2 or oneDNN limited below AVX512_CORE_BF16
  on a bf16 CPU makes --precision auto pick fp32 and say why.
- Outputs (test_outputs.py): `export --out` onto the run's own verdicts.csv (or any file the training
  run wrote) and `predict --output` onto one of its input images (refused, even with --force); an
  existing output file without --force; a label file that keeps one sample or one class (stopped
  before training); the same CSV as --train-csv and --val-csv (warned: the accuracy is training
  accuracy); a run directory named with spaces and shell syntax (the suggested commands are quoted);
  an exported label file with names that begin and end with spaces (reads back); a run named as
  markup (the review page's title, test_review.py).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from comining import cli, engine, rundir
from comining.config import resolve
from comining.engine import Trainer
from comining.guards import Interrupted, LossMonitor, NonFiniteLoss
from comining.rundir import RunDir, atomic_csv, atomic_json, atomic_torch_save, write_verdicts
from conftest import _cli_env, one_torch_thread

SMALL = {"train_subset": 400, "epochs": 4, "warmup_epochs": 1, "batch_size": 64, "quiet": True, "device": "cpu"}
STEPS = 400 // 64  # batches per epoch of SMALL (the last incomplete one is dropped)
TINY = {"train_subset": 128, "epochs": 2, "warmup_epochs": 1, "batch_size": 64, "quiet": True, "device": "cpu"}


one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


def small_cfg(method: str, base: dict = SMALL, **extra):
    return resolve({**base, "method": method, **extra})


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines() if line.strip()]


def results(run: Path) -> dict:
    return json.loads((Path(run) / "results.json").read_text())


def tensors_equal(a, b, where: str = "") -> None:
    """Exact, recursive equality of two checkpoint pieces (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        same_nan = torch.isnan(a).equal(torch.isnan(b)) if a.is_floating_point() else True  # NaN: not yet set
        assert same_nan and torch.equal(torch.nan_to_num(a), torch.nan_to_num(b)), f"{where} differs"
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            tensors_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            tensors_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def all_finite(obj) -> bool:
    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, dict):
        return all(all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(all_finite(v) for v in obj)
    return True


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in a folder (dot files, i.e. temporary files, included) and its bytes."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


# --- helpers that interrupt a run in-process ---------------------------------------------------

def stop_at_step(trainer: Trainer, epoch: int, step: int, signame: str = "SIGTERM") -> None:
    """Make ``trainer`` receive ``signame`` during step ``step`` of epoch ``epoch`` (both 0-based),
    the way the signal handler would: by setting ``stop_signal`` while the step runs."""
    original = trainer.method.loss
    where = {"epoch": trainer.start_epoch, "step": (trainer.partial[0] if trainer.partial else 0) - 1}

    def loss(views, labels, index, e, *rest):
        if e != where["epoch"]:
            where.update(epoch=e, step=-1)
        where["step"] += 1
        if (e, where["step"]) == (epoch, step):
            trainer.stop_signal = signame
        return original(views, labels, index, e, *rest)

    trainer.method.loss = loss


def stop_during_evaluation(trainer: Trainer, epochs_done: int, signame: str = "SIGTERM") -> None:
    """The signal arrives while the model of epoch ``epochs_done`` (1-based) is being evaluated."""
    original = trainer.evaluate

    def evaluate():
        accs = original()
        if len(trainer.history) + 1 == epochs_done:
            trainer.stop_signal = signame
        return accs

    trainer.evaluate = evaluate


# --- 1. an interrupted and resumed run equals the uninterrupted one ---------------------------

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run of a method, trained once per module: reference(method) -> its directory."""
    runs: dict[str, Path] = {}

    def get(method: str) -> Path:
        if method not in runs:
            runs[method] = tmp_path_factory.mktemp(f"reference-{method}")
            Trainer(small_cfg(method), runs[method]).fit()
        return runs[method]

    return get


# Each scenario: the interruptions in order, ("step", epoch, step) 0-based or ("eval", epochs done),
# and what the checkpoint holds afterwards: (epoch, step).
SCENARIOS = {
    "mid-epoch": [(("step", 2, 2), (2, 3))],  # Co-mining: after warm-up, banks in use
    "last-step": [(("step", 1, STEPS - 1), (1, STEPS))],  # a pre-emption that happens to end an epoch
    "epoch-boundary": [(("eval", 2), (2, 0))],  # between epochs: during the evaluation
    "twice": [(("step", 1, 1), (1, 2)), (("step", 1, 4), (1, 5))],  # the same epoch interrupted twice
}


@pytest.mark.parametrize("method", ["comining", "coteaching"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_interrupted_and_resumed_run_equals_uninterrupted(reference, tmp_path, method, scenario):
    ref = reference(method)
    out = tmp_path / "run"
    trainer = Trainer(small_cfg(method), out)
    for (kind, *when), (ck_epoch, ck_step) in SCENARIOS[scenario]:
        (stop_at_step if kind == "step" else stop_during_evaluation)(trainer, *when)
        with pytest.raises(Interrupted) as info:
            trainer.fit()
        assert info.value.exit_code == 143
        assert f"--resume {out}" in str(info.value)
        state = RunDir(out).load_checkpoint()
        assert (state["epoch"], state["step"]) == (ck_epoch, ck_step)
        assert len(metrics(out)) == ck_epoch  # only whole epochs are in metrics.jsonl
        assert not (out / "results.json").exists()
        assert temp_files(out) == []
        trainer = Trainer.resume(out)
    final = trainer.fit()

    expected, got = results(ref), results(out)
    for key in ("last10_mean", "last10_std", "best_acc", "best_epoch", "final_acc", "epochs",
                "n_clean", "n_relabelled", "n_discarded"):
        assert got[key] == expected[key], key
    assert final["last10_mean"] == expected["last10_mean"]
    got_lines, expected_lines = metrics(out), metrics(ref)
    assert len(got_lines) == SMALL["epochs"]  # no epoch written twice
    assert [r["epoch"] for r in got_lines] == list(range(1, SMALL["epochs"] + 1))
    assert [r["test_acc"] for r in got_lines] == [r["test_acc"] for r in expected_lines]
    for a, b in zip(got_lines, expected_lines):  # losses, selection metrics too: all but the wall time
        a.pop("seconds"), b.pop("seconds")
        assert a == b
    assert (out / "verdicts.csv").read_bytes() == (ref / "verdicts.csv").read_bytes()
    mine, theirs = RunDir(out).load_checkpoint(), RunDir(ref).load_checkpoint()
    tensors_equal(mine["method"], theirs["method"], "method")  # weights and (Co-mining) memory banks
    tensors_equal(mine["optimizer"], theirs["optimizer"], "optimizer")
    tensors_equal(mine["ledger"], theirs["ledger"], "ledger")


def test_a_signal_during_the_final_verdicts_writes_no_final_file_and_resume_finishes(reference, tmp_path, monkeypatch):
    ref = reference("comining")
    out = tmp_path / "run"
    trainer = Trainer(small_cfg("comining"), out)
    original = engine.evidence.gather

    def gather(*args, **kwargs):  # the signal arrives once, while the final evidence is gathered
        monkeypatch.setattr(engine.evidence, "gather", original)
        _send(signal.SIGTERM)  # a real one: only the run's handler keeps it from ending pytest
        return original(*args, **kwargs)

    monkeypatch.setattr(engine.evidence, "gather", gather)
    with pytest.raises(Interrupted) as info:
        trainer.fit()
    assert info.value.exit_code == 143 and f"at the end of epoch {SMALL['epochs']}" in str(info.value)
    assert not (out / "results.json").exists() and not (out / "verdicts.csv").exists()
    assert RunDir(out).load_checkpoint()["epoch"] == SMALL["epochs"]
    Trainer.resume(out).fit()
    assert (out / "verdicts.csv").read_bytes() == (ref / "verdicts.csv").read_bytes()
    assert results(out)["last10_mean"] == results(ref)["last10_mean"]


# --- 2. signals, in-process: a second signal exits at once and never leaves half a file -------

def _send(sig: int) -> None:
    # Never signal ourselves without the run's handler installed: the default would end pytest.
    assert signal.getsignal(sig) not in (signal.SIG_DFL, signal.SIG_IGN, signal.default_int_handler)
    os.kill(os.getpid(), sig)


def test_second_signal_during_a_step_exits_at_once_keeping_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(small_cfg("comining"), out)
    original = trainer.method.loss
    calls = []

    def loss(views, labels, index, epoch, *rest):
        calls.append(epoch)
        if epoch == 1 and calls.count(1) == 3:
            _send(signal.SIGTERM)  # asks for a graceful stop after this step
            _send(signal.SIGTERM)  # ... and the second one means: now
        return original(views, labels, index, epoch, *rest)

    trainer.method.loss = loss
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        trainer.fit()
    assert info.value.code == 143
    assert calls.count(1) == 3  # no further step ran
    assert signal.getsignal(signal.SIGTERM) is previous  # the run's handlers are gone again
    state = RunDir(out).load_checkpoint()
    assert (state["epoch"], state["step"]) == (1, 0)  # the end-of-epoch-1 checkpoint, untouched
    assert len(metrics(out)) == 1
    assert temp_files(out) == []
    # ... and that checkpoint resumes.
    resumed = Trainer.resume(out)
    assert resumed.start_epoch == 1 and resumed.partial is None


class _OsProxy:
    """Stands in for the ``os`` module inside comining.rundir, with some functions replaced."""

    def __init__(self, **replaced):
        self.__dict__.update(replaced)

    def __getattr__(self, name):
        return getattr(os, name)


def test_second_signal_during_the_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    trainer = Trainer(small_cfg("coteaching"), out)
    stop_at_step(trainer, 1, 2)  # first signal: a graceful stop, which writes a mid-epoch checkpoint
    before = {}

    def fsync(fd):
        if trainer.stop_signal is not None and not before:  # the pre-emption checkpoint is being written
            before.update(snapshot(out))
            _send(signal.SIGTERM)  # second signal in the middle of that write
        return os.fsync(fd)

    monkeypatch.setattr(rundir, "os", _OsProxy(fsync=fsync))
    with pytest.raises(SystemExit) as info:
        trainer.fit()
    assert info.value.code == 143
    assert before, "the checkpoint write was never reached"
    after = snapshot(out)
    assert temp_files(out) == []
    assert set(after) == {name for name in before if not name.startswith(".")}
    assert after["checkpoint.pt"] == before["checkpoint.pt"]  # byte-identical: the epoch-1 checkpoint
    assert RunDir(out).load_checkpoint()["epoch"] == 1


# --- 2. signals, through the real command line ----------------------------------------------

def _start(args: list, cwd: Path, own_group: bool = False) -> tuple[subprocess.Popen, Path, Path]:
    """``comining *args`` in ``cwd``; ``own_group``: in a process group of its own, to be signalled whole."""
    cwd.mkdir(parents=True, exist_ok=True)
    stdout, stderr = cwd / "stdout.txt", cwd / "stderr.txt"
    with open(stdout, "w") as out_fh, open(stderr, "w") as err_fh:
        proc = subprocess.Popen([sys.executable, "-m", "comining", *map(str, args)], cwd=cwd, env=_cli_env(),
                                stdout=out_fh, stderr=err_fh, start_new_session=own_group)
    return proc, stdout, stderr


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path, stderr: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (run / "checkpoint.pt").exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before its first checkpoint:\n{stderr.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint.pt appeared")
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail(f"the run finished (exit {proc.returncode}) before it could be signalled: make it longer")


def _wait(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the process did not exit within {timeout} s of the signal")


TRAIN = ["train", "--warmup-epochs", "1", "--batch-size", "64", "--quiet", "--device", "cpu"]


def _training_past_a_checkpoint(tmp_path: Path, train_subset: int, epochs: int):
    """A `comining train` subprocess on digits that has written its first checkpoint: (proc, run, stderr)."""
    run = tmp_path / "run"
    proc, _, stderr = _start([*TRAIN, "--train-subset", train_subset, "--epochs", epochs, "--out", run],
                             tmp_path / "cwd")
    _wait_for_checkpoint(proc, run, stderr)
    return proc, run, stderr


@pytest.mark.slow
def test_sigterm_saves_says_how_to_resume_and_resume_completes(tmp_path):
    epochs = 4  # signalled after the first of them; the resumed run trains the rest
    proc, run, stderr = _training_past_a_checkpoint(tmp_path, 400, epochs)
    proc.send_signal(signal.SIGTERM)
    assert _wait(proc, 60) == 143, stderr.read_text()
    err = stderr.read_text()
    assert "Traceback" not in err, err
    assert "--resume" in err and str(run) in err, err
    state = RunDir(run).load_checkpoint()
    assert 1 <= state["epoch"] < epochs
    assert len(metrics(run)) == state["epoch"]
    assert not (run / "results.json").exists()
    assert temp_files(run) == []

    resumed = subprocess.run([sys.executable, "-m", "comining", "train", "--resume", str(run)], cwd=tmp_path / "cwd",
                             env=_cli_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stdout + resumed.stderr
    for name in ("results.json", "verdicts.csv", "curves.png", "metrics.jsonl", "checkpoint.pt", "config.json"):
        assert (run / name).is_file(), name
    lines = metrics(run)
    assert [r["epoch"] for r in lines] == list(range(1, epochs + 1))
    assert results(run)["epochs"] == epochs
    assert len((run / "verdicts.csv").read_text().splitlines()) == 400 + 1
    assert RunDir(run).load_checkpoint()["epoch"] == epochs
    assert temp_files(run) == []


@pytest.mark.slow
def test_sigint_behaves_like_sigterm_with_status_130(tmp_path):
    proc, run, stderr = _training_past_a_checkpoint(tmp_path, 400, 200)
    proc.send_signal(signal.SIGINT)
    assert _wait(proc, 60) == 130, stderr.read_text()
    err = stderr.read_text()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "SIGINT" in err and "--resume" in err, err
    state = RunDir(run).load_checkpoint()
    assert len(metrics(run)) == state["epoch"] >= 1
    assert temp_files(run) == []


class ProcessGroups(torch.utils.data.Dataset):
    """Each item: (index, [process group, SIGTERM default, SIGINT ignored, SIGTERM blocked] of the
    process that loads it, no error)."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        blocked = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, set())
        return i, torch.tensor([os.getpgrp(), signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
                                signal.getsignal(signal.SIGINT) == signal.SIG_IGN, blocked], dtype=torch.int64), ""


def test_decoding_workers_leave_the_process_group_that_stop_signals_reach():
    # Out of the group, group signals miss them; SIGTERM stays deliverable, so their loader can end them.
    from comining.data.decode import in_order, loader

    batches = list(loader(ProcessGroups(), in_order(4, 2), workers=1))
    rows = {tuple(int(v) for v in images[0]) for _, _, images, _ in batches}
    assert len(batches) == 2 and len(rows) == 1
    group, term_default, int_ignored, term_blocked = rows.pop()
    assert group != os.getpgrp() and term_default and int_ignored and not term_blocked
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # the main thread's mask is back


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.15, 0.35, 0.55, 0.75])  # into the next epoch: at its loader's fork, or later
def test_sigterm_to_the_process_group_stops_an_image_folder_run_and_its_decoding_workers_cleanly(tmp_path, delay):
    # `timeout`, a scheduler and Ctrl-C signal the whole group, the image-decoding workers too: they
    # leave it to the main process, which stops after its step with a checkpoint, as when signalled alone.
    from test_folder import build_folder

    build_folder(tmp_path / "images", per_class=40, val=4)
    run = tmp_path / "run"
    proc, _, stderr = _start(["train", "--dataset", "folder", "--data-root", tmp_path / "images", "--arch", "small",
                              "--weights", "none", "--backbone", "finetune", "--rescale-size", "16", "--crop-size",
                              "16", "--batch-size", "8", "--epochs", "200", "--workers", "2", "--quiet",
                              "--device", "cpu", "--out", run], tmp_path / "cwd", own_group=True)
    _wait_for_checkpoint(proc, run, stderr)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGTERM)
    assert _wait(proc, 60) == 143, stderr.read_text()
    err = stderr.read_text()
    assert "Traceback" not in err and "DataLoader worker" not in err, err
    assert err.count("stopping after this step") == 1 and "--resume" in err, err
    assert len(metrics(run)) == RunDir(run).load_checkpoint()["epoch"] >= 1


@pytest.mark.slow
def test_two_quick_signals_exit_promptly_and_leave_loadable_files(tmp_path):
    proc, run, stderr = _training_past_a_checkpoint(tmp_path, 400, 200)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert _wait(proc, 60) == 143, stderr.read_text()
    assert time.monotonic() - sent < 30
    err = stderr.read_text()
    assert "Traceback" not in err, err
    state = RunDir(run).load_checkpoint()  # the last complete checkpoint: it loads
    assert len(metrics(run)) == state["epoch"] >= 1  # metrics.jsonl and checkpoint agree
    json.loads((run / "config.json").read_text())
    assert temp_files(run) == [], "temporary files left behind"


# --- 3. atomic writes: a full disk mid-write leaves the previous file -------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished coteaching run (its Trainer and directory) whose files the tests below rewrite."""
    out = tmp_path_factory.mktemp("finished") / "run"
    trainer = Trainer(small_cfg("coteaching", TINY), out)
    trainer.fit()
    return trainer, out


class _FullDiskHandle:
    """A file handle that writes half of what it is given, then reports a full disk."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, data):
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()
        return False

    def __getattr__(self, name):
        return getattr(self.handle, name)


def _full_disk(where: str, calls: list):
    def fail(*args, **kwargs):
        calls.append(where)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fdopen(fd, *args, **kwargs):
        calls.append(where)
        return _FullDiskHandle(os.fdopen(fd, *args, **kwargs))

    return _OsProxy(**{"write": {"fdopen": fdopen}, "fsync": {"fsync": fail}, "replace": {"replace": fail}}[where])


def _rewrite_results(trainer):
    atomic_json(trainer.run.results, {**trainer.results(1.0), "last10_mean": -1.0})


def _rewrite_checkpoint(trainer):
    trainer.save(len(trainer.history), step=1, monitor=LossMonitor(trainer.device, 1))


def _rewrite_verdicts(trainer):
    write_verdicts(trainer.run, trainer.selections, trainer.data, trainer.final)


def _rewrite_metrics(trainer):
    trainer.run.write_metrics(trainer.history + [{"epoch": 99}])


REWRITES = {"results.json": _rewrite_results, "checkpoint.pt": _rewrite_checkpoint,
            "verdicts.csv": _rewrite_verdicts, "metrics.jsonl": _rewrite_metrics}


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
@pytest.mark.parametrize("name", list(REWRITES))
def test_full_disk_while_rewriting_keeps_the_previous_file(finished, tmp_path, monkeypatch, name, where):
    trainer, out = finished
    run = tmp_path / "run"
    shutil.copytree(out, run)
    monkeypatch.setattr(trainer, "run", RunDir(run))
    before = snapshot(run)
    calls = []
    monkeypatch.setattr(rundir, "os", _full_disk(where, calls))
    with pytest.raises(OSError) as info:
        REWRITES[name](trainer)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert calls, "the simulated failure was never reached"
    assert snapshot(run) == before  # same files, byte for byte, and no temporary file left
    if name == "checkpoint.pt":
        assert RunDir(run).load_checkpoint()["epoch"] == TINY["epochs"]


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_full_disk_on_a_first_write_leaves_nothing(tmp_path, monkeypatch, where):
    monkeypatch.setattr(rundir, "os", _full_disk(where, []))
    for write in (lambda: atomic_json(tmp_path / "results.json", {"a": 1}),
                  lambda: atomic_torch_save(tmp_path / "checkpoint.pt", {"epoch": 1}),
                  lambda: atomic_csv(tmp_path / "verdicts.csv", ["a"], [[1]])):
        with pytest.raises(OSError):
            write()
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_keep_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_json(tmp_path / "results.json", {"a": 1})
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


# --- 4. broken checkpoints: one line, status 2, nothing executed -------------------------------

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Finished tiny runs of Co-mining, Standard and Co-teaching to take checkpoints from."""
    base = tmp_path_factory.mktemp("checkpoints")
    runs = {}
    for method in ("comining", "standard", "coteaching"):
        runs[method] = base / method
        Trainer(small_cfg(method, TINY), runs[method]).fit()
    return runs


class _Payload:
    """Unpickling this creates the file ``marker`` (what a malicious checkpoint could do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _truncated(path: Path, runs, marker):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _not_torch(path: Path, runs, marker):
    path.write_text('{"epoch": 1, "method": {}}\n')


def _empty(path: Path, runs, marker):
    path.write_bytes(b"")


def _code(path: Path, runs, marker):
    state = torch.load(path, weights_only=False)
    state["method"]["payload"] = _Payload(marker)
    torch.save(state, path)


def _not_a_dict(path: Path, runs, marker):
    torch.save([torch.zeros(3)], path)


def _config_change(**changes):
    def mutate(path: Path, runs, marker):
        state = torch.load(path, weights_only=False)
        state["config"].update(changes)
        torch.save(state, path)
    return mutate


def _state_of(method: str):
    """Another method's state under this run's (Co-mining) settings."""
    def mutate(path: Path, runs, marker):
        other = torch.load(runs[method] / "checkpoint.pt", weights_only=False)
        other["config"] = torch.load(path, weights_only=False)["config"]
        torch.save(other, path)
    return mutate


def _drop(key: str):
    def mutate(path: Path, runs, marker):
        state = torch.load(path, weights_only=False)
        del state[key]
        torch.save(state, path)
    return mutate


def _replace(key: str, value):
    def mutate(path: Path, runs, marker):
        state = torch.load(path, weights_only=False)
        state[key] = value
        torch.save(state, path)
    return mutate


BROKEN = {
    "truncated": _truncated,
    "not-torch": _not_torch,
    "empty": _empty,
    "code": _code,
    "not-a-dict": _not_a_dict,
    "other-arch": _config_change(arch="cnn"),
    "other-num-classes": _config_change(open_ratio=0.2),  # 8 known classes instead of 10
    "other-bank-size": _config_change(bank=512),
    "standard-state-as-comining": _state_of("standard"),
    "coteaching-state-as-comining": _state_of("coteaching"),
    "unknown-setting": _config_change(learning_rate=0.1),
    "invalid-setting": _config_change(epochs="ten"),
    "missing-config": _drop("config"),
    "missing-history": _drop("history"),
    "damaged-data-record": _replace("data", {"names": 3, "labels": "cat"}),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_checkpoint_is_one_line_status_2(checkpoints, tmp_path, monkeypatch, capsys, case):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(checkpoints["comining"], run)
    marker = tmp_path / "payload-ran"
    BROKEN[case](run / "checkpoint.pt", checkpoints, marker)
    before = snapshot(run)
    code = cli.main(["train", "--resume", str(run)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("comining: error:") and "checkpoint" in lines[0], lines[0]
    assert str(run / "checkpoint.pt") in lines[0], lines[0]
    assert not marker.exists(), "unpickling the checkpoint ran its code"
    assert snapshot(run) == before  # a refused resume writes nothing
    assert not (tmp_path / "runs").exists()


def test_broken_checkpoint_through_the_real_command_line(checkpoints, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(checkpoints["comining"], run)
    marker = tmp_path / "payload-ran"
    _code(run / "checkpoint.pt", checkpoints, marker)
    result = subprocess.run([sys.executable, "-m", "comining", "train", "--resume", str(run)], cwd=tmp_path,
                            env=_cli_env(), capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(lines) == 1 and str(run / "checkpoint.pt") in lines[0], result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("extra", [["--epochs", "9"], ["--method", "standard"], ["--seed", "3"],
                                   ["--closed-rate", "0.1"], ["--preset", "digits"], ["--config", "{cfg}"]])
def test_resume_refuses_settings_it_may_not_change(checkpoints, tmp_path, monkeypatch, capsys, extra):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "settings.json").write_text('{"epochs": 9}')
    run = tmp_path / "run"
    shutil.copytree(checkpoints["comining"], run)
    before = snapshot(run)
    monkeypatch.setattr(engine, "load_training_data", _heavy)
    code = cli.main(["train", "--resume", str(run), *[a.format(cfg=tmp_path / "settings.json") for a in extra]])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "--resume" in lines[0] and extra[0].lstrip("-").split("-")[0] in lines[0], lines[0]
    assert snapshot(run) == before


def test_a_new_run_never_overwrites_an_existing_one(checkpoints, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(checkpoints["comining"], run)
    before = snapshot(run)
    code = cli.main(["train", "--out", str(run), "--epochs", "2", "--train-subset", "64", "--quiet"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert "already holds a run" in lines[0] and f"--resume {run}" in lines[0]
    assert snapshot(run) == before


def test_resume_of_a_folder_without_checkpoint(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "missing"):
        assert cli.main(["train", "--resume", str(path)]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and str(path) in lines[0], lines
    assert not (tmp_path / "missing").exists()
    assert list((tmp_path / "empty").iterdir()) == []


# --- 5. numerics: a non-finite loss stops before the bad update --------------------------------

def _nan_at(original, epoch: int, step: int, term: str, calls: list):
    """Wrap a method's loss so that ``term`` (and so the loss) is NaN at (epoch, step), 0-based."""

    def loss(views, labels, index, e, *rest):
        calls.append(e)
        total, terms = original(views, labels, index, e, *rest)
        if e == epoch and calls.count(e) == step + 1:
            terms = {**terms, term: terms[term] * float("nan")}
            total = total + terms[term]
        return total, terms

    return loss


@pytest.mark.parametrize("method,term", [("comining", "tri"), ("comining", "ce"), ("coteaching", "ce1")])
def test_non_finite_loss_stops_before_the_bad_update(tmp_path, method, term):
    out = tmp_path / "run"
    trainer = Trainer(small_cfg(method, epochs=3), out)
    calls = []
    trainer.method.loss = _nan_at(trainer.method.loss, 1, 2, term, calls)
    with pytest.raises(NonFiniteLoss) as info:
        trainer.fit()
    message = str(info.value)
    assert "epoch 2" in message and "step 3" in message and term in message, message
    assert (info.value.epoch, info.value.step) == (1, 2) and term in info.value.terms
    assert calls == [0] * STEPS + [1] * 3  # no step after the bad one
    assert all_finite(dict(trainer.method.state_dict()))  # the NaN never reached the weights
    state = RunDir(out).load_checkpoint()
    assert (state["epoch"], state["step"]) == (1, 0)  # the checkpoint after epoch 1
    assert all_finite(state["method"]) and all_finite(state["optimizer"])
    assert len(metrics(out)) == 1
    assert not (out / "results.json").exists()
    assert temp_files(out) == []
    if method == "comining" and term == "tri":  # the way out the message names: resume with a smaller rate
        from comining.engine import schedule
        resumed = Trainer.resume(out, {"lr": 5e-4})
        assert resumed.cfg.lr == 5e-4 != trainer.cfg.lr
        resumed.fit()  # each epoch's rate follows the schedule from the new base rate
        assert all(g["lr"] == schedule(resumed.cfg, 2)[0] != schedule(trainer.cfg, 2)[0]
                   for g in resumed.optimizer.param_groups)
        assert [r["epoch"] for r in metrics(out)] == [1, 2, 3]
        assert results(out)["epochs"] == 3


def test_non_finite_loss_through_the_command_line(tmp_path, monkeypatch, capsys):
    from comining.methods.comining import CoMining

    monkeypatch.chdir(tmp_path)
    calls = []
    original = CoMining.loss

    def loss(self, views, labels, index, epoch, *rest):
        return _nan_at(lambda *a: original(self, *a), 1, 2, "tri", calls)(views, labels, index, epoch, *rest)

    monkeypatch.setattr(CoMining, "loss", loss)
    out = tmp_path / "run"
    code = cli.main(["train", "--train-subset", "128", "--batch-size", "32", "--epochs", "3", "--warmup-epochs", "1",
                     "--device", "cpu", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, err
    assert len(lines) == 1, err
    assert "non-finite" in lines[0] and "epoch 2" in lines[0] and "step 3" in lines[0] and "tri" in lines[0]
    assert "--resume" in lines[0]
    assert RunDir(out).load_checkpoint()["epoch"] == 1


# --- 6. configuration errors come before anything heavy ---------------------------------------

def _heavy(*args, **kwargs):
    raise AssertionError("data loading started before the settings were validated")


BAD_CONFIG = {
    "epochs-string": ({"epochs": "ten"}, "epochs"),
    "epochs-float": ({"epochs": 2.5}, "epochs"),
    "epochs-bool": ({"epochs": True}, "epochs"),
    "epochs-zero": ({"epochs": 0}, "epochs"),
    "lr-negative": ({"lr": -1}, "lr"),
    "lr-zero": ({"lr": 0}, "lr"),
    "lr-nan": ('{"lr": NaN}', "lr"),
    "lr-string": ({"lr": "0.1"}, "lr"),
    "closed-rate-above-1": ({"closed_rate": 1.5}, "closed"),
    "open-ratio-negative": ({"open_ratio": -0.1}, "open"),
    "batch-size-1": ({"batch_size": 1}, "batch"),
    "quiet-string": ({"quiet": "yes"}, "quiet"),
    "method-number": ({"method": 3}, "method"),
    "noise-type-unknown": ({"noise_type": "gaussian"}, "gaussian"),
    "bank-zero": ({"bank": 0}, "bank"),
    "epochs-null": ({"epochs": None}, "epochs"),
    "rank-range-empty": ({"plk": 5, "puk": 5}, "plk"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIG))
def test_bad_config_file_is_one_line_status_2_and_no_run_directory(tmp_path, monkeypatch, capsys, case):
    content, word = BAD_CONFIG[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(engine, "load_training_data", _heavy)
    settings = tmp_path / "settings.json"
    settings.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "run"
    code = cli.main(["train", "--config", str(settings), "--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("comining: error:"), err
    assert word in lines[0].replace("-", "_").lower() or word in lines[0].lower(), lines[0]
    assert not out.exists() and not (tmp_path / "runs").exists()


# --- resuming on the data a run was trained on ---------------------------------------------------

TINY_CLASSES = ("cat", "dog", "owl")


def _paint(path: Path, colour) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)


@pytest.fixture(scope="module")
def folder_checkpoint(tmp_path_factory):
    """A finished 2-epoch run on 15 plain-colour PNGs with a label file naming every one of them."""
    base = tmp_path_factory.mktemp("folder-resume")
    rows = ["path,label"]
    for k, name in enumerate(TINY_CLASSES):
        for j in range(5):
            _paint(base / "images" / "train" / name / f"{j}.png", (80 * k, 40 * j, 90))
            rows.append(f"train/{name}/{j}.png,{name}")
        _paint(base / "images" / "val" / name / "0.png", (80 * k, 0, 0))
    (base / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = resolve({"dataset": "folder", "data_root": str(base / "images"), "labels": str(base / "labels.csv"),
                   "arch": "small", "rescale_size": 16, "crop_size": 16, "weights": "none", "workers": 0,
                   "epochs": 2, "warmup_epochs": 1, "batch_size": 4, "quiet": True, "device": "cpu"})
    Trainer(cfg, base / "run").fit()
    return base


@pytest.fixture
def folder_copy(folder_checkpoint, tmp_path) -> Path:
    """A copy of that run, its images (modification times kept) and its label file, the checkpoint
    pointing at the copies: each test changes its own data."""
    shutil.copytree(folder_checkpoint / "images", tmp_path / "images")
    shutil.copytree(folder_checkpoint / "run", tmp_path / "run")
    shutil.copy2(folder_checkpoint / "labels.csv", tmp_path / "labels.csv")
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    state["config"].update(data_root=str(tmp_path / "images"), labels=str(tmp_path / "labels.csv"))
    torch.save(state, checkpoint)
    return tmp_path


def _relabel(changes: dict):
    def change(base: Path):
        text = (base / "labels.csv").read_text()
        for path, label in changes.items():
            text = text.replace(f"{path},{path.split('/')[1]}\n", f"{path},{label}\n")
        (base / "labels.csv").write_text(text)
    return change


DATA_CHANGES = {
    "images-replaced": (lambda base: [_paint(base / "images/train" / p, (7, 7, 7)) for p in ("owl/3.png", "dog/1.png")],
                        "2 of 15 image files changed since (first: train/dog/1.png)"),
    "labels-changed": (_relabel({"train/dog/1.png": "owl", "train/owl/0.png": "cat"}),
                       "the labels differ for 2 of 15 samples (first: train/dog/1.png;"),
    "sample-left-out": (_relabel({"train/cat/2.png": "-1"}), "14 training samples now, 15 then"),
    "image-removed": (lambda base: (base / "images/train/cat/4.png").unlink(), "14 training samples now, 15 then"),
}


@pytest.mark.parametrize("case", list(DATA_CHANGES))
def test_resume_refuses_data_that_changed_since(folder_copy, monkeypatch, capsys, case):
    change, message = DATA_CHANGES[case]
    change(folder_copy)
    run = folder_copy / "run"
    before = snapshot(run)
    monkeypatch.chdir(folder_copy)
    code = cli.main(["train", "--resume", str(run)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert f"{run / 'checkpoint.pt'} was trained on other data: {message}" in lines[0], lines[0]
    assert lines[0].endswith("start a new run, or put the data back as it was"), lines[0]
    assert snapshot(run) == before


def test_resume_on_the_same_data_continues(folder_copy):
    trainer = Trainer.resume(folder_copy / "run")
    stored = torch.load(folder_copy / "run" / "checkpoint.pt", weights_only=True)["data"]
    assert trainer.start_epoch == 2 and stored["names"] == trainer.data.sample_names()
    tensors_equal(stored, trainer.data.fingerprint())


def test_a_checkpoint_without_a_fingerprint_still_resumes(folder_copy):
    checkpoint = folder_copy / "run" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    del state["data"]  # as written before checkpoints kept one
    torch.save(state, checkpoint)
    assert Trainer.resume(folder_copy / "run").start_epoch == 2
