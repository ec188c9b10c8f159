"""Models return (logits, features) of the documented sizes; Views make the documented views."""
import pytest
import torch
import torch.nn.functional as F

from comining.data.augment import Views
from comining.data.autoaugment import BatchAutoAugment
from comining.errors import UserError
from comining.models import build_model


# --- models ----------------------------------------------------------------------------------

# Paper CNN: three 2× poolings, 16 channels at the end: 8 px → 16·1·1, 28 → 16·3·3, 32 → 16·4·4.
@pytest.mark.parametrize("size, feature_dim", [(8, 16), (28, 144), (32, 256)])
@pytest.mark.parametrize("channels", [1, 3])
def test_paper_cnn_shapes(size, feature_dim, channels):
    model = build_model("cnn", channels, 7, size)
    assert model.feature_dim == feature_dim
    logits, feats = model(torch.rand(2, channels, size, size))
    assert logits.shape == (2, 7) and feats.shape == (2, feature_dim)
    # The features are the input of the final linear layer.
    torch.testing.assert_close(model.fc(feats), logits)


@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_small_cnn_shapes(size, channels):
    model = build_model("small", channels, 5, size)
    assert model.feature_dim == 128  # global average pooling of 128 channels, whatever the size
    logits, feats = model(torch.rand(2, channels, size, size))
    assert logits.shape == (2, 5) and feats.shape == (2, 128)
    torch.testing.assert_close(model.fc(feats), logits)


def test_paper_cnn_rejects_tiny_images():
    with pytest.raises(UserError, match="at least 8 px"):
        build_model("cnn", 3, 10, 7)  # 7 // 8 = 0: nothing left after three poolings


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
