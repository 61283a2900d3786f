"""APGD and APGD-T (Croce & Hein, ICML 2020): schedule, DLR loss, threat model, early exit,
agreement with the torchattacks reference on an adversarially trained MNIST model."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from parry.attacks.base import RunContext
from parry.attacks.gradient.apgd import APGD, APGDT
from parry.attacks.gradient.apgd_schedule import (checkpoint_fractions, checkpoints, l1_checkpoints,
                                                  l1_sparse_step, project_l1_box)
from parry.attacks.gradient.pgd import PGD
from parry.attacks.losses import LOSSES, dlr_loss, get_loss
from parry.classifier import Classifier
from parry.threat import ThreatModel

# ---------------------------------------------------------------------------------------------
# The step-size schedule
# ---------------------------------------------------------------------------------------------


def test_checkpoint_fractions_follow_the_papers_recurrence():
    p = checkpoint_fractions()
    assert p == pytest.approx([0.0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99])
    for j in range(1, len(p) - 1):
        assert p[j + 1] - p[j] == pytest.approx(max(p[j] - p[j - 1] - 0.03, 0.06))
    assert p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) > 1


@pytest.mark.parametrize("steps", [1, 5, 10, 37, 50, 100, 1000])
def test_checkpoints_are_the_ceiling_of_p_times_steps(steps):
    import math

    expected = sorted({math.ceil(round(p * steps, 9)) for p in checkpoint_fractions()})
    assert checkpoints(steps) == expected
    assert checkpoints(steps)[0] == 0 and checkpoints(steps)[-1] <= steps


def test_checkpoints_at_the_autoattack_budget():
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(200) == [0, 44, 82, 114, 140, 160, 174, 186, 198]
    assert l1_checkpoints(100) == list(range(0, 101, 4))
    with pytest.raises(ValueError, match="steps"):
        checkpoints(0)


def _state(increases, best_loss, last_best, halved):
    t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    current, best = torch.zeros(len(increases), 3), torch.ones(len(increases), 3)
    return {"increases": t(increases), "best_loss": t(best_loss), "last_best": t(last_best),
            "halved": torch.tensor(halved), "step": t([0.6] * len(increases)), "current": current,
            "best": best, "grad": current.clone(), "best_grad": best.clone()}


def test_checkpoint_conditions_halve_the_step_and_restart_from_the_best_point():
    attack = APGD(0.3)
    # interval of 22 steps, rho 0.75: halve when fewer than 16.5 steps increased the loss
    # (sample 0), or when the best loss stalled and the step was not halved last time (sample 2);
    # a stalled sample that was just halved keeps its step (sample 3).
    s = _state(increases=[16, 17, 20, 20], best_loss=[1.0, 2.0, 1.0, 1.0],
               last_best=[0.5, 1.0, 1.0, 1.0], halved=[False, False, False, True])
    attack._checkpoint(s, 22)
    assert s["step"].tolist() == pytest.approx([0.3, 0.6, 0.3, 0.6])
    assert s["halved"].tolist() == [True, False, True, False]
    assert s["current"][:, 0].tolist() == [1.0, 0.0, 1.0, 0.0]  # restarted from the best point
    assert s["grad"][:, 0].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert s["increases"].tolist() == [0, 0, 0, 0]
    # rho * interval = 12 exactly: the paper's condition is strict (12 increases keep the step)
    s = _state(increases=[11, 12], best_loss=[1.0, 1.0], last_best=[0.0, 0.0], halved=[False, False])
    attack._checkpoint(s, 16)
    assert s["halved"].tolist() == [True, False]


# ---------------------------------------------------------------------------------------------
# The DLR loss
# ---------------------------------------------------------------------------------------------


def test_dlr_matches_its_formula_on_hand_computed_logits():
    z = torch.tensor([[3.0, 1.0, 2.0, 0.5], [3.0, 1.0, 2.0, 0.5]])  # sorted: 3, 2, 1, 0.5
    y = torch.tensor([0, 2])
    # untargeted: -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3)
    assert dlr_loss(z, y).tolist() == pytest.approx([-(3 - 2) / (3 - 1), -(2 - 3) / (3 - 1)])
    # targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)
    t = torch.tensor([3, 1])
    assert dlr_loss(z, y, t).tolist() == pytest.approx([-(3 - 0.5) / (3 - 0.75), -(2 - 1) / (3 - 0.75)])
    assert get_loss("dlr") is dlr_loss and LOSSES["dlr"] is dlr_loss


def test_dlr_is_invariant_to_shifting_and_rescaling_the_logits():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(64, 10, generator=g), torch.randint(0, 10, (64,), generator=g)
    t = (y + 1 + torch.randint(0, 9, (64,), generator=g)) % 10
    for target in (None, t):
        assert torch.allclose(dlr_loss(3.0 * z + 5.0, y, target), dlr_loss(z, y, target), atol=1e-5)
        # positive exactly when the goal is reached (misclassified / target above y)
    assert torch.equal(dlr_loss(z, y) > 0, z.argmax(1) != y)


def test_dlr_needs_enough_classes():
    with pytest.raises(ValueError, match="loss"):
        dlr_loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="loss"):
        dlr_loss(torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([1, 2]))


# ---------------------------------------------------------------------------------------------
# L1 pieces
# ---------------------------------------------------------------------------------------------


def _bisection_l1_box(d, x, eps):
    cap = torch.where(d > 0, 1 - x, x).clamp_min(0)
    size = lambda lam: torch.minimum((d.abs() - lam).clamp_min(0), cap)  # noqa: E731
    lo, hi = 0.0, float(d.abs().max())
    if float(size(0.0).sum()) <= eps:
        return d.sign() * size(0.0)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(size(mid).sum()) > eps else (lo, mid)
    return d.sign() * size(hi)


def test_l1_box_projection_is_exact():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        n = int(torch.randint(1, 60, (), generator=g))
        x = torch.rand(5, n, generator=g, dtype=torch.float64)
        x[x < 0.3] = 0  # MNIST-like: many coordinates at the bound
        d = torch.randn(5, n, generator=g, dtype=torch.float64) * 2 * float(torch.rand((), generator=g))
        eps = torch.rand(5, generator=g, dtype=torch.float64) * 0.3 * n
        eps[0] = 0.0
        p = project_l1_box(d, x, eps, (0.0, 1.0))
        for i in range(5):
            assert torch.allclose(p[i], _bisection_l1_box(d[i], x[i], float(eps[i])), atol=1e-8)
        assert (p.abs().sum(1) <= eps + 1e-9).all()
        assert ((x + p) >= 0).all() and ((x + p) <= 1 + 1e-12).all()


def test_l1_sparse_step_moves_the_top_fraction_with_unit_l1_norm():
    grad = torch.tensor([[0.1, -5.0, 0.3, 2.0, -0.2, 0.0, 1.0, -0.05, 0.4, 0.6]])
    step = l1_sparse_step(grad, torch.tensor([0.2]))  # threshold: the 8th smallest |g| -> top 2
    assert step.tolist() == [[0, -0.5, 0, 0.5, 0, 0, 0, 0, 0, 0]]
    assert float(step.abs().sum()) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"eps": -0.1}, "eps"), ({"norm": "l3"}, "norm"), ({"steps": 0}, "steps"), ({"restarts": 0}, "restarts"),
    ({"loss": "hinge"}, "loss"), ({"rho": 1.5}, "rho"), ({"rho": "0.5"}, "rho"), ({"steps": 2.5}, "steps"),
])
def test_bad_arguments_raise_naming_them(kwargs, name):
    args = {"eps": 0.3, **kwargs}
    with pytest.raises(ValueError, match=name):
        APGD(**args)


def test_apgdt_bad_arguments_and_params():
    with pytest.raises(ValueError, match="n_target_classes"):
        APGDT(0.3, n_target_classes=0)
    params = APGDT(0.3).params()
    assert params["steps"] == 100 and params["restarts"] == 1 and params["n_target_classes"] == 9
    assert params["loss"] == "dlr" and params["rho"] == 0.75 and params["norm"] == "linf"
    assert APGD(0.3, loss="dlr").params()["loss"] == "dlr"


# ---------------------------------------------------------------------------------------------
# Behaviour on small synthetic models (fast)
# ---------------------------------------------------------------------------------------------


def _linear_classifier(seed: int = 0, classes: int = 10, dim: int = 48) -> Classifier:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, classes))
    return Classifier(net, num_classes=classes, input_shape=(3, 4, 4))


def _points(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 4, 4, generator=g)


@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.4), ("l1", 2.0)])
def test_run_stays_inside_the_ball_and_the_box_with_per_sample_eps(norm, eps):
    clf = _linear_classifier()
    x = _points()
    y = clf(x).argmax(1)
    eps_t = torch.linspace(0.0, eps, x.shape[0])
    for attack in (APGD(eps_t, norm, steps=20, seed=0), APGDT(eps_t, norm, steps=10, n_target_classes=3, seed=0)):
        threat = ThreatModel(norm, eps_t)
        for early_stop in (True, False):
            with clf.attack_mode():
                raw = attack.run(clf, x, y, RunContext(threat, None, early_stop, torch.Generator().manual_seed(0)))
            assert bool(threat.contains(raw, x, tol=1e-5).all()), (type(attack).__name__, early_stop)
        result = attack(clf, x, y)
        assert bool(result.threat.contains(result.adv, x).all())
        assert torch.equal(result.adv[0], x[0])  # eps 0 leaves the point alone


def test_points_already_misclassified_are_left_untouched():
    clf = _linear_classifier()
    x = _points()
    pred = clf(x).argmax(1)
    y = pred.clone()
    y[::2] = (pred[::2] + 1) % 10  # every other point is already "adversarial"
    result = APGD(0.1, steps=10, seed=0)(clf, x, y)
    assert torch.equal(result.adv[::2], x[::2])
    assert bool(result.success[::2].all())
    # fixed-budget generation attacks every point
    adv = APGD(0.1, steps=10, seed=0, early_stop=False).generate(clf, x, y)
    assert bool((adv[::2] != x[::2]).flatten(1).any(1).all())


def test_early_exit_keeps_the_adversarial_point_and_agrees_with_the_full_run():
    clf = _linear_classifier()
    x = _points(128)
    y = clf(x).argmax(1)
    early = APGD(0.08, steps=30, seed=0)(clf, x, y)
    full = APGD(0.08, steps=30, seed=0, early_stop=False)(clf, x, y)
    assert 0.1 < float(early.success.float().mean()) < 0.95  # a test with both kinds of points
    # each sample's trajectory does not depend on the others: the same points fall
    assert torch.equal(early.success, full.success)
    assert early.queries < full.queries


def test_seeded_runs_are_reproducible_and_restarts_only_help():
    clf = _linear_classifier()
    x = _points(128)
    y = clf(x).argmax(1)
    a = APGD(0.06, steps=20, seed=3)(clf, x, y)
    b = APGD(0.06, steps=20, seed=3)(clf, x, y)
    assert torch.equal(a.adv, b.adv)
    more = APGD(0.06, steps=20, restarts=3, seed=3)(clf, x, y)
    assert not bool((more.robust & ~a.robust).any())  # the first restart is the same run
    assert more.queries < 3 * a.queries  # later restarts only attack the points still robust


def test_apgdt_sweeps_the_top_wrong_classes():
    clf = _linear_classifier(classes=5)
    x = _points(128)
    y = clf(x).argmax(1)
    one = APGDT(0.08, steps=20, n_target_classes=1, seed=0)(clf, x, y)
    four = APGDT(0.08, steps=20, n_target_classes=9, seed=0)(clf, x, y)  # capped at 4 wrong classes
    assert not bool((four.robust & ~one.robust).any())  # the first target is the same run
    assert four.queries > one.queries  # the other three wrong classes were attacked too
    assert torch.equal(four.success, four.adv_pred != y)  # untargeted use: success = misclassified


# ---------------------------------------------------------------------------------------------
# Undefended MNIST CNN: targeted attacks reach the target
# ---------------------------------------------------------------------------------------------


def test_targeted_apgd_reaches_the_target(mnist_cnn, mnist_points):
    x, y = mnist_points
    x, y = x[:64], y[:64]
    g = torch.Generator().manual_seed(0)
    target = (y + torch.randint(1, 10, (64,), generator=g)) % 10
    # The targeted DLR loss only pushes z_t above z_y, not above every other class, so APGD-T
    # misses a few targets that targeted CE reaches (PGD with the DLR or margin loss misses the
    # same points); measured here: CE 100 %, APGD-T 94-97 % in Linf and 95-100 % in L2.
    for attack, rate in ((APGD(0.4, loss="ce", seed=0), 0.95), (APGDT(0.4, seed=0), 0.9),
                         (APGDT(6.0, "l2", seed=0), 0.9)):
        result = attack(mnist_cnn, x, y, target=target)
        assert float(result.success.float().mean()) >= rate, attack
        assert torch.equal(result.success, result.adv_pred == target)
        assert bool(result.threat.contains(result.adv, x).all())


def test_apgd_l1_beats_pgd_l1_on_the_undefended_cnn(mnist_cnn, mnist_points):
    x, y = mnist_points
    x, y = x[:128], y[:128]
    apgd = APGD(10.0, "l1", steps=50, seed=0)(mnist_cnn, x, y)
    pgd = PGD(10.0, "l1", steps=50, seed=0)(mnist_cnn, x, y)
    print(f"L1 eps 10: APGD-L1 {_robust_accuracy(apgd):.3f}, PGD-L1 {_robust_accuracy(pgd):.3f}")
    assert bool(apgd.threat.contains(apgd.adv, x).all())
    assert _robust_accuracy(apgd) < _robust_accuracy(pgd)  # measured: 31 % vs 42 %
    assert _robust_accuracy(apgd) < 0.4


# ---------------------------------------------------------------------------------------------
# Adversarially trained LeNet: PGD comparison, convergence, agreement with torchattacks
# ---------------------------------------------------------------------------------------------

EPS = 0.3


def _robust_accuracy(result) -> float:
    return float(result.robust.float().mean())


def test_apgd_ce_is_at_least_as_strong_as_pgd40(robust_mnist_cnn, mnist_test):
    x, y = mnist_test.spread(200).tensors()  # measured: APGD-CE 35.0 %, PGD-40 58.5 %
    apgd = APGD(EPS, steps=100, loss="ce", seed=0)(robust_mnist_cnn, x, y)
    pgd = PGD(EPS, steps=40, seed=0)(robust_mnist_cnn, x, y)
    assert _robust_accuracy(apgd) <= _robust_accuracy(pgd)


@pytest.mark.slow
def test_more_iterations_help_no_more_than_they_help_the_reference(robust_mnist_cnn, mnist_points):
    """Convergence: APGD-200 gains little over APGD-100, no more than in the reference.

    The paper's "within 1 point" does not hold on this FGSM-RS LeNet for either implementation
    (measured, seeds 0 and 1: torchattacks 37.0 -> 36.4 % and 38.6 -> 35.8 %, Parry 37.6 -> 36.2 %
    and 38.2 -> 35.0 %), so the gain is compared with the reference's on the same points.
    """
    x, y = mnist_points
    r100 = _robust_accuracy(APGD(EPS, steps=100, seed=0)(robust_mnist_cnn, x, y))
    r200 = _robust_accuracy(APGD(EPS, steps=200, seed=0)(robust_mnist_cnn, x, y))
    ref100, _ = _reference("apgd-ce", robust_mnist_cnn, x, y)
    ref200, _ = _reference("apgd-ce", robust_mnist_cnn, x, y, steps=200)
    print(f"APGD-CE 100 -> 200 steps: parry {r100:.3f} -> {r200:.3f}, torchattacks {ref100:.3f} -> {ref200:.3f}")
    assert r100 - r200 <= max(ref100 - ref200, 0.0) + 0.01
    assert r100 - r200 <= 0.03


def _reference(kind: str, model, x, y, steps: int = 100, seed: int = 0) -> tuple[float, float]:
    torchattacks = pytest.importorskip(
        "torchattacks", reason="reference torchattacks not installed (make test installs it with --no-deps)")
    model.eval()
    torch.manual_seed(seed)
    if kind == "apgd-t":
        attack = torchattacks.APGDT(model, norm="Linf", eps=EPS, steps=steps, n_restarts=1, seed=seed, n_classes=10)
    else:
        attack = torchattacks.APGD(model, norm="Linf", eps=EPS, steps=steps, n_restarts=1, seed=seed,
                                   loss=kind.split("-")[1])
    start = time.perf_counter()
    adv = attack(x, y)
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).float().mean()), elapsed


def _parry(kind: str, model, x, y, seed: int = 0) -> tuple[float, float]:
    attack = APGDT(EPS, seed=seed) if kind == "apgd-t" else APGD(EPS, loss=kind.split("-")[1], seed=seed)
    result = attack(model, x, y)
    return _robust_accuracy(result), result.time_s


def _agreement(kind, model, points, n, tolerance, seeds=(0,)):
    """Robust accuracy of Parry and torchattacks, each the mean over ``seeds`` (the random start
    alone moves APGD-CE on 500 points of the FGSM-RS LeNet by up to 1.8 points in either library:
    seeds 0-4 gave 36.8 / 35.6 / 35.2 / 35.6 / 37.0 % in Parry, 35.6 / 36.0 / 35.6 / 35.4 / 37.0 % in
    torchattacks)."""
    x, y = points.spread(n).tensors() if n != 500 else points
    runs = [(_parry(kind, model, x, y, s), _reference(kind, model, x, y, seed=s)) for s in seeds]
    ours, t_ours = (sum(r[0][i] for r in runs) / len(runs) for i in (0, 1))
    ref, t_ref = (sum(r[1][i] for r in runs) / len(runs) for i in (0, 1))
    print(f"{kind} on {n} points, seeds {list(seeds)}: parry {ours:.4f} ({t_ours:.1f} s), "
          f"torchattacks {ref:.4f} ({t_ref:.1f} s)")
    assert ours <= ref + tolerance   # at least as strong as the reference, up to the noise of the random start
    assert ours >= ref - 0.03        # not implausibly stronger: a broken success check would show here


@pytest.mark.parametrize("kind", ["apgd-ce", "apgd-dlr", "apgd-t"])
def test_agrees_with_torchattacks_ci(kind, robust_mnist_cnn, mnist_test):
    _agreement(kind, robust_mnist_cnn, mnist_test, 200, 0.02)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["apgd-ce", "apgd-dlr", "apgd-t"])
def test_agrees_with_torchattacks_500_points(kind, robust_mnist_cnn, mnist_points):
    _agreement(kind, robust_mnist_cnn, mnist_points, 500, 0.01, seeds=(0, 1, 2))
