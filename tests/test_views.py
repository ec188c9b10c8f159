"""BatchAutoAugment: each operation does what PIL's does, per image, without waiting on the host; Views
(comining.data.augment) make the documented views."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps

from comining.data.augment import Views
from comining.data import autoaugment
from comining.data.autoaugment import OPERATIONS, BatchAutoAugment
from test_no_sync import RefuseSync


def one_op(x, name, level, sign=1.0):
    """Apply operation ``name`` to every image of ``x`` at ``level`` (bin / 9) with ``sign``."""
    n = x.shape[0]
    op = torch.full((n,), OPERATIONS.index(name))
    return BatchAutoAugment().apply_slot(x, op, torch.full((n,), float(level)), torch.full((n,), float(sign)))


def ramp(n=2, channels=3, side=8):
    return torch.linspace(0, 1, n * channels * side * side).view(n, channels, side, side)


def test_invert_and_solarize():
    x = ramp()
    torch.testing.assert_close(one_op(x, "invert", 0), 1 - x)
    # Bin 0 solarizes only pure white (threshold 255); bin 9 everything (threshold 0).
    out = one_op(x, "solarize", 0)
    assert torch.equal(out[x < 1], x[x < 1]) and torch.all(out[x == 1] == 0)
    torch.testing.assert_close(one_op(x, "solarize", 1), 1 - x)


def test_posterize_keeps_the_top_bits():
    # Bin 9 keeps 4 bits: 8 - round(9 / 2.25) = 4, so 0.5 (= 128 of 255) stays 128 and 200 becomes 192.
    x = torch.tensor([128 / 255, 200 / 255, 15 / 255]).view(1, 3, 1, 1).expand(1, 3, 3, 3)
    out = one_op(x, "posterize", 1.0)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([128, 192, 0]) / 255)
    torch.testing.assert_close(one_op(x, "posterize", 0.0), x)  # bin 0: all 8 bits


def test_colour_factors():
    x = ramp() * 0.5
    # Brightness at bin 9, negative sign: factor 1 - 0.9 = 0.1.
    torch.testing.assert_close(one_op(x, "brightness", 1.0, -1.0), x * 0.1)
    # Contrast factor 0 would give the mean grey; factor 1 (bin 0) changes nothing.
    torch.testing.assert_close(one_op(x, "contrast", 0.0), x)
    grey = ramp(channels=1)
    torch.testing.assert_close(one_op(grey, "color", 1.0), grey)  # no colour to change in grey images


def picture(side=16):
    """A smooth RGB picture as a Pillow image and as a [1×3×H×W] tensor in [0, 1]."""
    yy, xx = np.mgrid[0:side, 0:side]
    rgb = np.stack([xx * 12 + 20, yy * 10 + 30, 128 + 80 * np.sin(xx / 3) * np.cos(yy / 4)], -1)
    rgb = rgb.clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb), as_tensor(rgb)


def as_tensor(rgb) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None] / 255


# Pillow works in uint8 and rounds the contrast's mean grey to an integer: within 1.5 of 255.
PIL_TOLERANCE = dict(atol=1.5 / 255, rtol=0)


@pytest.mark.parametrize("name,enhancer", [("contrast", ImageEnhance.Contrast), ("sharpness", ImageEnhance.Sharpness)])
@pytest.mark.parametrize("level,sign", [(1.0, 1.0), (1.0, -1.0), (5 / 9, 1.0)])
def test_contrast_and_sharpness_match_pillow(name, enhancer, level, sign):
    img, x = picture()
    factor = 1 + sign * level * 0.9  # 1.9, 0.1, 1.5
    expected = as_tensor(enhancer(img).enhance(factor))
    torch.testing.assert_close(one_op(x, name, level, sign), expected, **PIL_TOLERANCE)


def test_equalize_matches_pillow():
    img, x = picture()
    torch.testing.assert_close(one_op(x, "equalize", 0), as_tensor(ImageOps.equalize(img)), **PIL_TOLERANCE)
    noise = Image.fromarray(np.random.RandomState(0).randint(0, 256, (16, 16, 3)).astype(np.uint8))
    torch.testing.assert_close(one_op(as_tensor(noise), "equalize", 0), as_tensor(ImageOps.equalize(noise)),
                               **PIL_TOLERANCE)


@pytest.mark.parametrize("level,sign", [(1.0, 1.0), (0.5, -1.0)])
def test_shear_matches_pillow_about_the_centre(level, sign):
    # Pillow's AFFINE takes the inverse map, in coordinates whose pixel centres are at +0.5, so a
    # shear by v about the centre is (1, -v, v·side/2, 0, 1, 0). Near the edges the two fill and
    # interpolate differently; up to 0.3·8 = 2.4 px from them the picture comes from outside.
    img, x = picture()
    v, side = sign * level * 0.3, 16
    sheared_x = img.transform(img.size, Image.AFFINE, (1, -v, v * side / 2, 0, 1, 0), resample=Image.BILINEAR)
    sheared_y = img.transform(img.size, Image.AFFINE, (1, 0, 0, -v, 1, v * side / 2), resample=Image.BILINEAR)
    torch.testing.assert_close(one_op(x, "shear_x", level, sign)[..., 4:-4], as_tensor(sheared_x)[..., 4:-4],
                               **PIL_TOLERANCE)
    torch.testing.assert_close(one_op(x, "shear_y", level, sign)[..., 4:-4, :], as_tensor(sheared_y)[..., 4:-4, :],
                               **PIL_TOLERANCE)


def test_auto_contrast_stretches_each_channel():
    x = 0.2 + 0.4 * ramp(n=1, channels=1)
    out = one_op(x, "auto_contrast", 0)
    assert out.min() == 0 and torch.isclose(out.max(), torch.tensor(1.0))
    flat = torch.full((1, 1, 4, 4), 0.3)
    torch.testing.assert_close(one_op(flat, "auto_contrast", 0), flat)


def test_translate_moves_whole_pixels_exactly():
    side = 32
    x = torch.rand(1, 1, side, side)
    level = 3 / (150 / 331 * side)  # a shift of exactly 3 pixels
    out = one_op(x, "translate_x", level)
    torch.testing.assert_close(out[..., 3:], x[..., :-3], atol=1e-5, rtol=0)
    assert torch.all(out[..., :3].abs() < 1e-6)  # filled with black


def test_rotate_by_90_degrees_is_a_quarter_turn():
    x = torch.rand(1, 1, 8, 8)
    out = one_op(x, "rotate", 3.0)  # 30° per unit of level
    assert any(torch.allclose(out, torch.rot90(x, k, (2, 3)), atol=1e-5) for k in (1, 3))


def test_images_without_an_operation_are_untouched():
    x = ramp(n=4)
    op = torch.tensor([OPERATIONS.index("invert"), -1, OPERATIONS.index("rotate"), -1])
    out = BatchAutoAugment().apply_slot(x, op, torch.ones(4), torch.ones(4))
    assert torch.equal(out[1], x[1]) and torch.equal(out[3], x[3])
    torch.testing.assert_close(out[0], 1 - x[0])


@pytest.mark.parametrize("channels", [1, 3])
def test_full_policy_stays_in_range_and_makes_no_host_synchronisation_on_a_gpu(channels, monkeypatch):
    monkeypatch.setattr(autoaugment, "SUBSET_DEVICES", set())  # the path a GPU takes
    x = torch.rand(64, channels, 28, 28)
    torch.manual_seed(0)
    with RefuseSync():
        out = BatchAutoAugment()(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)


@pytest.mark.parametrize("channels, side, bf16", [(1, 28, False), (3, 32, False), (3, 48, True)])
def test_the_cpu_computes_each_operation_on_its_images_alone_with_the_gpu_paths_result(channels, side, bf16,
                                                                                      monkeypatch):
    """Bit for bit, over many draws: a run's images must not depend on which path made them."""
    for seed in range(12):
        x = torch.rand(32, channels, side, side, generator=torch.Generator().manual_seed(seed))
        out = {}
        for path, devices in (("subsets", {"cpu"}), ("whole batch", set())):
            monkeypatch.setattr(autoaugment, "SUBSET_DEVICES", devices)
            torch.manual_seed(seed)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out[path] = BatchAutoAugment()(x)
        assert not torch.equal(out["subsets"], x)
        assert torch.equal(out["subsets"], out["whole batch"]), seed


