"""comining.probe: out-of-fold probabilities of a linear probe on frozen features, and the noise rate a
frozen run counts with them before its first epoch.

By hand: a sample's own label cannot move its own row (features that let any model memorise every
label still leave a mislabelled sample's row on its true class); samples without features get NaN
rows and take no part; too few samples give no probe. In a run: --backbone frozen with auto counts
once, before epoch 1, records the count in the first epoch and never re-estimates.
"""

import json

import numpy as np
import pytest
import torch

from comining import config, verdicts
from comining.engine import Trainer
from comining.forget_rate import ForgetRate
from comining.methods import METHODS
from comining.noise_rate import rate_interval
from comining.probe import out_of_fold_probabilities, result_key
from comining.verdicts import with_probe
from conftest import one_torch_thread

# The fine-tuning test recomputes the run's features in one batch, unlike the run's batched, channels-last
# pass: the two round alike on one intra-op thread, not on two (the count moved in its third digit).
one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


def two_clusters(per_class: int = 20, memorise: bool = False):
    """Class 0 near (−3, 0), class 1 near (+3, 0); sample 0 (class 0) labelled 1. With ``memorise``,
    one extra dimension per sample, 1 on that sample alone: an in-sample fit explains every label by it."""
    rng = np.random.RandomState(0)
    truth = np.repeat([0, 1], per_class)
    x = np.c_[np.where(truth == 0, -3.0, 3.0) + rng.normal(0, 0.5, len(truth)), rng.normal(0, 0.5, len(truth))]
    if memorise:
        x = np.c_[x, 10 * np.eye(len(truth))]
    labels = truth.copy()
    labels[0] = 1
    return x, labels


def test_a_wrong_label_is_predicted_by_the_other_samples_not_by_itself():
    from sklearn.linear_model import LogisticRegression

    x, labels = two_clusters(memorise=True)
    in_sample = LogisticRegression(max_iter=1000).fit(x, labels).predict_proba(x)
    assert in_sample[0, 1] > 0.5  # fitted on its own label, the model has learnt it
    probs = out_of_fold_probabilities(x, labels, 2, seed=0)
    assert probs[0, 1] < 0.1  # held out, its cluster decides
    assert (probs[1:].argmax(1) == labels[1:]).all()
    np.testing.assert_allclose(probs.sum(1), 1.0)


def test_the_folds_are_seeded():
    x, labels = two_clusters()
    np.testing.assert_array_equal(out_of_fold_probabilities(x, labels, 2, seed=3),
                                  out_of_fold_probabilities(x, labels, 2, seed=3))
    assert not np.array_equal(out_of_fold_probabilities(x, labels, 2, seed=3),
                              out_of_fold_probabilities(x, labels, 2, seed=4))


def test_rows_with_non_finite_features_take_no_part():
    x, labels = two_clusters()
    x[7, 1] = np.inf
    probs = out_of_fold_probabilities(x, labels, 2, seed=0)
    assert np.isnan(probs[7]).all() and np.isfinite(np.delete(probs, 7, 0)).all()


def test_without_a_readable_row_the_networks_estimate_the_rate():
    cfg = config.Config(method="coteaching", forget_rate="auto", backbone="frozen")
    rate = ForgetRate(cfg, METHODS["coteaching"](cfg, 2, lambda: torch.nn.Linear(2, 2), selections=None))
    x, labels = two_clusters(per_class=4)  # 8 samples: too few for 5 folds
    reading = rate.read_probe(out_of_fold_probabilities(x, labels, 2, seed=0), labels)
    assert reading is None
    assert "too few readable samples" in rate.adopt_probe(reading, {})
    assert rate.target is None and not rate.by_probe and rate.estimate_due(rate.method.first_estimate_after)


def test_samples_without_features_get_nan_rows_and_take_no_part():
    x, labels = two_clusters()
    readable = np.ones(len(labels), dtype=bool)
    readable[[5, 25]] = False
    broken = x.copy()
    broken[[5, 25]] = 1e6  # what a broken file's row might hold: it must not move the others
    probs = out_of_fold_probabilities(broken, labels, 3, seed=0, readable=readable)
    assert np.isnan(probs[[5, 25]]).all()
    alone = out_of_fold_probabilities(np.delete(x, [5, 25], 0), np.delete(labels, [5, 25]), 3, seed=0)
    np.testing.assert_array_equal(np.delete(probs, [5, 25], 0), alone)
    assert (alone[:, 2] == 0).all()  # a class no sample has: probability 0


