"""The share of wrong labels, estimated from per-sample training losses (``--forget-rate auto``).

Networks fit clean labels before wrong ones, so early in training the losses of a noisy data set
form two populations: low (labels the network agrees with) and high (labels it does not). A
two-component Gaussian mixture, as DivideMix uses to split clean from noisy samples, gives the
weight of the high-loss component: the estimated noise rate. The mixture is fitted to each sample's
probability of its given label, exp(−loss), rather than to the loss: bounded in [0, 1], where the
clean population's long tail of hard images is folded in (docs/METHOD.md has the comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.mixture import GaussianMixture

# Ashman's D between the two components below which they are not two populations but one.
MIN_SEPARATION = 2.0
N_INIT = 3


@dataclass
class NoiseEstimate:
    rate: float  # estimated share of wrong labels
    separated: bool  # whether the losses form two distinct populations
    separation: float  # Ashman's D of the two components: |μ1 − μ2|·√2 / √(σ1² + σ2²)
    low_mean: float  # mean loss of the low-loss (clean) component
    high_mean: float  # mean loss of the high-loss (noisy) component

    def describe(self) -> str:
        if self.separated:
            return f"estimated noise rate {self.rate:.3f} (loss populations separated, D = {self.separation:.1f})"
        return (f"the losses do not separate into clean and noisy populations (D = {self.separation:.1f} < "
                f"{MIN_SEPARATION:g}): estimated noise rate {self.rate:.3f} is unreliable; "
                "pass --forget-rate with your own estimate")


def estimate_noise_rate(losses, seed: int = 0) -> NoiseEstimate:
    """Estimate the share of wrong labels from one cross-entropy loss (of the given label) per sample.

    ``losses``: array-like of per-sample losses in nats (NaN entries, samples not evaluated, are
    ignored); at least 10 finite values. Returns a NoiseEstimate whose ``rate`` is the posterior share
    of the component with the lower probability of the given label (the likelihood-best of three
    k-means starts, seeded by ``seed``). ``separated`` is False when the two components overlap too
    much to be two populations (Ashman's D below 2): the rate is then unreliable.
    """
    values = np.asarray(losses, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < 10:
        raise ValueError(f"need at least 10 finite losses to estimate a noise rate, got {values.size}")
    given = np.exp(-np.clip(values, 0, None))  # probability of the given label
    span = np.ptp(given)
    if span <= 1e-9:
        return NoiseEstimate(0.0, False, 0.0, float(values[0]), float(values[0]))
    scaled = ((given - given.min()) / span)[:, None]  # reg_covar is then relative to the spread
    mixture = GaussianMixture(2, max_iter=300, tol=1e-5, reg_covar=1e-4, n_init=N_INIT, random_state=seed).fit(scaled)
    means = mixture.means_.ravel() * span + given.min()
    noisy = int(np.argmin(means))
    rate = float(mixture.predict_proba(scaled)[:, noisy].mean())
    separation = float(np.sqrt(2) * abs(means[1] - means[0]) / (span * np.sqrt(mixture.covariances_.ravel().sum())))
    as_loss = -np.log(np.clip(means, 1e-12, 1))
    return NoiseEstimate(rate, separation >= MIN_SEPARATION, separation, float(as_loss[1 - noisy]),
                         float(as_loss[noisy]))