# --- views -----------------------------------------------------------------------------------

def _images(n, channels=3, side=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (n, channels, side, side), generator=g, dtype=torch.uint8)


def test_weak_crop_is_a_shift_of_at_most_the_padding():
    # With 2-px zero padding the output must equal pad(x)[top:top+8, left:left+8] for some
    # top, left in 0..4, i.e. the content moves by at most 2 px; different samples move differently.
    x = _images(40)
    torch.manual_seed(0)
    out = Views(8, padding=2, flip=False)(x, "weak")
    assert out.shape == x.shape and out.dtype == torch.float32
    padded = F.pad(x.float() / 255, [2] * 4)
    shifts = []
    for n in range(len(x)):
        found = [(t, l) for t in range(5) for l in range(5)
                 if torch.equal(out[n], padded[n, :, t:t + 8, l:l + 8])]
        assert len(found) == 1
        shifts.append(found[0])
    assert len(set(shifts)) > 5


def test_weak_flips_about_half():
    # No padding: every output is x or x mirrored. 1000 fair coins: 500 ± 16 (σ); allow 5σ.
    x = _images(1000)
    torch.manual_seed(0)
    out = Views(8, padding=0, flip=True)(x, "weak")
    same = (out == x.float() / 255).flatten(1).all(1)
    mirrored = (out == x.flip(-1).float() / 255).flatten(1).all(1)
    assert (same ^ mirrored).all()  # random images are never their own mirror
    assert 420 <= int(mirrored.sum()) <= 580
    # flip=False never mirrors.
    out = Views(8, padding=0, flip=False)(x, "weak")
    assert torch.equal(out, x.float() / 255)


