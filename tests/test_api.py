"""comining.find_label_issues / label_quality_scores / load_verdicts against a run's own files."""

import csv

import numpy as np
import pytest
import torch

import comining
from comining.config import resolve
from comining.engine import train
from comining.errors import UserError


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """Co-mining on 300 digits, 4 epochs (1 of warm-up): a few seconds, every verdict kind possible."""
    out = tmp_path_factory.mktemp("api") / "run"
    torch.set_num_threads(1)
    train(resolve({"train_subset": 300, "epochs": 4, "warmup_epochs": 1, "num_gradual": 1, "quiet": True}), out=out)
    with open(out / "verdicts.csv", newline="") as handle:
        return out, list(csv.DictReader(handle))


def test_find_label_issues_is_the_rows_not_judged_clean(short_run):
    out, rows = short_run
    mask = comining.find_label_issues(out)
    assert mask.dtype == bool and mask.shape == (300,)
    assert mask.tolist() == [r["verdict"] != "clean" for r in rows]
    assert 0 < mask.sum() < 300


def test_ranked_issues_run_from_lowest_label_quality(short_run):
    out, rows = short_run
    ranked = comining.find_label_issues(out, ranked_by="label_quality")
    quality = [float(rows[i]["label_quality"]) for i in ranked]
    assert sorted(ranked.tolist()) == [i for i, r in enumerate(rows) if r["verdict"] != "clean"]
    assert quality == sorted(quality)


def test_a_share_flags_that_many_samples_of_lowest_label_quality(short_run):
    out, rows = short_run
    quality = np.array([float(r["label_quality"]) for r in rows])
    mask = comining.find_label_issues(out, share=0.1)
    cut = np.sort(quality)[29]  # the 30th lowest of 300: 10 %, whatever the run's own count
    assert mask.tolist() == (quality <= cut).tolist() and mask.sum() >= 30  # ties at the cut all taken
    ranked = comining.find_label_issues(out, ranked_by="label_quality", share=0.1)
    assert sorted(ranked.tolist()) == np.flatnonzero(mask).tolist() and list(quality[ranked]) == sorted(quality[mask])
    assert comining.find_label_issues(out, share=0).sum() == 0
    with pytest.raises(UserError, match="share=1.5"):
        comining.find_label_issues(out, share=1.5)


def test_label_quality_scores_are_the_csv_column(short_run):
    out, rows = short_run
    scores = comining.label_quality_scores(out)
    assert np.allclose(scores, [float(r["label_quality"]) for r in rows])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert comining.load_verdicts(out) == rows


def test_pred_probs_has_one_row_per_sample_summing_to_one(short_run):
    out, rows = short_run
    probs = comining.load_pred_probs(out)
    assert probs.shape == (300, 10)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    # A relabelled sample's suggestion is the class its probabilities favour most after the given one.
    classes = [str(c) for c in range(10)]
    for i, row in enumerate(rows):
        if row["verdict"] == "relabelled":
            others = probs[i].copy()
            others[classes.index(row["given_label"])] = -1
            assert classes[int(others.argmax())] == row["suggested_label"]


def test_a_folder_without_a_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no verdicts.csv"):
        comining.find_label_issues(tmp_path)
    with pytest.raises(UserError, match="ranked_by"):
        comining.find_label_issues(tmp_path, ranked_by="score")
