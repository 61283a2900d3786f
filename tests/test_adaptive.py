"""EOT and BPDA: adaptive attacks break defences that fool plain gradient attacks."""

import pytest
import torch
from torch import nn

from parry import Classifier
from parry.attacks import PGD
from parry.attacks.adaptive import BPDA, EOT, bpda_classifier, eot_classifier
from parry.metrics import predict


def quantise(x):
    return torch.round(x * 7) / 7  # 8 grey levels: zero gradient almost everywhere


def test_bpda_breaks_input_quantisation_that_plain_pgd_cannot_move(mnist_cnn, mnist_points):
    x, y = mnist_points[0][:200], mnist_points[1][:200]
    defended = Classifier(nn.Sequential(_Lambda(quantise), mnist_cnn), num_classes=10, input_shape=(1, 28, 28))
    plain = PGD(0.3, steps=40, random_start=False, seed=0)(defended, x, y)
    # the quantiser's gradient is zero: plain PGD does not move at all
    assert float(plain.norms["linf"].max()) == 0.0
    bpda = PGD(0.3, steps=40, seed=0)(bpda_classifier(quantise, mnist_cnn), x, y)
    on_defended = predict(defended, bpda.adv)
    assert float((on_defended == y).float().mean()) < 0.1 < float(plain.robust.float().mean())


def test_bpda_forward_is_exact_and_backward_is_the_approximation():
    x = torch.rand(3, 5, requires_grad=True)
    out = BPDA(quantise)(x)
    assert torch.equal(out, quantise(x))
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    x.grad = None
    BPDA(quantise, approximation=lambda v: 2 * v)(x).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 2.0))
    with pytest.raises(TypeError, match="layer"):
        BPDA(3)


class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class RandomShift(nn.Module):
    """A randomised defence: the image is translated by up to 4 pixels at every forward pass."""

    def __init__(self, model, pixels=4):
        super().__init__()
        self.model, self.pixels = model, pixels

    def forward(self, x):
        dx, dy = torch.randint(-self.pixels, self.pixels + 1, (2,)).tolist()
        return self.model(torch.roll(x, shifts=(dx, dy), dims=(2, 3)))


def test_eot_beats_the_same_attack_without_eot_on_a_randomised_model(mnist_cnn, mnist_points):
    # measured here: 66 % robust without EOT, 43.5 % with 8 EOT draws (200 points, eps 0.1)
    x, y = mnist_points[0][:200], mnist_points[1][:200]
    torch.manual_seed(0)
    randomised = Classifier(RandomShift(mnist_cnn), num_classes=10, input_shape=(1, 28, 28))
    judge = eot_classifier(randomised, samples=32)
    attack = PGD(0.1, steps=10, early_stop=False, seed=0)
    without = attack.generate(randomised, x, y)
    with_eot = attack.generate(eot_classifier(randomised, samples=8), x, y)
    acc_without = float((predict(judge, without) == y).float().mean())
    acc_with = float((predict(judge, with_eot) == y).float().mean())
    assert acc_with < acc_without - 0.1


def test_eot_averages_draws_and_validates():
    model = nn.Linear(4, 3)
    x = torch.rand(5, 4)
    out = EOT(model, samples=3)(x)
    assert torch.allclose(out, torch.log_softmax(model(x), dim=1), atol=1e-6)  # deterministic: one draw
    assert torch.allclose(EOT(model, samples=3, batched=True)(x), out, atol=1e-6)
    with pytest.raises(ValueError, match="samples"):
        EOT(model, samples=0)
    with pytest.raises(TypeError, match="transform"):
        EOT(model, transform=5)
