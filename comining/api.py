"""Reading a finished run's verdicts from Python, in the shape of cleanlab's functions."""

from __future__ import annotations

import numpy as np

from comining.errors import UserError
from comining.rundir import RunDir

REQUIRED = ("sample", "given_label", "verdict", "suggested_label", "label_quality", "outlier_score")


def load_verdicts(run_dir) -> list[dict]:
    """The rows of ``run_dir``/verdicts.csv as dicts keyed by column name, in training-set order."""
    return RunDir(run_dir).read_verdicts(REQUIRED)


def label_quality_scores(run_dir) -> np.ndarray:
    """Per training sample (rows of verdicts.csv), the label quality in [0, 1]; higher = more likely right."""
    return qualities(load_verdicts(run_dir))


def qualities(rows: list[dict]) -> np.ndarray:
    """The ``label_quality`` column of verdicts.csv ``rows`` as floats."""
    return np.array([float(row["label_quality"]) for row in rows])


def find_label_issues(run_dir, ranked_by: str | None = None, share: float | None = None) -> np.ndarray:
    """The samples whose final verdict is relabelled or discarded, or, with ``share``, the
    round(share·N) samples of lowest label quality (for a user who knows better than the run's
    estimate how many labels are wrong; ties at the cut are all taken).

    ranked_by=None: a boolean mask over the rows of verdicts.csv. ranked_by="label_quality": the
    row indices of those samples from most to least suspect (lowest label quality first)."""
    if ranked_by not in (None, "label_quality"):
        raise UserError(f"ranked_by={ranked_by!r} is not known: pass None or 'label_quality'")
    rows = load_verdicts(run_dir)
    quality = qualities(rows)
    if share is None:
        issues = np.array([row["verdict"] != "clean" for row in rows], dtype=bool)
    else:
        issues = lowest_quality(quality, share)
    if ranked_by is None:
        return issues
    flagged = np.flatnonzero(issues)
    return flagged[np.argsort(quality[flagged], kind="stable")]


def lowest_quality(quality: np.ndarray, share: float, name: str = "share=") -> np.ndarray:
    """Boolean mask over the label ``quality`` of verdicts.csv's rows (``qualities``): the
    round(share·N) lowest, ties at the cut all taken (``verdicts.lowest_share``, the rule the run flags
    its own by, here on the qualities as verdicts.csv rounds them). ``name`` is how the user passed
    ``share``, for the error where it is not a fraction."""
    from comining.verdicts import lowest_share

    if not 0 <= share <= 1:
        raise UserError(f"{name}{share!r} is not a fraction of the samples: pass a number in [0, 1]")
    return lowest_share(quality, share)


def load_pred_probs(run_dir) -> np.ndarray:
    """pred_probs.npy of a run: [N×C] class probabilities of the final model, one row per training sample.
    In-sample: the model was trained on these samples (with their given labels where it trusted
    them), so the probabilities are more confident in the given labels than held-out ones would be."""
    return RunDir(run_dir).read_pred_probs()
