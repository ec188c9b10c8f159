"""Per-sample losses of the training step's steps 3-4 (docs/METHOD.md) against hand computations."""
import math

import torch
import torch.nn.functional as F

from comining.losses import smooth_labels, soft_cross_entropy, symmetric_kl


def test_smooth_labels():
    # ε 0.5, C 4: 1-ε = 0.5 on the label, ε/(C-1) = 1/6 on each of the three others.
    t = smooth_labels(torch.tensor([2, 0, 3]), 4, 0.5)
    expected = torch.full((3, 4), 1 / 6)
    expected[0, 2] = expected[1, 0] = expected[2, 3] = 0.5
    torch.testing.assert_close(t, expected)
    torch.testing.assert_close(t.sum(1), torch.ones(3))
    # ε 0 is the one-hot target.
    torch.testing.assert_close(smooth_labels(torch.tensor([1]), 3, 0.0), torch.tensor([[0.0, 1.0, 0.0]]))


def test_soft_cross_entropy():
    # logits [0, ln 3] → softmax [1/4, 3/4]; target [1/2, 1/2]:
    # -(½ ln ¼ + ½ ln ¾) = ½ ln(16/3) ≈ 0.8370. Target [0, 1]: -ln ¾ ≈ 0.2877.
    logits = torch.tensor([[0.0, math.log(3)], [0.0, math.log(3)]])
    target = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    out = soft_cross_entropy(logits, target)
    torch.testing.assert_close(out, torch.tensor([0.5 * math.log(16 / 3), -math.log(0.75)]))
    # A one-hot target gives ordinary cross-entropy, per sample.
    z = torch.randn(5, 7)
    y = torch.tensor([0, 6, 3, 3, 1])
    torch.testing.assert_close(soft_cross_entropy(z, F.one_hot(y, 7).float()),
                               F.cross_entropy(z, y, reduction="none"))


def test_symmetric_kl_base_2():
    # KL(p‖q) + KL(q‖p) = Σ (p-q)(log p - log q).
    # p = [½, ¼, ¼], q = [¼, ¼, ½]: (¼)(log2 2) + 0 + (-¼)(log2 ½) = ¼ + ¼ = 0.5 bit.
    # p = [½, ½], q = [¼, ¾]: (¼)(log2 2) + (-¼)(log2 ⅔) = ¼ log2 3 ≈ 0.3962 bit.
    a = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    b = torch.log(torch.tensor([[0.25, 0.25, 0.5]]))
    torch.testing.assert_close(symmetric_kl(a, b, base=2), torch.tensor([0.5]))
    torch.testing.assert_close(symmetric_kl(a, b), torch.tensor([0.5 * math.log(2)]))  # nats by default
    c = torch.tensor([[0.0, 0.0]])
    d = torch.tensor([[0.0, math.log(3)]])
    torch.testing.assert_close(symmetric_kl(c, d, base=2), torch.tensor([0.25 * math.log2(3)]))


def test_symmetric_kl_properties():
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    torch.testing.assert_close(symmetric_kl(z1, z2, base=2), symmetric_kl(z2, z1, base=2))
    # Equal distributions (also logits shifted by a constant) give 0.
    torch.testing.assert_close(symmetric_kl(z1, z1 + 3.0, base=2), torch.zeros(6), atol=1e-6, rtol=0)
    assert (symmetric_kl(z1, z2) > 0).all()
    # Gradients reach both arguments.
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    symmetric_kl(a, b, base=2).sum().backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    assert symmetric_kl(z1, z2, base=2).shape == (6,)
