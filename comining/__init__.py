"""comining: Co-mining and its baselines for training image classifiers on noisy labels.

Public API: ``comining.noise`` (transition_matrix, corrupt, forget_rate), ``comining.mining``
(MemoryBank, semi_hard_triplet, reciprocal_relabel), ``comining.engine.train(Config, out)`` and
``comining.config.resolve``; the command line is ``comining`` (see ``comining --help``).
"""

__version__ = "0.1.0"
