"""comining.selection: the selection metrics of docs/RESULTS.md on a ledger whose answers we worked out
(test_verdicts.py counts its verdicts), a sample no step saw in verdicts.csv, and the ledger's running
record that the final verdicts read."""

import csv
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from comining.rundir import RunDir, write_verdicts
from comining.selection import CLEAN, DISCARDED, RELABELLED, UNSEEN, SelectionLog, selection_metrics
from comining.verdicts import Verdicts

# Ten samples, known classes 0..2 (a, b, c); true labels 3 and 4 are open-set (no known class).
#   sample     0  1  2  3  4  5  6  7  8  9
#   true       0  1  2  0  1  2  0  3  4  1
#   given      0  1  2  1  1  0  0  2  0  1
#   label ok   y  y  y  n  y  n  y  n  n  y      (open-set labels are never right)
#   decision   C  C  D  C  R1 R2 R1 D  C  unseen  (C clean, D discarded, Rk relabelled to k)
TRUE = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3, 4, 1])
GIVEN = torch.tensor([0, 1, 2, 1, 1, 0, 0, 2, 0, 1])
NUM_CLOSED = 3


@dataclass
class TinyData:
    """The parts of a training set that the metrics and verdicts.csv read."""
    labels: torch.Tensor
    true_labels: torch.Tensor | None
    num_classes: int = NUM_CLOSED
    classes: tuple = ("a", "b", "c")
    failed_positions: frozenset = frozenset()

    def sample_names(self):
        return [str(i) for i in range(len(self.labels))]


def hand_built_log() -> SelectionLog:
    ledger = SelectionLog(10, "cpu")
    ledger.record(torch.tensor([0, 1, 3, 8]), CLEAN, torch.tensor([0.1, 0.2, 0.3, 0.4]))
    ledger.record(torch.tensor([2, 7]), DISCARDED, torch.tensor([2.0, 3.0]))
    ledger.record(torch.tensor([4, 5, 6]), RELABELLED, torch.tensor([1.0, 1.5, 1.2]), torch.tensor([1, 2, 1]))
    return ledger  # sample 9: no step saw it


def hand_built_final() -> Verdicts:
    """Final verdicts with the ledger's decisions, sample 9 (never selected on) clean."""
    verdict = np.array([CLEAN, CLEAN, DISCARDED, CLEAN, RELABELLED, RELABELLED, RELABELLED, DISCARDED, CLEAN, CLEAN])
    suggested = np.array([-1, -1, -1, -1, 1, 2, 1, -1, -1, -1])
    quality = np.linspace(0.9, 0.0, 10)
    return Verdicts(verdict=verdict, suggested=suggested, label_quality=quality, outlier_score=1 - quality,
                    pred_probs=np.full((10, 3), 1 / 3, dtype=np.float32))


def test_selection_metrics_by_hand():
    # Seen: 0..8. Right labels seen: {0,1,2,4,6} (5). Clean {0,1,3,8}, of which right {0,1}:
    # precision 2/4, recall 2/5. Relabelled {4,5,6}, to the true class {4,5}: 2/3.
    # Open-set {7,8}, discarded {7}: 1/2.
    metrics = selection_metrics(hand_built_log(), GIVEN, TRUE, NUM_CLOSED)
    assert metrics == {"label_precision": pytest.approx(0.5), "label_recall": pytest.approx(0.4),
                       "relabel_acc": pytest.approx(2 / 3), "open_discarded": pytest.approx(0.5),
                       "clean": 4, "relabelled": 3, "discarded": 2}


def test_selection_metrics_count_only_this_epochs_samples():
    # A new epoch in which only sample 0 (clean, right) and 5 (relabelled correctly) are seen: the
    # others keep last epoch's status but are not counted; nothing open-set was seen (None, not 0).
    ledger = hand_built_log()
    ledger.new_epoch()
    ledger.record(torch.tensor([0]), CLEAN, torch.tensor([0.1]))
    ledger.record(torch.tensor([5]), RELABELLED, torch.tensor([1.0]), torch.tensor([2]))
    metrics = selection_metrics(ledger, GIVEN, TRUE, NUM_CLOSED)
    assert metrics == {"label_precision": 1.0, "label_recall": 1.0, "relabel_acc": 1.0, "open_discarded": None,
                       "clean": 1, "relabelled": 1, "discarded": 0}


def test_an_unseen_sample_is_reported_as_unseen_in_verdicts_csv(tmp_path):
    ledger = hand_built_log()
    assert ledger.status[9] == UNSEEN
    write_verdicts(RunDir(tmp_path), ledger, TinyData(GIVEN, TRUE), hand_built_final())
    with open(tmp_path / "verdicts.csv", newline="") as fh:
        rows = {row["sample"]: row for row in csv.DictReader(fh)}
    assert rows["9"]["verdict"] == "clean"  # the final verdict covers every sample
    assert [rows[str(i)]["selection"] for i in range(10)] == [
        "clean", "clean", "discarded", "clean", "relabelled", "relabelled", "relabelled", "discarded", "clean",
        "unseen"]
    assert rows["9"]["score"] == "" and rows["0"]["score"] == "0.1000"
    assert [rows[str(i)]["suggested_label"] for i in (4, 5, 6, 9)] == ["b", "c", "b", ""]
    assert rows["7"]["true_label"] == "open:3" and rows["3"]["given_label"] == "b"


def test_the_running_record_is_each_samples_mean_score_quantile():
    ledger = SelectionLog(4, "cpu")
    for scores in ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]):  # quantiles 0, 1/3, 2/3, 1 and reversed
        ledger.new_epoch()
        ledger.record(torch.arange(4), CLEAN, torch.tensor(scores))
        ledger.end_epoch()
    assert torch.allclose(ledger.rank_mean, torch.full((4,), 0.5))
    ledger.new_epoch()
    ledger.record(torch.tensor([0, 1]), CLEAN, torch.tensor([0.9, 0.0]))  # samples 2, 3 unseen this epoch
    ledger.end_epoch()
    assert torch.allclose(ledger.rank_mean, torch.tensor([(0.5 * 2 + 1) / 3, (0.5 * 2 + 0) / 3, 0.5, 0.5]))
    assert ledger.epochs_ranked.tolist() == [3, 3, 2, 2]


def test_a_checkpoint_from_before_the_running_record_still_loads():
    old = SelectionLog(3, "cpu")
    old.record(torch.arange(3), CLEAN, torch.tensor([0.1, 0.2, 0.3]))
    state = {k: v for k, v in old.state_dict().items() if k not in ("rank_mean", "epochs_ranked")}
    new = SelectionLog(3, "cpu")
    new.load_state_dict(state)
    assert new.score.tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert new.epochs_ranked.tolist() == [0, 0, 0]  # no history: the final verdicts use the network alone
