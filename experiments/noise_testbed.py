"""A testbed of realistic label noise for `--forget-rate auto` (issue 27), and the evidence of each run.

Every row is a label file (one integer per training sample of the data set, in its order), so each
run learns its noise rate as a user's run would (`--labels FILE`, the rate unknown to it):

  human-aggre, human-worse   the CIFAR-N-style human-like file (experiments/fashion_mnist_human_noise.py)
  annot20, annot35           an annotator model: a weaker classifier (logistic regression on 50 PCA
                             components of the pixels), trained on a disjoint slice of the data set,
                             relabels every image by sampling its own tempered predictive distribution,
                             the temperature set so that 20 % / 35 % of the labels are wrong: its
                             mistakes fall on the images it finds ambiguous, towards the classes they
                             resemble
  <row>-open                 any of the above with the last 20 % of the classes open-set (--open-ratio 0.2)
  sym50, asym40, sym20-open  the synthetic protocol as before, written out as files too

    python experiments/noise_testbed.py labels --out runs/testbed              # the label files (deterministic)
    python experiments/noise_testbed.py evidence --out runs/testbed --seeds 1,2,3 [--rows ...] [--jobs 2]
    python experiments/noise_testbed.py evidence --out runs/testbed-digits --dataset digits --seeds 1,2,3

`evidence` trains Co-mining with `--forget-rate auto` (the rule shipped at the time) for two warm-ups
and saves, after the warm-up (where `auto` first estimates) and after as many epochs of selection,
every training sample's class probabilities and penultimate features from the un-augmented pass, the
weak and strong views' probabilities, and the given and true labels (``<row>-seed<k>.npz``). Candidate
estimators are then computed from these files without training again
(experiments/noise_estimates.py). Seeds vary the training; the labels stay fixed per row.
The annotator's files depend on the BLAS thread count (its PCA and logistic regression round
differently), so the annotator runs on two BLAS threads whatever the machine: the count the
testbed's files were written with (Fashion-MNIST annot20 realised 0.1940625).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FM_SUBSET, FM_TEST = 3200, 2000
ANNOTATOR_SLICE = slice(30000, 40000)  # Fashion-MNIST training images no run here trains on
OPEN = 0.2
SYNTHETIC = {"sym50": ("symmetric", 0.5), "asym40": ("asymmetric", 0.4), "sym20": ("symmetric", 0.2)}


ANNOTATOR_THREADS = 2


def annotator_labels(images: np.ndarray, labels: np.ndarray, fit: np.ndarray, target: float, seed: int) -> np.ndarray:
    """Labels drawn from a weaker classifier's tempered predictive distribution, ``target`` of them wrong
    (in expectation over all images). ``fit``: the positions the annotator learns from (disjoint from the
    ones a run trains on); every image, those included, gets the annotator's label."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    from threadpoolctl import threadpool_limits

    x = images.reshape(len(images), -1).astype(np.float32) / 255
    with threadpool_limits(ANNOTATOR_THREADS):  # PCA rounds differently with other thread counts
        pca = PCA(50, random_state=0).fit(x[fit])
        z = pca.transform(x)
        model = LogisticRegression(max_iter=300, C=0.05).fit(z[fit], labels[fit])  # a deliberately weak annotator
        logp = model.predict_log_proba(z)
    return tempered_draw(logp, labels, target, seed)


def tempered_draw(logp: np.ndarray, labels: np.ndarray, target: float, seed: int) -> np.ndarray:
    """One label per row drawn from the annotator's log-probabilities ``logp`` [N×C] divided by the
    temperature that makes ``target`` of them wrong against ``labels`` in expectation."""
    def tempered(t: float) -> np.ndarray:
        a = logp / t
        a = np.exp(a - a.max(1, keepdims=True))
        return a / a.sum(1, keepdims=True)

    lo, hi = 0.05, 50.0
    for _ in range(60):  # the expected wrong share rises with the temperature
        t = np.sqrt(lo * hi)
        wrong = 1 - tempered(t)[np.arange(len(labels)), labels].mean()
        lo, hi = (t, hi) if wrong < target else (lo, t)
    p = tempered(np.sqrt(lo * hi))
    rng = np.random.RandomState(seed)
    u = rng.random_sample(len(labels))[:, None]
    return np.minimum((p.cumsum(1) < u).sum(1), p.shape[1] - 1).astype(np.int64)


