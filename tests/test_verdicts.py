"""The final-verdict rule on hand-built evidence whose right answers are worked out by hand, and the
verdict counts of docs/RESULTS.md on test_selection.py's hand-built ledger."""

import numpy as np

from comining.evidence import Evidence
from comining.selection import CLEAN, DISCARDED, RELABELLED
from comining.verdicts import decide, lowest_share, verdict_summary
from test_selection import GIVEN, TRUE, TinyData, hand_built_final


def evidence(probs, labels, history=None, votes=None, prior_rate=0.25, history_weight=0.25):
    probs = np.asarray(probs, dtype=np.float32)
    probs = probs[None] if probs.ndim == 2 else probs
    n = probs.shape[1]
    history = np.full(n, np.nan) if history is None else np.asarray(history, dtype=float)
    return Evidence(probs=probs, labels=np.asarray(labels), history=history,
                    votes=None if votes is None else np.asarray(votes, dtype=np.float32),
                    prior_rate=prior_rate, history_weight=history_weight)


# Four samples of 3 classes, all labelled 0: three the network agrees with, one it puts in class 2.
AGREE = [0.9, 0.05, 0.05]
OTHER = [0.02, 0.03, 0.95]
FLAT = [0.34, 0.33, 0.33]


def test_a_sample_confidently_in_another_class_is_relabelled_to_it():
    final = decide(evidence([AGREE, AGREE, OTHER, AGREE], [0, 0, 0, 0]))
    assert final.verdict.tolist() == [CLEAN, CLEAN, RELABELLED, CLEAN]
    assert final.suggested.tolist() == [-1, -1, 2, -1]
    assert final.label_quality[2] < final.label_quality[0]


def test_a_sample_no_class_fits_is_discarded():
    final = decide(evidence([AGREE, AGREE, FLAT, AGREE], [0, 0, 0, 0]))
    assert final.verdict.tolist() == [CLEAN, CLEAN, DISCARDED, CLEAN]
    assert final.suggested.tolist() == [-1, -1, -1, -1]
    assert final.outlier_score[2] > final.outlier_score[0]  # 0.66 against 0.1


def test_neighbours_that_disagree_with_the_network_turn_a_relabelling_into_a_discard():
    votes = [[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]]  # the neighbours of sample 2 say class 1
    final = decide(evidence([AGREE, AGREE, OTHER, AGREE], [0, 0, 0, 0], votes=votes))
    assert final.verdict[2] == DISCARDED


def test_without_banks_the_network_alone_decides():
    empty = decide(evidence([AGREE, AGREE, OTHER, AGREE], [0, 0, 0, 0], votes=None))
    assert empty.verdict[2] == RELABELLED


def test_history_breaks_a_tie_the_final_network_leaves():
    # Both samples look alike to the final network; the first was trusted all along, the second
    # was among the least trusted in every epoch, so it is the one flagged (prior: 1 of 4).
    probs = [AGREE, [0.6, 0.2, 0.2], [0.6, 0.2, 0.2], AGREE]
    final = decide(evidence(probs, [0, 0, 0, 0], history=[0.1, 0.1, 0.95, 0.1]))
    assert final.label_quality[2] < final.label_quality[1]
    assert final.verdict.tolist()[:3] == [CLEAN, CLEAN, DISCARDED]


def test_label_quality_by_hand():
    # Sample 0 has no history: its margin, (1 + 0.9 - 0.05) / 2 = 0.925. Sample 1: margin
    # (1 + 0.6 - 0.2) / 2 = 0.7 and trust 1 - 0.95 = 0.05; at weight 0.25, 0.25 * 0.05 + 0.75 * 0.7 = 0.5375.
    final = decide(evidence([AGREE, [0.6, 0.2, 0.2]], [0, 0], history=[np.nan, 0.95]))
    assert np.allclose(final.label_quality, [0.925, 0.5375])
    # Standard's weight, 1: the history alone, 1 - 0.95.
    final = decide(evidence([AGREE, [0.6, 0.2, 0.2]], [0, 0], history=[np.nan, 0.95], history_weight=1.0))
    assert np.allclose(final.label_quality, [0.925, 0.05])


