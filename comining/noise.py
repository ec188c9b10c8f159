"""The paper's synthetic label-noise protocol (docs/DATA.md, "The noise protocol"), and the names a
grid and the paper's tables give its settings (``parse_noise``, ``noise_title``).

Closed-set noise flips a label to another known class; open-set noise keeps the images of the last
classes but gives them labels of known classes, so the model never sees those classes as targets.
The sampling matches the established protocol (one multinomial draw per sample, in dataset order,
from ``numpy.random.RandomState(seed)``), so the same seed corrupts the same labels.

The draw is written out here rather than called, because NumPy 2.5 changed what
``RandomState.multinomial`` returns when a row has zero probabilities before its last non-zero
entry (numpy/numpy#32299: 2.5 draws a uniform for each zero, as NumPy up to 1.16 did; 1.17 to 2.4
skip them). Pair-flip rows have such zeros, so the same seed gave other asymmetric labels under
another NumPy. ``corrupt`` keeps the stream of NumPy 1.17 to 2.4, with which this project's results
were made, whatever NumPy is installed.
"""

from __future__ import annotations

import math
import re

import numpy as np

from comining.errors import UserError

NOISE_TYPES = ("symmetric", "asymmetric")
_ALIASES = {"sym": "symmetric", "asym": "asymmetric", "pairflip": "asymmetric", "pair": "asymmetric"}

# A user's own images, a folder or a CSV list of files (the ``auto`` backbone and the summary treat
# them so); the web-* sets are the paper's.
USER_IMAGE_SETS = ("folder", "csv")
# Image sets read from disk: their labels carry real noise, which the protocol never adds to.
FOLDER_DATASETS = ("web-bird", "web-car", "web-aircraft", *USER_IMAGE_SETS)
# Named settings of the paper: (data set, open-set ratio).
SYNTHETIC = {"cifar10nc": ("cifar10", 0.0), "cifar100nc": ("cifar100", 0.0), "cifar80no": ("cifar100", 0.2)}


def rate_is_unknown(cfg) -> bool:
    """Whether a run's labels carry real noise of unknown rate (image sets, label files) rather than
    the synthetic protocol's, whose rate is known."""
    return cfg.dataset in FOLDER_DATASETS or cfg.labels is not None


def canonical_noise_type(name: str) -> str:
    """'symmetric' or 'asymmetric' for any accepted spelling ('sym', 'pairflip', ...)."""
    name = _ALIASES.get(name.lower(), name.lower())
    if name not in NOISE_TYPES:
        raise UserError(f"unknown noise type '{name}': use symmetric or asymmetric (pair flip)")
    return name


def closed_classes(num_classes: int, open_ratio: float) -> int:
    """Number of known classes, ⌊C(1-ρo)⌋; the open-set classes are the last ones."""
    return int(math.floor(num_classes * (1.0 - open_ratio) + 1e-9))


def check_rates(closed_rate: float, open_ratio: float, num_classes: int) -> None:
    """Raise UserError unless both rates lie in [0, 1) and at least two known classes remain."""
    for flag, value in (("--closeset_ratio", closed_rate), ("--open-ratio", open_ratio)):
        if not 0.0 <= value < 1.0:
            raise UserError(f"{flag} {value} is outside [0, 1): give a fraction such as 0.2")
    cc = closed_classes(num_classes, open_ratio)
    if cc < 2:
        raise UserError(
            f"--open-ratio {open_ratio} leaves {cc} known class(es) of {num_classes}: "
            "use a smaller open ratio so that at least 2 classes stay closed")


def transition_matrix(noise_type: str, closed_rate: float, open_ratio: float,
                      num_classes: int) -> np.ndarray:
    """Row-stochastic C×C matrix P with P[true, given] = probability of the given label.
    Closed classes come first. Symmetric noise spreads ``closed_rate`` evenly over the other closed
    classes; asymmetric (pair-flip) noise moves it all to the next closed class. Rows of open-set
    classes are uniform over the closed classes, and no column of an open class is ever non-zero."""
    noise_type = canonical_noise_type(noise_type)
    check_rates(closed_rate, open_ratio, num_classes)
    cc = closed_classes(num_classes, open_ratio)
    P = np.zeros((num_classes, num_classes))
    for i in range(cc):
        P[i, i] = 1.0 - closed_rate
        if noise_type == "symmetric":
            others = [j for j in range(cc) if j != i]
            P[i, others] += closed_rate / (cc - 1)
        else:
            P[i, (i + 1) % cc] += closed_rate
    P[cc:, :cc] = 1.0 / cc
    return P


