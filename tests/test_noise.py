"""The synthetic noise protocol (docs/DATA.md, "The noise protocol"): transition matrices, sampling, rates, validation."""
import numpy as np
import pytest

from comining import noise
from comining.errors import UserError


def _rows_sum_to_one(P):
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=0, atol=1e-12)


# --- transition_matrix -----------------------------------------------------------------------

def test_symmetric_cifar10nc():
    # 10 closed classes, ρc 0.2: diagonal 1-0.2 = 0.8, each of the 9 others 0.2/9.
    P = noise.transition_matrix("symmetric", 0.2, 0.0, 10)
    assert P.shape == (10, 10)
    np.testing.assert_allclose(np.diag(P), 0.8)
    off = P[~np.eye(10, dtype=bool)]
    np.testing.assert_allclose(off, 0.2 / 9)
    _rows_sum_to_one(P)


def test_asymmetric_cifar10nc_is_pair_flip():
    # ρc 0.4: P[i,i] = 0.6 and P[i,(i+1) mod 10] = 0.4, e.g. class 9 flips to 0; nothing else.
    P = noise.transition_matrix("asymmetric", 0.4, 0.0, 10)
    expected = 0.6 * np.eye(10) + 0.4 * np.roll(np.eye(10), 1, axis=1)
    np.testing.assert_allclose(P, expected)
    assert P[9, 0] == pytest.approx(0.4) and P[3, 4] == pytest.approx(0.4) and P[4, 3] == 0
    _rows_sum_to_one(P)


def test_cifar100nc_both_types():
    # 100 closed classes: symmetric 0.5 → 0.5 on the diagonal, 0.5/99 elsewhere;
    # pair flip 0.2 → 0.8 on the diagonal, 0.2 on (i, i+1 mod 100), 99 → 0.
    S = noise.transition_matrix("symmetric", 0.5, 0.0, 100)
    assert S[0, 0] == pytest.approx(0.5) and S[0, 99] == pytest.approx(0.5 / 99)
    assert S[57, 12] == pytest.approx(0.5 / 99)
    _rows_sum_to_one(S)
    A = noise.transition_matrix("asymmetric", 0.2, 0.0, 100)
    assert A[99, 0] == pytest.approx(0.2) and A[42, 43] == pytest.approx(0.2)
    assert np.count_nonzero(A) == 200
    _rows_sum_to_one(A)


@pytest.mark.parametrize("noise_type", ["symmetric", "asymmetric"])
def test_cifar80no_open_classes(noise_type):
    # ρo 0.2 of 100 classes → Cc = ⌊100·0.8⌋ = 80 closed classes; rows 80..99 uniform 1/80 over the
    # closed classes; columns 80..99 (open classes) never receive probability.
    P = noise.transition_matrix(noise_type, 0.2, 0.2, 100)
    assert noise.closed_classes(100, 0.2) == 80
    np.testing.assert_allclose(P[80:, :80], 1 / 80)
    assert not P[:, 80:].any()
    assert P[5, 5] == pytest.approx(0.8)
    if noise_type == "symmetric":
        assert P[5, 6] == pytest.approx(0.2 / 79)  # spread over the 79 other *closed* classes
    else:
        assert P[79, 0] == pytest.approx(0.2)  # the pair flip wraps within the closed classes
    _rows_sum_to_one(P)


def test_canonical_noise_type_aliases():
    assert noise.canonical_noise_type("pairflip") == "asymmetric"
    assert noise.canonical_noise_type("sym") == "symmetric"
    np.testing.assert_array_equal(noise.transition_matrix("pairflip", 0.3, 0.0, 5),
                                  noise.transition_matrix("asymmetric", 0.3, 0.0, 5))
    with pytest.raises(UserError):
        noise.canonical_noise_type("gaussian")


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("closed, open_", [(1.0, 0.0), (-0.1, 0.0), (0.2, 1.0), (0.2, -0.1)])
def test_rates_out_of_range_are_user_errors(closed, open_):
    with pytest.raises(UserError):
        noise.check_rates(closed, open_, 10)
    with pytest.raises(UserError):
        noise.transition_matrix("symmetric", closed, open_, 10)


def test_open_ratio_must_leave_two_closed_classes():
    # 10 classes, ρo 0.85 → ⌊1.5⌋ = 1 closed class: an error; ρo 0.8 → 2 closed classes: fine.
    with pytest.raises(UserError):
        noise.check_rates(0.2, 0.85, 10)
    with pytest.raises(UserError):
        noise.transition_matrix("symmetric", 0.2, 0.85, 10)
    P = noise.transition_matrix("symmetric", 0.2, 0.8, 10)
    # In floats 100·(1-0.9) = 9.999999999999998, but ⌊C(1-ρo)⌋ means the exact product: 10.
    assert noise.closed_classes(100, 0.9) == 10
    assert P[0, 1] == pytest.approx(0.2) and P[9, 0] == P[9, 1] == pytest.approx(0.5)


