"""comining: Co-mining and its baselines for training image classifiers on noisy labels.

Public API: ``comining.noise`` (transition_matrix, corrupt, forget_rate), ``comining.mining``
(MemoryBank, semi_hard_triplet, reciprocal_relabel), ``comining.engine.train(Config, out)`` and
``comining.config.resolve``; a finished run's label issues with ``comining.find_label_issues``,
``comining.label_quality_scores``, ``comining.load_verdicts`` and ``comining.load_pred_probs``.
The command line is ``comining`` (see ``comining --help``).
"""

__version__ = "0.1.0"

from comining.api import find_label_issues, label_quality_scores, load_pred_probs, load_verdicts  # noqa: E402,F401