def corrupt(labels, matrix: np.ndarray, seed: int = 0) -> np.ndarray:
    """Noisy labels: for each sample in order, the index that ``rng.multinomial(1, P[y])`` of NumPy
    1.17-2.4 draws from ``rng = numpy.random.RandomState(seed)`` (see the module's note)."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.RandomState(seed)
    noisy = np.empty_like(labels)
    for i, y in enumerate(labels):
        noisy[i] = _draw_one(rng, matrix[y])
    return noisy


def _draw_one(rng: np.random.RandomState, row: np.ndarray) -> int:
    """One multinomial(1, row) as NumPy 1.17-2.4 computes it: category by category, a binomial(1, p)
    of the category's share of the probability left, stopping at the first success; a zero share is
    skipped without drawing."""
    left = 1.0
    for j in range(len(row) - 1):
        share = row[j] / left
        if share != 0.0 and _binomial_one(rng, share):
            return j
        left -= row[j]
    return len(row) - 1


def _binomial_one(rng: np.random.RandomState, p: float) -> int:
    """binomial(1, p) by NumPy's inversion algorithm (its path for n·p ≤ 30), one uniform per try."""
    if p > 0.5:  # NumPy draws the complement's count and returns n − X
        return 1 - _binomial_one(rng, 1.0 - p)
    q = 1.0 - p
    qn = math.exp(math.log(q))  # q**n for n = 1, computed as NumPy does
    bound = min(1.0, p + 10.0 * math.sqrt(p * q + 1))
    x, px, u = 0, qn, rng.random_sample()
    while u > px:
        x += 1
        if x > bound:  # rounding overshoot: start again with a new uniform
            x, px, u = 0, qn, rng.random_sample()
        else:
            u -= px
            px = ((1 - x + 1) * p * px) / (x * q)
    return x


def forget_rate(closed_rate: float, open_ratio: float) -> float:
    """Expected share of wrong labels, (ρc + ρo/(1-ρo)) / (1 + ρo/(1-ρo)) = ρo + ρc(1-ρo)."""
    odds = open_ratio / (1.0 - open_ratio)
    return (closed_rate + odds) / (1.0 + odds)


def realised_rates(true_labels, noisy_labels, num_closed: int) -> dict:
    """What the draw actually did: share of closed-set labels flipped, share of open-set samples."""
    true_labels, noisy_labels = np.asarray(true_labels), np.asarray(noisy_labels)
    closed = true_labels < num_closed
    flipped = (noisy_labels != true_labels) & closed
    return {
        "closed_noise": float(flipped.sum() / max(closed.sum(), 1)),
        "open_share": float((~closed).mean()) if len(true_labels) else 0.0,
        "wrong_labels": float(((noisy_labels != true_labels) | ~closed).mean()) if len(true_labels) else 0.0,
    }


# A grid's names of noise settings (sym50, asym40, sym20-open20; `comining table --noise`), and the
# row headings of the paper's tables.

def parse_noise(spec: str) -> tuple[str, float, float | None]:
    """'sym50' → ('symmetric', 0.5, None); 'asym40' → ('asymmetric', 0.4, None);
    'sym20-open20' → ('symmetric', 0.2, 0.2). None: the open-set ratio of the grid's settings."""
    match = re.fullmatch(r"(sym|asym)(\d{1,2})(?:-open(\d{1,2}))?", spec.strip().lower())
    if not match:
        raise UserError(f"noise setting '{spec}' is not like sym50, asym40 or sym20-open20: symmetric or "
                        "asymmetric (pair flip), a percentage below 100, and optionally an open-set percentage")
    kind = "symmetric" if match.group(1) == "sym" else "asymmetric"
    open_ratio = int(match.group(3)) / 100 if match.group(3) else None
    return kind, int(match.group(2)) / 100, open_ratio


def noise_title(spec: str) -> str:
    """'sym50' → 'Symmetric-50%', the row heading of the paper's tables; open-set rows add '+ open-20%'."""
    kind, rate, open_ratio = parse_noise(spec)
    return f"{kind.capitalize()}-{round(rate * 100)}%" + (f" + open-{round(open_ratio * 100)}%" if open_ratio else "")