def synthetic_labels(labels: np.ndarray, kind: str, rate: float, open_ratio: float, classes: int) -> np.ndarray:
    from comining import noise
    return noise.corrupt(labels, noise.transition_matrix(kind, rate, open_ratio, classes), 0)


def write_labels(out: Path, dataset: str) -> dict:
    """Every row's label file in ``out``; returns {row: {"file", "flags", "realised"}} (realised on the
    subset a run trains on, open-set images counted as wrong)."""
    from comining.data import load_arrays
    arrays = load_arrays(dataset)
    images = arrays.train_images.numpy() if hasattr(arrays.train_images, "numpy") else np.asarray(arrays.train_images)
    clean = np.asarray(arrays.train_labels, dtype=np.int64)
    classes = len(arrays.classes)
    n = FM_SUBSET if dataset == "fashion-mnist" else len(clean)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    if dataset == "fashion-mnist":
        fit = np.arange(len(clean))[ANNOTATOR_SLICE]
        human = out / "fm_human.pt"
        if not human.exists():
            subprocess.run([sys.executable, str(ROOT / "experiments" / "fashion_mnist_human_noise.py"), "--out",
                            str(human)], check=True)
        from comining import labelfile
        for key, name in (("aggre_label", "human-aggre"), ("worse_label", "human-worse")):
            files[name] = labelfile.read_cifar_n(human, key)
    else:  # digits: the annotator learns from the test split, the only images no run trains on
        test_x = arrays.test_images.numpy()
        images = np.concatenate([images, test_x])
        clean_all = np.concatenate([clean, np.asarray(arrays.test_labels, dtype=np.int64)])
        fit = np.arange(len(clean), len(clean_all))
    for target in (0.20, 0.35):
        name = f"annot{round(target * 100)}"
        if dataset == "fashion-mnist":
            files[name] = annotator_labels(images, clean, fit, target, seed=1)
        else:
            files[name] = annotator_labels(images, clean_all, fit, target, seed=1)[: len(clean)]
    for name, (kind, rate) in SYNTHETIC.items():
        files[name] = synthetic_labels(clean, kind, rate, 0.0, classes)
    rows = {}
    for name, labels in files.items():
        path = out / f"{name}.npy"
        np.save(path, labels.astype(np.int64))
        realised = float((labels[:n] != clean[:n]).mean())
        rows[name] = {"file": str(path), "flags": [], "realised": realised}
        if name not in ("sym50", "asym40"):  # with open-set images: the last classes become open, and
            # the protocol redraws their labels over the closed classes (realised: measured by the run)
            open_name = "sym20-open" if name == "sym20" else f"{name}-open"
            rows[open_name] = {"file": str(path), "flags": ["--open-ratio", str(OPEN)], "realised": None}
    del rows["sym20"]  # only its open-set version is a row
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    return rows


def evidence_pass(trainer):
    """(probs [N×C] un-augmented, feats [N×D] un-augmented, weak probs, strong probs) in evaluation mode."""
    from comining import hardware
    method, data, views = trainer.method, trainer.data, trainer.views
    nets = [getattr(net, "module", net) for net in method.nets]
    n, c = len(data), method.num_classes
    probs = {k: torch.full((n, c), float("nan")) for k in ("test", "weak", "strong")}
    feats = None
    method.eval()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        for index, images in data.ordered_batches(512):
            for kind in probs:
                x = views(images, kind)
                with hardware.autocast(trainer.device, trainer.precision):
                    logits, f = nets[0](x)
                probs[kind][index] = logits.float().softmax(1).cpu()
                if kind == "test":
                    if feats is None:
                        feats = torch.full((n, f.shape[1]), float("nan"))
                    feats[index] = f.float().cpu()
    method.train()
    return probs["test"].numpy(), feats.numpy(), probs["weak"].numpy(), probs["strong"].numpy()


