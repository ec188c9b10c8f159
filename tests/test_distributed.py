"""DDP on CPU: two gloo processes launched by torchrun stay identical, and only rank 0 writes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from comining.noise_rate import CLASS_DEPENDENT, MIN_SEPARATION, rate_interval

HERE = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.parametrize("method", ["comining", "coteaching"])
def test_two_ranks_stay_identical_and_rank0_writes_once(tmp_path, method):
    out, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(HERE / "ddp_worker.py"), str(out), str(dump), method],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1))

    # DDP averaged the gradients, so every parameter and BatchNorm buffer is bit-identical.
    assert rank0["params"].keys() == rank1["params"].keys()
    for key, value in rank0["params"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, rank1["params"][key]), key
    # Both ranks pushed everyone's features (all-gather), so the banks match entry for entry.
    for bank0, bank1 in zip(rank0["banks"], rank1["banks"]):
        assert bank0["count"] == bank1["count"] > 0 and bank0["ptr"] == bank1["ptr"]
        assert torch.equal(bank0["buffer"], bank1["buffer"])
        assert torch.equal(bank0["label_buffer"], bank1["label_buffer"])
    # The verdicts of both ranks' shares were merged on both.
    for key in ("status", "pseudo"):
        assert torch.equal(rank0["ledger"][key], rank1["ledger"][key]), key

    # Each batch of 64 was split in two disjoint halves of 32 that make up the single-process batch;
    # over an epoch the ranks trained on 320 different samples: all 330 but the dropped 10.
    shares0, shares1 = rank0["trained_on"], rank1["trained_on"]
    assert len(shares0) == len(shares1) == 2 * 5
    for epoch, whole in enumerate(rank0["whole_batches"]):
        assert len(whole) == 5
        epoch0, epoch1 = torch.cat(shares0[5 * epoch:5 * epoch + 5]), torch.cat(shares1[5 * epoch:5 * epoch + 5])
        assert len(epoch0) == len(epoch1) == 160
        assert not set(epoch0.tolist()) & set(epoch1.tolist())
        assert sorted(epoch0.tolist() + epoch1.tolist()) == sorted(torch.cat(whole).tolist())
        assert len(set(torch.cat(whole).tolist())) == 320 and torch.cat(whole).max() < 330
        for b, batch in enumerate(whole):
            assert sorted(shares0[5 * epoch + b].tolist() + shares1[5 * epoch + b].tolist()) == sorted(batch.tolist())
    assert rank0["whole_batches"][0][0].tolist() != rank0["whole_batches"][1][0].tolist()  # reshuffled each epoch

    # The run directory is complete, and rank 1 wrote nothing into it.
    for name in ("config.json", "metrics.jsonl", "results.json", "checkpoint.pt", "verdicts.csv", "curves.png"):
        assert (out / name).exists(), name
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "results.json").read_text())["epochs"] == 2
    if method == "comining":  # every rank trained with the rate rank 0 chose, and made the same estimates
        history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        clear_split = history[0]["noise_separation"] >= MIN_SEPARATION
        assert ("mixture_noise_rate" in history[0]) != clear_split  # counted without one only there
        # Re-estimated after epoch 2 either way (by the mixture, or counted without a split where its
        # losses do not separate), and used where it raises the rate, or lowers a first estimate that
        # split too under class-dependent noise (noise_rate.why_first_holds).
        second = history[1]
        # The second estimate's own rate: not used (where the cap bound too, uncapped_noise_rate is then
        # the first estimate, so unused_noise_rate is read first), used and capped, or used as it is.
        proposed = next(second[k] for k in ("unused_noise_rate", "uncapped_noise_rate", "estimated_noise_rate") if k in second)
        higher = proposed > history[0]["estimated_noise_rate"]
        lowers = clear_split and second["disagreement_concentration"] >= CLASS_DEPENDENT
        used = higher or lowers
        assert ("unused_noise_rate" in second) != used
        # Whichever stands is capped at the share the network disagrees with (noise_rate.capped_by_disagreement).
        capped = "uncapped_noise_rate" in second
        standing = (second["uncapped_noise_rate"] if capped else
                    second["estimated_noise_rate"] if used else history[0]["estimated_noise_rate"])
        assert capped == (second["disagreement_share"] < standing)
        assert ("estimated_noise_rate" in second) == (used or capped)
        if capped:
            assert second["estimated_noise_rate"] == second["disagreement_share"]
        # The interval spans the uncapped rate, the disagreement and the confident joint, read by rank 0.
        assert second["noise_rate_interval"] == pytest.approx(list(rate_interval(
            standing, second["disagreement_share"], second["confident_joint_noise_rate"])))
        assert "confident_joint_noise_rate" in history[0]
        assert rank0["forget_rate"] == rank1["forget_rate"] == json.loads((out / "results.json").read_text())["forget_rate"]
    assert not (dump / "writes-rank1.log").exists()
    written = (dump / "writes-rank0.log").read_text().splitlines()
    assert sum(Path(p).name == "results.json" for p in written) == 1
    assert sum(Path(p).name == "verdicts.csv" for p in written) == 1


@pytest.mark.slow
def test_batch_must_split_evenly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "comining", "train", "--batch-size", "63", "--epochs", "1", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    assert "comining: error: --batch-size 63 does not split evenly over 2 processes" in done.stderr
    assert "comining/" not in done.stderr  # torchrun reports the failure; our code raised no traceback


@pytest.mark.slow
def test_every_rank_refuses_to_start_over_an_existing_run(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text("{}")  # a run writes its settings first
    (out / "checkpoint.pt").write_bytes(b"a run's state")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "comining", "train", "--epochs", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    # Rank 0 decides and both ranks stop with the message; neither waits for the other or crashes.
    assert done.stderr.count(f"comining: error: {out} already holds a run") == 2, done.stderr[-2000:]
    assert "comining/" not in done.stderr and "Connection closed" not in done.stderr  # (torchrun's own report aside)
    assert (out / "checkpoint.pt").read_bytes() == b"a run's state"
