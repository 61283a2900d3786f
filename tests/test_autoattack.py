"""The AutoAttack presets (Croce & Hein, ICML 2020): their budgets, and agreement of the whole
'standard' ensemble with torchattacks' implementations configured to the paper's budgets.

torchattacks' own ``AutoAttack`` class runs APGD, APGD-T and FAB with torchattacks' default
of 10 iterations, not the paper's 100; the reference here is therefore torchattacks'
``MultiAttack`` over APGD-CE, APGD-T, FAB-T (100 iterations, 9 target classes) and Square
(5,000 queries), which is the paper's 'standard' version.
"""

from __future__ import annotations

import time

import pytest
import torch

from parry.attacks import APGD, APGDT, FABT, Square
from parry.attacks.autoattack import autoattack

EPS = 0.3


def test_standard_preset_has_the_papers_budgets():
    ensemble = autoattack(EPS, "linf")
    assert [s.name for s in ensemble.stages] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    kinds = [type(s.attack) for s in ensemble.stages]
    assert kinds == [APGD, APGDT, FABT, Square]
    params = [s.attack.params() for s in ensemble.stages]
    assert params[0]["steps"] == 100 and params[0]["loss"] == "ce" and params[0]["restarts"] == 1
    assert params[1]["steps"] == 100 and params[1]["n_target_classes"] == 9 and params[1]["loss"] == "dlr"
    assert params[2]["steps"] == 100 and params[2]["n_target_classes"] == 9
    assert params[3]["queries"] == 5000 and params[3]["p_init"] == 0.8
    assert all(p["eps"] == EPS and p["norm"] == "linf" for p in params)
    assert ensemble.params()["preset"] == "standard"


def test_l2_standard_and_fast_and_l1_presets():
    assert [s.name for s in autoattack(1.5, "l2").stages] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    fast = autoattack(EPS, "linf", preset="fast")
    assert [s.name for s in fast.stages] == ["apgd-ce", "apgd-t"] and fast.params()["preset"] == "fast"
    assert all(s.attack.params()["steps"] < 100 for s in fast.stages)   # clearly weaker, labelled so
    # Square has no L1 version: the L1 standard preset runs the others
    assert [s.name for s in autoattack(10.0, "l1").stages] == ["apgd-ce", "apgd-t", "fab-t"]


@pytest.mark.parametrize("kwargs,name", [({"preset": "strong"}, "preset"), ({"batch_size": 0}, "batch_size")])
def test_bad_arguments_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        autoattack(EPS, "linf", **kwargs)


def test_bad_eps_is_refused():
    with pytest.raises(ValueError, match="eps"):
        autoattack(-0.1, "linf")


# ---------------------------------------------------------------------------------------------
# Agreement of the full ensemble with the reference
# ---------------------------------------------------------------------------------------------

def _reference_standard(torchattacks, model, seed):
    """torchattacks' attacks with AutoAttack-standard's budgets, chained on the survivors."""
    common = dict(norm="Linf", eps=EPS, seed=seed)
    return torchattacks.MultiAttack([
        torchattacks.APGD(model, steps=100, n_restarts=1, loss="ce", **common),
        torchattacks.APGDT(model, steps=100, n_restarts=1, n_classes=10, **common),
        torchattacks.FAB(model, steps=100, n_restarts=1, multi_targeted=True, n_classes=10, **common),
        torchattacks.Square(model, n_queries=5000, n_restarts=1, p_init=0.8, **common),
    ])


def _agreement(model, mnist_test, n, seed=0):
    torchattacks = pytest.importorskip(
        "torchattacks", reason="reference torchattacks not installed (make test installs it with --no-deps)")
    x, y = mnist_test.spread(n).tensors()
    start = time.perf_counter()
    ours = autoattack(EPS, "linf", preset="standard", seed=seed)(model, x, y)
    ours_s = time.perf_counter() - start
    assert bool(ours.result.threat.contains(ours.result.adv, x).all())
    model.eval()
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        start = time.perf_counter()
        adv = _reference_standard(torchattacks, model, seed)(x, y)
        ref_s = time.perf_counter() - start
        assert float((adv.detach() - x).abs().amax()) <= EPS + 1e-5
        with torch.no_grad():
            ref = float((model(adv).argmax(1) == y).float().mean())
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    stages = ", ".join(f"{row['stage']} {row['accuracy']:.3f}" for row in ours.table())
    print(f"\nAutoAttack standard Linf {EPS} on {n} points, seed {seed}: parry {ours.robust_accuracy:.3f} ({ours_s:.0f} s; "
          f"{stages}), torchattacks {ref:.3f} ({ref_s:.0f} s)")
    return ours.robust_accuracy, ref


def test_standard_agrees_with_torchattacks(robust_mnist_cnn, mnist_test):
    parry, ref = _agreement(robust_mnist_cnn, mnist_test, 100)
    assert ref - 0.03 <= parry <= ref + 0.02


@pytest.mark.slow
def test_standard_agrees_with_torchattacks_500_points(robust_mnist_cnn, mnist_test):
    # On this model a single seed moves either implementation by up to 2 points: a few borderline
    # points fall to some random starts only (measured at stop 14, the full ensemble: Parry
    # 33.2 / 31.2 / 33.0 %, torchattacks 32.4 / 32.0 / 33.4 % with seeds 0 / 1 / 2). The means over
    # three seeds are compared.
    runs = [_agreement(robust_mnist_cnn, mnist_test, 500, seed) for seed in (0, 1, 2)]
    parry, ref = (sum(r[i] for r in runs) / len(runs) for i in (0, 1))
    print(f"means over seeds 0-2: parry {parry:.4f}, torchattacks {ref:.4f}")
    assert abs(parry - ref) <= 0.01
