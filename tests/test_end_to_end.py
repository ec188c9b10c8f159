"""The whole method on real data: Co-mining must beat cross-entropy where the labels are noisy.

These train real models on the CPU (digits: the session's shared runs of conftest.py; a
Fashion-MNIST subset: TIMING), with fixed seeds, and check effects large enough that no seed turns
them around.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from comining.config import resolve
from comining.data.fashion_mnist import candidate_dirs, is_complete
from comining.engine import train
from comining.verdicts import best_other_class


@pytest.mark.slow
def test_comining_beats_standard_on_digits(digits_runs):
    comining, standard = digits_runs("comining-fp32")[0], digits_runs("standard")[0]
    # Measured: 96.6 vs 65.0. Cross-entropy memorises the wrong labels once the rate decays.
    assert comining["last10_mean"] > standard["last10_mean"] + 20
    assert comining["last10_mean"] > 93


@pytest.mark.slow
def test_comining_finds_the_wrong_labels_on_digits(digits_runs):
    results, out = digits_runs("comining-fp32")
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    # 41 % of the given labels are wrong, so trusting everything has precision 0.59. Measured:
    # precision 0.82, relabel accuracy 0.98, 427 of 585 wrong labels caught, 331 of 338 relabelled right.
    assert last["label_precision"] > 0.75
    assert last["relabel_acc"] > 0.9
    # Final verdicts: cleanlab 2.9 with 5-fold logistic-regression probabilities reaches F1 0.93 here.
    caught, flagged = results["wrong_caught"], results["wrong_caught"] + results["right_flagged"]
    precision, recall = caught / flagged, caught / results["n_wrong_labels"]
    assert 2 * precision * recall / (precision + recall) > 0.93
    assert results["relabelled_correctly"] > 0.9 * results["n_relabelled"]
    rows = list(csv.DictReader((out / "verdicts.csv").open()))
    assert len(rows) == results["train_size"]
    relabelled = [r for r in rows if r["verdict"] == "relabelled"]
    right = sum(r["suggested_label"] == r["true_label"] for r in relabelled)
    assert right == results["relabelled_correctly"]


@pytest.mark.slow
def test_standard_ranks_its_labels_by_their_history(digits_runs):
    _, out = digits_runs("standard")
    rows = list(csv.DictReader((out / "verdicts.csv").open()))
    wrong = np.array([r["given_label"] != r["true_label"] for r in rows])
    quality = np.array([float(r["label_quality"]) for r in rows])
    pred = np.load(out / "pred_probs.npy")
    classes = json.loads((out / "data.json").read_text())["classes"]
    given = np.array([classes.index(r["given_label"]) for r in rows])
    # Cross-entropy fits every label by the end (measured: its final network disagrees with 0.9 % of
    # them where 41 % are wrong), so its predictions barely rank them: the margin's AUROC was 0.77.
    # The history ranks them at 0.95: label_quality takes it alone for Standard (its history_weight,
    # 1); blended at 0.25 with the margin it reached 0.89.
    margin = pred[np.arange(len(given)), given] - pred[np.arange(len(given)), best_other_class(pred, given)]
    assert (pred.argmax(1) != given).mean() < 0.05
    assert roc_auc_score(wrong, -margin) < 0.85
    assert roc_auc_score(wrong, -quality) > 0.93


# --precision bf16 against fp32 on the same digits run (here, beside the other users of the shared
# runs, so a parallel test run trains each of them once).

@pytest.fixture(scope="module")
def precision_runs(digits_runs):
    """Co-mining on digits with 40 % symmetric noise, the shortened demo, once per precision.
    Over seeds 1-3 bf16 and fp32 differed by 0.95, 0.02 and 0.20 points."""
    return {p: digits_runs(f"comining-{p}")[0] for p in ("bf16", "fp32")}


@pytest.mark.slow
def test_bf16_and_fp32_reach_close_accuracies(precision_runs):
    bf16, fp32 = precision_runs["bf16"], precision_runs["fp32"]
    assert bf16["precision"] == "bf16" and fp32["precision"] == "fp32"
    assert fp32["last10_mean"] > 90  # both learned despite the noise, so "close" means something
    assert abs(bf16["last10_mean"] - fp32["last10_mean"]) < 2.5
    assert abs(bf16["relabelled_correctly"] - fp32["relabelled_correctly"]) < 0.15 * fp32["n_relabelled"] + 10


@pytest.mark.slow
def test_bf16_and_fp32_differ_in_their_arithmetic(precision_runs):
    # Guards against a --precision flag that is accepted but changes nothing.
    assert precision_runs["bf16"]["last10_mean"] != precision_runs["fp32"]["last10_mean"] or \
        precision_runs["bf16"]["n_relabelled"] != precision_runs["fp32"]["n_relabelled"]


def _fashion_mnist_present() -> bool:
    return any(d.is_dir() and is_complete(d) for d in candidate_dirs(None))


@pytest.mark.skipif(not _fashion_mnist_present(),
                    reason="Fashion-MNIST is not installed: `apt-get install dataset-fashion-mnist` "
                           "or put the four IDX .gz files in datasets/fashion-mnist")
@pytest.mark.slow
def test_comining_beats_standard_on_fashion_mnist(tmp_path):
    # A 1500-image subset, 16 epochs, the rate annealed over the last 10: enough for memorisation to
    # show in Standard and for the selection to settle in Co-mining (measured with the default recipe:
    # 74.5 against 57.0, label precision 0.81; with the paper's, 70.9 against 58.6; with 2000 images
    # for 12 epochs Standard had not memorised yet: 65.3 against 63.8). A bank of 1024 is flushed of the warm-up's noisy entries within an epoch of selection.
    settings = {"dataset": "fashion-mnist", "train_subset": 1500, "test_subset": 1000, "epochs": 16,
                "warmup_epochs": 3, "epoch_decay_start": 6, "closed_rate": 0.5, "bank": 1024, "quiet": True}
    comining = train(resolve({**settings, "method": "comining"}), out=tmp_path / "comining")
    standard = train(resolve({**settings, "method": "standard"}), out=tmp_path / "standard")
    assert comining["last10_mean"] > standard["last10_mean"] + 8
    last = json.loads(Path(tmp_path / "comining" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["label_precision"] > 0.75  # half of the given labels are wrong