@pytest.mark.parametrize("kind", ["test", "plain"])
def test_test_and_plain_views_are_deterministic_centre_crops(kind):
    x = _images(4)
    views = Views(4, padding=2)
    a, b = views(x, kind), views(x, kind)
    assert torch.equal(a, b)
    assert torch.equal(a, x[:, :, 2:6, 2:6].float() / 255)  # centre 4×4 of 8×8: rows/cols 2..5


def test_normalisation_uses_the_given_mean_and_std():
    # A constant image (255, 0, 51) is (1, 0, 0.2) after scaling; with mean (0.5, 0.5, 0.2) and
    # std (0.25, 0.5, 0.1): (1-0.5)/0.25 = 2, (0-0.5)/0.5 = -1, (0.2-0.2)/0.1 = 0.
    x = torch.tensor([255, 0, 51], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 8, 8)
    out = Views(8, normalize=((0.5, 0.5, 0.2), (0.25, 0.5, 0.1)))(x, "test")
    expected = torch.tensor([2.0, -1.0, 0.0]).view(1, 3, 1, 1).expand(2, 3, 8, 8)
    torch.testing.assert_close(out, expected)


def test_strong_view_draws_a_sub_policy_per_image():
    # A two-entry policy: invert everything, or leave it (brightness at factor 1). Drawn per image,
    # a batch of 64 shows both; drawn once per batch (or per group) it would be all of one kind.
    views = Views(32, padding=0, flip=False)
    views.autoaugment = BatchAutoAugment([[("invert", 1.0, None)], [("brightness", 1.0, 0)]])
    x = _images(64, side=32)
    torch.manual_seed(0)
    out = views(x, "strong")
    plain = x.float() / 255
    inverted = [torch.allclose(o, 1 - p) for o, p in zip(out, plain)]
    kept = [torch.allclose(o, p) for o, p in zip(out, plain)]
    assert all(i or k for i, k in zip(inverted, kept))
    assert 15 < sum(inverted) < 49  # Binomial(64, ½): outside this range with p < 1e-4


@pytest.mark.parametrize("channels", [1, 3])
def test_strong_view_is_weak_view_plus_autoaugment(channels):
    # With AutoAugment replaced by the identity, the strong view is the weak view for the same seed.
    x = _images(20, channels=channels)
    views = Views(8, padding=1, normalize=((0.5,) * channels, (0.25,) * channels))
    torch.manual_seed(3)
    weak = views(x, "weak")
    views.autoaugment = lambda batch: batch
    torch.manual_seed(3)
    torch.testing.assert_close(views(x, "strong"), weak)


def test_strong_view_on_grey_images():
    x = _images(20, channels=1, side=28)
    torch.manual_seed(0)
    out = Views(28, padding=3, normalize=((0.3,), (0.3,)))(x, "strong")
    assert out.shape == (20, 1, 28, 28) and torch.isfinite(out).all()
    # Values stay inside the normalised image of [0, 1].
    assert out.min() >= (0 - 0.3) / 0.3 - 1e-5 and out.max() <= (1 - 0.3) / 0.3 + 1e-5


def test_unknown_view_kind():
    with pytest.raises(ValueError):
        Views(8)(_images(2), "medium")