def test_too_few_samples_or_one_class_give_no_probe():
    x, labels = two_clusters(per_class=4)
    assert np.isnan(out_of_fold_probabilities(x, labels, 2, seed=0)).all()  # 8 samples, 5 folds
    x, labels = two_clusters()
    assert np.isnan(out_of_fold_probabilities(x, np.zeros_like(labels), 2, seed=0)).all()


def test_the_probes_count_is_the_forget_rate_from_the_first_epoch_and_never_re_estimated():
    cfg = config.Config(method="coteaching", forget_rate="auto", backbone="frozen")
    rate = ForgetRate(cfg, METHODS["coteaching"](cfg, 2, lambda: torch.nn.Linear(2, 2), selections=None))
    assert rate.by_probe and not any(rate.estimate_due(e) for e in range(0, 40))
    x, labels = two_clusters()
    record: dict = {}
    line = rate.adopt_probe(rate.read_probe(out_of_fold_probabilities(x, labels, 2, seed=0), labels), record)
    # The confident joint: every sample's most likely class is its true one, so one of 40 labels is wrong.
    assert rate.target == pytest.approx(1 / 40) and record["estimated_noise_rate"] == rate.target
    # Its interval: the count and the probe's disagreement ± 0.06; the count is itself a confident
    # joint, so no third reading and no narrower margin below.
    assert record["noise_rate_interval"] == pytest.approx(list(rate_interval(rate.target, record["disagreement_share"])))
    assert record["noise_rate_readings"] == {"rate": rate.target, "disagreement": record["disagreement_share"]}
    assert record["noise_rate_interval"][0] == pytest.approx(max(0, min(rate.target, record["disagreement_share"]) - 0.06))
    assert "linear probe" in line
    assert not ForgetRate(config.Config(method="coteaching", forget_rate=0.2, backbone="frozen"), rate.method).by_probe
    assert not ForgetRate(config.Config(method="coteaching", forget_rate="auto"), rate.method).by_probe
    # Fine-tuning from pretrained weights counts with the probe too; from random weights it cannot.
    pretrained = config.Config(method="coteaching", forget_rate="auto", backbone="finetune", weights="backbone.pt")
    assert ForgetRate(pretrained, rate.method).by_probe
    assert not ForgetRate(config.Config(method="coteaching", forget_rate="auto", backbone="finetune",
                                        weights="none"), rate.method).by_probe


class Pixels(torch.nn.Module):
    """A feature extractor that returns the image's pixels: features that never saw a label."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_a_frozen_digits_run_counts_before_its_first_epoch_near_the_realised_rate(tmp_path, capsys, monkeypatch):
    """Digits' pixels as frozen features, 30 % symmetric noise: the count is made once, before epoch 1,
    stored in the first epoch's record and results.json, and lands near the realised rate (0.315;
    the probe reads 0.355, where the head's own warm-up losses read 0.71)."""
    extractor = tmp_path / "pixels.pt"
    torch.jit.save(torch.jit.script(Pixels()), str(extractor))
    cfg = config.resolve({"dataset": "digits", "backbone": "frozen", "backbone_file": str(extractor),
                          "noise_type": "symmetric", "closed_rate": 0.3, "forget_rate": "auto", "epochs": 2,
                          "warmup_epochs": 1, "cache_dir": str(tmp_path / "cache"), "seed": 1, "quiet": True})
    trainer = Trainer(cfg, tmp_path / "run")
    blended = []
    monkeypatch.setattr(verdicts, "with_probe", lambda *a: blended.append(a[1].shape) or with_probe(*a))
    results = trainer.fit()
    out = capsys.readouterr()
    assert "before epoch 1: estimated noise rate" in out.out + out.err
    assert blended == [(len(trainer.data), 10)]  # the verdicts read the probe's N×C probabilities
    assert results["noise_rate_estimated_by"] == "probe"
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "probe_noise_rate" in history[0] and all("estimated_noise_rate" not in r for r in history[1:])
    assert results["estimated_noise_rate"] == history[0]["probe_noise_rate"]
    realised = (trainer.data.labels != trainer.data.true_labels).float().mean().item()
    assert abs(results["estimated_noise_rate"] - realised) < 0.06