def test_probabilities(trainer) -> np.ndarray:
    """[M×C] class probabilities of the evaluation split (its labels are right) from the un-augmented view."""
    from comining import hardware
    net = getattr(trainer.method.nets[0], "module", trainer.method.nets[0])
    trainer.method.eval()
    out = []
    with torch.no_grad():
        for images, _ in trainer.data.test_batches(512):
            with hardware.autocast(trainer.device, trainer.precision):
                out.append(net(trainer.views(images, "test"))[0].float().softmax(1).cpu())
    trainer.method.train()
    return torch.cat(out).numpy()


def collect(row: str, spec: dict, seed: int, out: Path, dataset: str) -> str:
    """Train Co-mining with auto on ``row`` for two warm-ups, saving the evidence after each."""
    from comining import engine
    from comining.config import resolve
    from comining.cli import build_parser, typed_settings

    dest = out / f"{row}-seed{seed}.npz"
    if dest.exists():
        return f"{dest} exists"
    argv = ["train", "--dataset", dataset, "--labels", spec["file"], *spec["flags"], "--seed", str(seed), "--quiet"]
    if dataset == "fashion-mnist":
        argv += ["--train-subset", str(FM_SUBSET), "--test-subset", str(FM_TEST)]
    cfg = resolve(typed_settings(build_parser().parse_args(argv)))
    trainer = engine.Trainer(cfg)
    saved = {}
    stops = {trainer.method.first_estimate_after: "warm", trainer.method.second_estimate_after: "later"}
    for epoch in range(max(stops)):
        record = {"epoch": epoch + 1, **trainer.train_epoch(epoch)}
        if epoch + 1 in stops:
            tag = stops[epoch + 1]
            probs, feats, weak, strong = evidence_pass(trainer)
            saved.update({f"probs_{tag}": probs, f"feats_{tag}": feats, f"weak_{tag}": weak,
                          f"strong_{tag}": strong, f"test_{tag}": test_probabilities(trainer)})
        if trainer.forget.estimate_due(epoch + 1):
            trainer.estimate_forget_rate(record)
            saved[f"shipped_after{epoch + 1}"] = np.array(trainer.forget.target)
        trainer.history.append(record)
    data = trainer.data
    given, true = data.labels.cpu().numpy(), data.true_labels.cpu().numpy()
    realised = float(((given != true) | (true >= data.num_classes)).mean())
    test_true = torch.cat([labels for _, labels in data.test_batches(512)]).cpu().numpy()
    np.savez_compressed(dest, given=given, true=true, num_classes=data.num_classes, realised=realised,
                        test_true=test_true, epsilon=trainer.method.epsilon,
                        shipped=np.array(trainer.forget.target), history=json.dumps(trainer.history), **saved)
    return f"{dest}: realised {realised:.3f}, shipped estimate {trainer.forget.target:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("labels", "evidence"))
    parser.add_argument("--out", type=Path, default=Path("runs/testbed"))
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "digits"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--rows", help="comma-separated rows (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one thread each")
    parser.add_argument("--one", nargs=2, metavar=("ROW", "SEED"), help=argparse.SUPPRESS)  # a worker's run
    args = parser.parse_args()
    rows_file = args.out / "rows.json"
    if args.step == "labels" or not rows_file.exists():
        rows = write_labels(args.out, args.dataset)
        print(json.dumps({k: v.get("realised") for k, v in rows.items()}))
        if args.step == "labels":
            return
    rows = json.loads(rows_file.read_text())
    if args.one:
        torch.set_num_threads(1)
        print(collect(args.one[0], rows[args.one[0]], int(args.one[1]), args.out, args.dataset), flush=True)
        return
    chosen = args.rows.split(",") if args.rows else list(rows)
    cells = [(row, seed) for row in chosen for seed in args.seeds.split(",")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}

    def run(cell):
        row, seed = cell
        proc = subprocess.run([sys.executable, __file__, "evidence", "--out", str(args.out), "--dataset",
                               args.dataset, "--one", row, seed], env=env, capture_output=True, text=True)
        return proc.stdout.strip() or f"{row} seed {seed} FAILED: {proc.stderr.strip().splitlines()[-1:]}"

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(run, cells):
            print(line, flush=True)


if __name__ == "__main__":
    main()
