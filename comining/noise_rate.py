"""The share of wrong labels, estimated from per-sample training losses (``--forget-rate auto``).

Networks fit clean labels before wrong ones, so early in training the losses of a noisy data set
form two populations: low (labels the network agrees with) and high (labels it does not). A
two-component Gaussian mixture over the losses, as DivideMix uses to split clean from noisy
samples, gives the weight of the high component: the estimated noise rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.mixture import GaussianMixture

# Ashman's D between the two components below which they are not two populations but one.
MIN_SEPARATION = 2.0


@dataclass
class NoiseEstimate:
    rate: float  # estimated share of wrong labels
    separated: bool  # whether the losses form two distinct populations
    separation: float  # Ashman's D of the two components: |μ1 − μ2|·√2 / √(σ1² + σ2²)
    low_mean: float
    high_mean: float

    def describe(self) -> str:
        if self.separated:
            return f"estimated noise rate {self.rate:.3f} (loss populations separated, D = {self.separation:.1f})"
        return (f"the losses do not separate into clean and noisy populations (D = {self.separation:.1f} < "
                f"{MIN_SEPARATION:g}): estimated noise rate {self.rate:.3f} is unreliable; "
                "pass --forget-rate with your own estimate")


def estimate_noise_rate(losses, seed: int = 0) -> NoiseEstimate:
    """Estimate the share of wrong labels from one loss per training sample.

    ``losses``: array-like of per-sample losses (NaN entries, samples not seen, are ignored); at least
    10 finite values. Returns a NoiseEstimate whose ``rate`` is the posterior share of the
    higher-loss component. When the components are not distinct (``separated`` False), a single
    population is the better reading: the rate is then the high component's share only if it is
    also the smaller one, else 0.
    """
    values = np.asarray(losses, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < 10:
        raise ValueError(f"need at least 10 finite losses to estimate a noise rate, got {values.size}")
    span = values.max() - values.min()
    if span <= 0:
        return NoiseEstimate(0.0, False, 0.0, float(values[0]), float(values[0]))
    scaled = ((values - values.min()) / span)[:, None]
    mixture = GaussianMixture(2, max_iter=200, tol=1e-4, reg_covar=1e-4, random_state=seed).fit(scaled)
    means = mixture.means_.ravel()
    variances = mixture.covariances_.ravel()
    high = int(np.argmax(means))
    rate = float(mixture.predict_proba(scaled)[:, high].mean())
    separation = float(np.sqrt(2) * abs(means[1] - means[0]) / np.sqrt(variances.sum()))
    separated = separation >= MIN_SEPARATION
    if not separated and rate > 0.5:
        rate = 0.0
    low_mean, high_mean = (means[1 - high], means[high])
    return NoiseEstimate(rate, separated, separation, float(values.min() + span * low_mean),
                         float(values.min() + span * high_mean))