# --- corrupt ---------------------------------------------------------------------------------

def _protocol(labels, P, seed):
    # The established protocol, written out: one multinomial draw per sample in dataset order.
    rng = np.random.RandomState(seed)
    return np.array([np.argmax(rng.multinomial(1, P[y])) for y in labels])


def test_corrupt_reproduces_the_protocol():
    labels = np.arange(300) % 10
    P = noise.transition_matrix("symmetric", 0.5, 0.0, 10)
    for seed in (0, 3):
        np.testing.assert_array_equal(noise.corrupt(labels, P, seed=seed), _protocol(labels, P, seed))
    np.testing.assert_array_equal(noise.corrupt(labels, P), _protocol(labels, P, 0))  # seed 0 default
    # A different seed draws different labels (300 draws at 50 % noise cannot all coincide).
    assert (noise.corrupt(labels, P, seed=0) != noise.corrupt(labels, P, seed=1)).any()


PROTOCOLS = [("symmetric", 0.5, 0.0, 10), ("asymmetric", 0.4, 0.0, 10), ("symmetric", 0.2, 0.2, 100),
             ("asymmetric", 0.45, 0.2, 10), ("asymmetric", 0.2, 0.0, 100)]


@pytest.mark.skipif(tuple(map(int, np.__version__.split(".")[:2])) >= (2, 5),
                    reason="NumPy 2.5 changed RandomState.multinomial where rows hold zeros (numpy#32299)")
def test_corrupt_draws_what_numpy_1_17_to_2_4_draws():
    # Pair-flip and open-set rows hold zeros before their last non-zero entry: the case NumPy 2.5 changed.
    labels = np.random.RandomState(7).randint(0, 100, 3000)
    for kind, rate, open_ratio, classes in PROTOCOLS:
        P = noise.transition_matrix(kind, rate, open_ratio, classes)
        y = labels % classes
        np.testing.assert_array_equal(noise.corrupt(y, P, seed=0), _protocol(y, P, 0), err_msg=f"{kind} {rate}")


def test_pair_flip_labels_do_not_depend_on_the_numpy_version():
    # Seed 0, pair flip 40 %, labels 0..9 four times: the draw of NumPy 1.17-2.4 (2.5 gives others).
    P = noise.transition_matrix("asymmetric", 0.4, 0.0, 10)
    drawn = "".join(map(str, noise.corrupt(np.arange(40) % 10, P, seed=0)))
    assert drawn == "0223566880012456789901334678800223456799"


def test_realised_rates_are_close_to_nominal():
    # 50000 draws at 0.2: standard error √(0.2·0.8/50000) ≈ 0.0018, so ±0.01 is over 5σ.
    labels = np.arange(50000) % 10
    for noise_type in ("symmetric", "asymmetric"):
        P = noise.transition_matrix(noise_type, 0.2, 0.0, 10)
        noisy = noise.corrupt(labels, P, seed=0)
        assert abs((noisy != labels).mean() - 0.2) < 0.01
        if noise_type == "asymmetric":  # every flip goes to the next class
            flipped = noisy != labels
            np.testing.assert_array_equal(noisy[flipped], (labels[flipped] + 1) % 10)


def test_open_set_samples_never_get_an_open_label():
    # cifar80no: true classes 0..99, every given label must be < 80; the open samples spread over
    # all 80 closed classes (2000 draws of 1/80 each: each class expected 25 times).
    labels = np.repeat(np.arange(100), 100)
    P = noise.transition_matrix("symmetric", 0.2, 0.2, 100)
    noisy = noise.corrupt(labels, P, seed=0)
    assert noisy.max() < 80
    assert len(np.unique(noisy[labels >= 80])) == 80


# --- forget rate -----------------------------------------------------------------------------

def test_forget_rate():
    # (ρc + ρo/(1-ρo)) / (1 + ρo/(1-ρo)) = ρo + ρc(1-ρo): 0.2 + 0.2·0.8 = 0.36.
    assert noise.forget_rate(0.2, 0.2) == pytest.approx(0.36)
    assert noise.forget_rate(0.5, 0.0) == pytest.approx(0.5)
    assert noise.forget_rate(0.0, 0.0) == 0.0
    for rc, ro in [(0.8, 0.2), (0.4, 0.2), (0.3, 0.5)]:
        assert noise.forget_rate(rc, ro) == pytest.approx(ro + rc * (1 - ro))
