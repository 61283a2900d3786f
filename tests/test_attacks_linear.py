"""Gradient attacks on models whose optimum is known in closed form."""

import pytest
import torch
from torch import nn

from parry import Classifier
from parry.attacks import BIM, FGSM, MIFGSM, PGD, FGSMRandomStart


def linear_two_class(dim: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(dim, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(2, dim, generator=g))
        layer.bias.zero_()
    return layer, (layer.weight[1] - layer.weight[0]).detach()


def test_one_linf_step_from_the_centre_hits_the_analytic_optimum():
    model, w = linear_two_class()
    x = torch.full((4, 12), 0.5)
    y = torch.zeros(4, dtype=torch.long)  # pushing towards class 1 raises w . delta
    adv = FGSM(0.1, early_stop=False).generate(model, x, y)
    assert torch.allclose(adv - x, 0.1 * w.sign().expand(4, -1), atol=1e-6)


def test_one_l2_step_is_eps_times_the_normalised_direction():
    model, w = linear_two_class()
    x = torch.full((4, 12), 0.5)
    y = torch.zeros(4, dtype=torch.long)
    adv = FGSM(0.2, norm="l2", early_stop=False).generate(model, x, y)
    assert torch.allclose(adv - x, 0.2 * (w / w.norm()).expand(4, -1), atol=1e-6)


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_pgd_linf_converges_to_the_corner_for_a_linear_model(loss):
    model, w = linear_two_class()
    x = torch.full((3, 12), 0.5)
    y = torch.zeros(3, dtype=torch.long)
    adv = PGD(0.05, steps=20, loss=loss, early_stop=False, seed=0).generate(model, x, y)
    assert torch.allclose(adv - x, 0.05 * w.sign().expand(3, -1), atol=1e-6)


def test_pgd_l1_spends_its_budget_on_the_largest_weights():
    model, w = linear_two_class(dim=100)
    x = torch.full((2, 100), 0.5)
    y = torch.zeros(2, dtype=torch.long)
    adv = PGD(0.4, norm="l1", steps=30, random_start=False, early_stop=False).generate(model, x, y)
    delta = adv - x
    assert float(delta.abs().sum(dim=1).max()) <= 0.4 + 1e-5
    # the whole budget goes to the coordinate with the largest |w|: the L1 optimum
    top = int(w.abs().argmax())
    assert float(delta[:, top].abs().min()) > 0.3
    assert torch.equal(delta[:, top].sign(), w[top].sign().expand(2))


def test_targeted_attack_reaches_every_target_on_an_undefended_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
    clf = Classifier(model, num_classes=5)
    x = torch.rand(40, 20)
    ranked = clf(x).argsort(dim=1, descending=True).detach()
    y, target = ranked[:, 0], ranked[:, 1]  # the runner-up class is reachable inside the box
    for attack in (PGD(0.5, steps=100, loss="margin", seed=0), PGD(2.0, norm="l2", steps=50, seed=0),
                   MIFGSM(1.0, steps=30), PGD(8.0, norm="l1", steps=100, seed=0)):
        result = attack(clf, x, y, target=target)
        assert bool(result.success.all()), type(attack).__name__
        assert torch.equal(result.adv_pred, target)


def test_single_step_variants_and_bim_respect_the_ball():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(8, 1, 4, 4)
    y = torch.randint(0, 3, (8,))
    for attack in (FGSMRandomStart(0.1, seed=0), BIM(0.1), MIFGSM(0.5, norm="l2")):
        result = attack(model, x, y)
        assert bool(result.threat.contains(result.adv, x).all())


def test_random_start_is_seeded():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(8, 1, 4, 4)
    y = torch.randint(0, 3, (8,))
    a = PGD(0.1, steps=1, alpha=0.01, seed=5, early_stop=False).generate(model, x, y)
    b = PGD(0.1, steps=1, alpha=0.01, seed=5, early_stop=False).generate(model, x, y)
    c = PGD(0.1, steps=1, alpha=0.01, seed=6, early_stop=False).generate(model, x, y)
    assert torch.equal(a, b) and not torch.equal(a, c)