def test_the_ranking_does_not_read_the_prior_only_the_count_does():
    # Issue 27: an estimated rate may be wrong; it sets how many are flagged, not their order.
    probs = [AGREE, [0.6, 0.2, 0.2], OTHER, [0.5, 0.3, 0.2]]
    history = [0.1, 0.95, 0.5, 0.3]
    low, high = (decide(evidence(probs, [0, 0, 0, 0], history=history, prior_rate=r)) for r in (0.25, 0.75))
    assert np.array_equal(low.label_quality, high.label_quality)
    assert (low.verdict != CLEAN).sum() == 1 and (high.verdict != CLEAN).sum() == 3


def test_each_method_declares_its_history_weight():
    # Standard fits every label (history alone); JoCoR's margins lose more against its history than
    # the others' (0.4 against 0.25); docs/notes/2026-12-07-history-weight-per-method.md.
    from comining.methods import METHODS
    weights = {name: cls.history_weight for name, cls in METHODS.items()}
    assert weights.pop("standard") == 1.0 and weights.pop("jocor") == 0.4
    assert set(weights.values()) == {0.25}


def test_a_frozen_runs_probe_is_averaged_into_the_quality_where_it_has_a_row():
    # With the history alone (weight 1), sample 1's quality is its history, 1 - 0.5 = 0.5, and
    # samples 0 and 2 (no history) keep their margin, (1 + 0.9 - 0.05) / 2 = 0.925. Alone, that flags
    # sample 1. The probe, which never trained on sample 0, puts it wholly in class 1: margin
    # (1 + 0 - 1) / 2 = 0, mean 0.4625; sample 1 sits in its class for the probe, (1 + 0.9 - 0.1) / 2
    # = 0.9, mean 0.7; sample 2 has no probe row (no features) and keeps 0.925. Now sample 0 is the
    # one flagged.
    ev = evidence([AGREE, [0.6, 0.2, 0.2], AGREE], [0, 0, 0], history=[np.nan, 0.5, np.nan], history_weight=1.0)
    assert decide(ev).verdict.tolist() == [CLEAN, DISCARDED, CLEAN]
    ev.probe = np.array([[0.0, 1.0, 0.0], [0.9, 0.1, 0.0], [np.nan] * 3])
    final = decide(ev)
    assert np.allclose(final.label_quality, [0.4625, 0.7, 0.925])
    assert final.verdict.tolist() == [DISCARDED, CLEAN, CLEAN]


def test_ties_at_the_cut_get_the_same_verdict():
    quality = np.array([0.1, 0.5, 0.5, 0.9])
    assert lowest_share(quality, 0.5).tolist() == [True, True, True, False]  # 2 asked, the tie makes 3
    assert lowest_share(quality, 0.0).tolist() == [False] * 4


def test_scores_are_in_range_and_pred_probs_rows_sum_to_one():
    views = np.stack([np.array([AGREE, OTHER, FLAT]), np.array([OTHER, OTHER, FLAT])])
    final = decide(evidence(views, [0, 1, 2], history=[0.2, np.nan, 0.7]))
    assert np.allclose(final.pred_probs.sum(1), 1, atol=1e-6)
    assert np.allclose(final.pred_probs[0], (np.array(AGREE) + np.array(OTHER)) / 2)  # the views' mean
    for scores in (final.label_quality, final.outlier_score):
        assert ((scores >= 0) & (scores <= 1)).all()


def test_verdict_summary_by_hand():
    # Wrong labels: 3 and 5 (flipped), 7 and 8 (open-set): 4. Flagged (relabelled or discarded):
    # {2,4,5,6,7}; of them wrong {5,7} (caught 2) and right {2,4,6} (3). Relabelled to the truth: {4,5}.
    summary = verdict_summary(hand_built_final(), TinyData(GIVEN, TRUE))
    assert summary == {"n_clean": 5, "n_relabelled": 3, "n_discarded": 2, "n_wrong_labels": 4,
                       "wrong_caught": 2, "right_flagged": 3, "relabelled_correctly": 2}
    # Without the truth (real noise) only the counts remain.
    assert verdict_summary(hand_built_final(), TinyData(GIVEN, None)) == {
        "n_clean": 5, "n_relabelled": 3, "n_discarded": 2}
