"""Properties of evaluation-mode attacks on a small trained model."""

import pytest
import torch
from torch import nn

from parry import Classifier
from parry.attacks import FGSM, PGD


@pytest.fixture(scope="module")
def blobs_model():
    """An MLP trained to ~100 % on three Gaussian blobs in [0, 1]^10."""
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(3, 10, generator=g) * 0.6 + 0.2
    y = torch.arange(3).repeat_interleave(200)
    x = (centres[y] + 0.05 * torch.randn(600, 10, generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    clf = Classifier(model, num_classes=3)
    return clf, x, y


def test_more_steps_never_leave_more_robust_points(blobs_model):
    # Same seed and absolute step size: the first k steps are identical and early exit
    # freezes a point once adversarial, so the robust set can only shrink.
    clf, x, y = blobs_model
    previous = None
    for steps in (1, 2, 5, 10, 20):
        robust = PGD(0.15, steps=steps, alpha=0.01, seed=0)(clf, x, y).robust
        if previous is not None:
            assert not bool((robust & ~previous).any())
        previous = robust


@pytest.mark.parametrize("norm,eps_values", [("linf", (0.0, 0.05, 0.1, 0.2, 0.4)), ("l2", (0.0, 0.2, 0.5, 1.0, 2.0))])
def test_robust_accuracy_falls_with_eps(blobs_model, norm, eps_values):
    clf, x, y = blobs_model
    accs = [float(PGD(eps, norm, steps=20, seed=0)(clf, x, y).robust.float().mean()) for eps in eps_values]
    assert accs == sorted(accs, reverse=True)
    assert accs[0] > 0.95 and accs[-1] < 0.05


def test_early_exit_leaves_misclassified_points_untouched(blobs_model):
    clf, x, y = blobs_model
    wrong = (y + 1) % 3
    result = PGD(0.2, steps=5)(clf, x, wrong)
    assert torch.equal(result.adv, x) and bool(result.success.all())


def test_pgd_beats_fgsm(blobs_model):
    clf, x, y = blobs_model
    pgd = PGD(0.1, steps=40, seed=0)(clf, x, y).robust.float().mean()
    fgsm = FGSM(0.1)(clf, x, y).robust.float().mean()
    assert pgd <= fgsm
