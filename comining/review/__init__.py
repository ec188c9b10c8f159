"""``comining review``: a page to look at a run's verdicts, decide per image, and save a label file."""

from comining.review.build import build_review

__all__ = ["build_review"]
