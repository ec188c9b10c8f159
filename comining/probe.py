"""The linear probe of pretrained features: out-of-sample class probabilities for every training
sample (``--backbone frozen``, and fine-tuning from pretrained ``--weights``).

A pretrained backbone never saw these labels, so a linear model cross-fitted on its features predicts
each sample from a model that did not train on it. The networks that the method trains see every
label, and their losses count their own errors on hard clean images as wrong labels, or have
fitted the wrong labels before they are read (docs/BACKBONE.md). Where the noise rate is estimated
(``--forget-rate auto``), the confident joint counts the wrong labels from the probe's probabilities
before the first epoch (``ForgetRate.read_probe``); on frozen features the final verdicts also
average the probe's margin into the run's own label quality (``verdicts.with_probe``).
"""

from __future__ import annotations

import warnings

import numpy as np

FOLDS = 5  # as cleanlab's tutorials cross-fit
MAX_ITER = 1000  # of L-BFGS: scikit-learn's 100 stop short on unscaled backbone features
# On these products OpenBLAS's threads cost more than they share: on a 2-core CPU the stand-in's probe
# took 57 s with two and 7 s with one, and web-bird's size 211 s with two and 200 s with one
# (docs/PERFORMANCE.md, section f).
BLAS_THREADS = 1


def result_key(features, labels, num_classes: int, seed: int, readable=None) -> str:
    """A hash of everything ``out_of_fold_probabilities`` reads (its arguments, as it converts them, and
    its own settings and the versions of scikit-learn, SciPy and NumPy): two calls with the same key
    return the same array, so a stored result can stand in for a new fit (the feature cache keeps them,
    ``FeatureCache.remembered``)."""
    import hashlib

    import scipy
    import sklearn

    digest = hashlib.blake2b(digest_size=20)
    x = np.ascontiguousarray(features, dtype=np.float32)
    keep = np.ones(len(x), dtype=bool) if readable is None else np.asarray(readable, dtype=bool)
    for part in (x.shape, x, np.ascontiguousarray(labels, dtype=np.int64), keep):
        digest.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    digest.update(f"{num_classes},{seed},{FOLDS},{MAX_ITER},{sklearn.__version__},{scipy.__version__},"
                  f"{np.__version__}".encode())
    return digest.hexdigest()


def out_of_fold_probabilities(features, labels, num_classes: int, seed: int, readable=None) -> np.ndarray:
    """[N×C] class probabilities of each sample from scikit-learn's ``LogisticRegression`` (its
    defaults: L2, C = 1) fitted on the other folds of a stratified split shuffled by ``seed``:
    ``FOLDS`` folds, or as many as the largest class has samples where that is fewer (at least 2).

    ``features``: [N×D] (the un-augmented view); ``labels``: [N] given labels in [0, C);
    ``readable``: [N] bool, False for samples without features (files that broke), which take no
    part and get NaN rows; all readable by default. Rows holding a non-finite value take no part
    either. A class that a training fold lacks gets probability 0 from that fold's model, so the
    members of a class smaller than the number of folds look mislabelled to the probe. With fewer
    than two readable samples per fold, or one class only, every row is NaN.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float32)  # as the cache holds them, at most
    y = np.asarray(labels)
    keep = np.ones(len(y), dtype=bool) if readable is None else np.asarray(readable, dtype=bool).copy()
    keep &= np.isfinite(x).all(axis=1)
    probs = np.full((len(y), num_classes), np.nan)
    rows = np.flatnonzero(keep)
    counts = np.bincount(y[rows], minlength=num_classes)
    if (counts > 0).sum() < 2 or len(rows) < 2 * FOLDS:
        return probs
    folds = StratifiedKFold(min(FOLDS, max(2, counts[counts > 0].max())), shuffle=True, random_state=seed)
    # A class with fewer members than folds is expected in small sets; a fold that stops short of
    # full convergence still ranks and counts as well (its probabilities move in the third digit).
    with warnings.catch_warnings(), threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        for fit, held in folds.split(np.zeros((len(rows), 1)), y[rows]):  # the split reads the labels only
            fit, held = rows[fit], rows[held]
            present = np.unique(y[fit])
            probs[held] = 0.0
            if len(present) == 1:
                probs[held, present[0]] = 1.0
                continue
            model = LogisticRegression(max_iter=MAX_ITER).fit(x[fit], y[fit])
            probs[np.ix_(held, model.classes_)] = model.predict_proba(x[held])
    return probs
