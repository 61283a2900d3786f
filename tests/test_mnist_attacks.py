"""Gradient attacks against a trained, undefended MNIST CNN (real data)."""

import torch

from parry.attacks import FGSM, MIFGSM, PGD
from parry.metrics import accuracy


def test_the_fixture_model_is_actually_trained(mnist_cnn, mnist_points):
    x, y = mnist_points
    assert accuracy(mnist_cnn, x, y) > 0.9


def test_pgd40_leaves_no_more_robust_points_than_fgsm_at_eps_01(mnist_cnn, mnist_points):
    x, y = mnist_points
    fgsm = FGSM(0.1)(mnist_cnn, x, y)
    pgd = PGD(0.1, steps=40, seed=0)(mnist_cnn, x, y)
    assert int(pgd.robust.sum()) <= int(fgsm.robust.sum())
    assert float(pgd.robust.float().mean()) < 0.9 * float(pgd.clean_correct.float().mean())


def test_robust_accuracy_never_increases_with_eps(mnist_cnn, mnist_points):
    x, y = mnist_points
    accs = [float(PGD(eps, steps=20, seed=0)(mnist_cnn, x, y).robust.float().mean())
            for eps in (0.0, 0.05, 0.1, 0.2, 0.3)]
    assert accs == sorted(accs, reverse=True)
    assert accs[-1] < 0.05  # an undefended CNN falls to ~0 at eps 0.3


def test_robust_set_only_shrinks_with_more_steps(mnist_cnn, mnist_points):
    x, y = mnist_points
    previous = None
    for steps in (1, 5, 10, 20):
        robust = PGD(0.1, steps=steps, alpha=0.01, seed=0)(mnist_cnn, x, y).robust
        if previous is not None:
            assert not bool((robust & ~previous).any())
        previous = robust


def test_targeted_attacks_reach_the_target(mnist_cnn, mnist_points):
    x, y = mnist_points
    x, y = x[:100], y[:100]
    g = torch.Generator().manual_seed(0)
    target = (y + torch.randint(1, 10, (100,), generator=g)) % 10  # a random other class
    # Radii at which this briefly trained CNN has (nearly) every target within reach;
    # a bare PyTorch PGD loop reaches the same success rates on these points.
    # MI-FGSM (no random start, fixed step) is the weakest of the four.
    for attack, least in ((PGD(0.4, steps=100, seed=0), 0.95), (PGD(6.0, norm="l2", steps=100, seed=0), 0.95),
                          (PGD(60.0, norm="l1", steps=200, l1_sparsity=0.95, seed=0), 0.95),
                          (MIFGSM(0.4, steps=40), 0.9)):
        result = attack(mnist_cnn, x, y, target=target)
        assert float(result.success.float().mean()) >= least, type(attack).__name__
        assert bool(result.threat.contains(result.adv, x).all())