def test_a_frozen_run_stopped_after_its_first_epoch_resumes_to_the_same_verdicts(tmp_path):
    """The count is made once: a run stopped after epoch 1 and resumed keeps it (no second count in
    metrics.jsonl), refits the same probe for its verdicts, and ends exactly as an unbroken run."""
    from comining.guards import Interrupted

    extractor = tmp_path / "pixels.pt"
    torch.jit.save(torch.jit.script(Pixels()), str(extractor))
    settings = {"dataset": "digits", "backbone": "frozen", "backbone_file": str(extractor), "noise_type": "symmetric",
                "closed_rate": 0.3, "forget_rate": "auto", "epochs": 3, "warmup_epochs": 1, "train_subset": 500,
                "test_subset": 100, "cache_dir": str(tmp_path / "cache"), "seed": 2, "quiet": True}
    Trainer(config.resolve(settings), tmp_path / "whole").fit()
    stopped = Trainer(config.resolve(settings), tmp_path / "resumed")
    evaluate = stopped.evaluate

    def evaluate_then_stop():
        stopped.stop_signal = "SIGTERM"
        return evaluate()

    stopped.evaluate = evaluate_then_stop
    with pytest.raises(Interrupted):
        stopped.fit()
    Trainer.resume(tmp_path / "resumed").fit()
    history = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [("probe_noise_rate" in r) for r in history] == [True, False, False]
    for name in ("verdicts.csv", "pred_probs.npy"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_a_class_with_one_sample_does_not_inflate_the_count():
    """Its only sample is held out in one fold, whose model never saw the class: the sample gets
    probability 0 for its own class, the confident joint's threshold for that class is 0, and a
    threshold of 0 must not be reached by every sample. By hand: label 0's 19 samples and label 1's
    20 right ones sit on their diagonal, sample 0 (class 0, labelled 1) off it, and the lone sample
    reaches no class's threshold (uncounted, so its row keeps its one label): 1 − 40/41."""
    from comining.noise_rate import confident_joint_noise_rate

    x, labels = two_clusters()
    x, labels = np.r_[x, [[0.0, 8.0]]], np.r_[labels, 2]
    probs = out_of_fold_probabilities(x, labels, 3, seed=0)
    assert probs[-1, 2] == 0
    assert confident_joint_noise_rate(probs, labels) == pytest.approx(1 / 41)


def test_fine_tuning_from_pretrained_weights_counts_with_a_probe_of_the_initial_network(tmp_path, capsys, monkeypatch):
    """A digits network trained on clean labels is the pretrained start of a fine-tuning run with 30 %
    symmetric noise and auto. Its count is the confident joint on a probe of the features that
    network gives before fine-tuning (computed here without the engine), made once before epoch 1;
    the verdicts are the run's own (no blend); and the probe moves nothing else: the run ends byte for
    byte as the same run given that rate."""
    from comining.models import build_model
    from comining.models.weights import load_weights
    from comining.noise_rate import confident_joint_noise_rate

    common = {"dataset": "digits", "epochs": 2, "warmup_epochs": 1, "train_subset": 600, "test_subset": 100,
              "precision": "fp32", "quiet": True}
    config_of = lambda **extra: config.resolve({**common, **extra})  # noqa: E731
    Trainer(config_of(method="standard", closed_rate=0.0, seed=5), tmp_path / "pretrain").fit()
    weights = str(tmp_path / "pretrain" / "checkpoint.pt")
    noisy = {"noise_type": "symmetric", "closed_rate": 0.3, "weights": weights, "seed": 1}
    blended = []
    monkeypatch.setattr(verdicts, "with_probe", lambda *a: blended.append(1) or with_probe(*a))
    trainer = Trainer(config_of(forget_rate="auto", **noisy), tmp_path / "auto")
    results = trainer.fit()
    out = capsys.readouterr()
    assert "features of the pretrained network before fine-tuning" in out.out + out.err

    data = trainer.data
    net = build_model("small", data.channels, data.num_classes, data.crop_size)
    load_weights(net, weights, "small")
    with torch.no_grad():
        feats = net.eval()(trainer.views(data.images, "test"))[1].numpy()
    labels = data.labels.numpy()
    expected = confident_joint_noise_rate(out_of_fold_probabilities(feats, labels, 10, seed=1), labels)
    assert results["estimated_noise_rate"] == pytest.approx(expected, abs=1e-6)
    assert results["noise_rate_estimated_by"] == "probe" and blended == []
    history = [json.loads(line) for line in (tmp_path / "auto" / "metrics.jsonl").read_text().splitlines()]
    assert "probe_noise_rate" in history[0] and "estimated_noise_rate" not in history[1]

    Trainer(config_of(forget_rate=results["estimated_noise_rate"], **noisy), tmp_path / "given").fit()
    for name in ("verdicts.csv", "pred_probs.npy"):
        assert (tmp_path / "auto" / name).read_bytes() == (tmp_path / "given" / name).read_bytes(), name


def test_on_an_image_folder_the_probe_draws_nothing_from_the_runs_generator(tmp_path):
    """The probe's pass over an image folder goes through a data loader, which draws its seed from the
    generator it is given: the whole probe runs on a forked generator, so a fine-tuning run that
    counts with it ends byte for byte as the same run given its count."""
    from test_folder import build_folder, folder_cfg

    build_folder(tmp_path / "data", per_class=16, val=4)
    common = {"backbone": "finetune", "epochs": 2, "warmup_epochs": 1, "precision": "fp32", "quiet": True, "seed": 1}
    Trainer(folder_cfg(tmp_path / "data", method="standard", forget_rate=0.0, **common), tmp_path / "pretrain").fit()
    weights = str(tmp_path / "pretrain" / "checkpoint.pt")
    auto = Trainer(folder_cfg(tmp_path / "data", weights=weights, forget_rate="auto", **common), tmp_path / "auto").fit()
    assert auto["noise_rate_estimated_by"] == "probe"
    given = folder_cfg(tmp_path / "data", weights=weights, forget_rate=auto["estimated_noise_rate"], **common)
    Trainer(given, tmp_path / "given").fit()
    for name in ("verdicts.csv", "pred_probs.npy"):
        assert (tmp_path / "auto" / name).read_bytes() == (tmp_path / "given" / name).read_bytes(), name


def test_a_resumed_run_that_trained_without_a_probe_reading_keeps_the_networks_readings():
    """A pretrained fine-tuning run stored before the probe existed has trained, and estimated, from
    its losses: resumed, it keeps doing so (its second estimate still comes) rather than claim a probe
    it never fitted. One whose first epoch holds the probe's reading stays with the probe."""
    cfg = config.Config(method="comining", forget_rate="auto", backbone="finetune", weights="backbone.pt",
                        warmup_epochs=5)
    def net():
        layer = torch.nn.Linear(2, 2)
        layer.feature_dim = 2  # what Co-mining's memory banks size themselves by
        return layer

    method = METHODS["comining"](cfg, 2, net, selections=None)
    older = ForgetRate(cfg, method)
    assert older.by_probe
    older.restore([{"epoch": e} for e in range(1, 5)] + [{"epoch": 5, "estimated_noise_rate": 0.3}])
    assert not older.by_probe and older.target == 0.3 and older.estimate_due(10)
    newer = ForgetRate(cfg, method)
    newer.restore([{"epoch": 1, "estimated_noise_rate": 0.25, "probe_noise_rate": 0.25}, {"epoch": 2}])
    assert newer.by_probe and newer.target == 0.25 and not newer.estimate_due(10)


def test_features_of_a_set_whose_images_all_fail_give_no_probe():
    """No image decodes in the probe's pass: the features are NaN rows, so the probe has nothing to
    read and the networks' losses count instead (no scikit-learn error on zero columns)."""
    from comining.evidence import features

    class Broken:
        def __len__(self):
            return 12

        def ordered_batches(self, batch_size):
            return iter(())

    feats = features(torch.nn.Linear(2, 2), Broken(), None, "test", "fp32", 4)
    assert feats.shape == (12, 1) and torch.isnan(feats).all()
    probs = out_of_fold_probabilities(feats.numpy(), np.repeat([0, 1], 6), 2, seed=0)
    assert ForgetRate.read_probe(probs, np.repeat([0, 1], 6)) is None


def test_the_result_key_changes_with_everything_the_probe_reads():
    x, labels = two_clusters()
    key = result_key(x, labels, 2, seed=0)
    assert result_key(x.astype(np.float64), labels.astype(np.int32), 2, seed=0) == key  # as the probe converts them
    changed_x = x.copy()
    changed_x[0, 0] += 1
    changed_labels = labels.copy()
    changed_labels[0] = 1 - changed_labels[0]
    unreadable = np.ones(len(labels), dtype=bool)
    unreadable[3] = False
    others = [result_key(changed_x, labels, 2, 0), result_key(x, changed_labels, 2, 0), result_key(x, labels, 3, 0),
              result_key(x, labels, 2, 1), result_key(x, labels, 2, 0, unreadable), result_key(x[:, :1], labels, 2, 0)]
    assert len({key, *others}) == 7
