"""FAB and FAB-T (Croce & Hein, ICML 2020): projections, minimum norms, eps semantics, agreement."""

from __future__ import annotations

import time

import pytest
import torch

from parry.attacks import PGD
from parry.attacks.minnorm.fab import FAB, FABT
from parry.attacks.minnorm.fab_projection import project_hyperplane_box

# ---------------------------------------------------------------------------------------------
# The box-constrained projection onto a hyperplane (exact, batched)
# ---------------------------------------------------------------------------------------------


def _problems(m: int = 60, dim: int = 12, seed: int = 0, low: float = 0.0, high: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    t = low + (high - low) * torch.rand(m, dim, generator=g, dtype=torch.float64)
    w = torch.randn(m, dim, generator=g, dtype=torch.float64)
    w[:, :2] = 0.0                                   # coordinates the hyperplane ignores
    w[::7] *= torch.rand(m, dim, generator=g, dtype=torch.float64)[::7] < 0.3  # sparse normals
    z = low + (high - low) * torch.rand(m, dim, generator=g, dtype=torch.float64)
    b = (w * z).sum(1)                               # a hyperplane through a point of the box ...
    b[::5] += 50.0                                   # ... or one the box cannot reach
    return t, w, b


def _lp_min_norm(t, w, b, norm, low, high):
    """Reference: the minimal Linf / L1 step by linear programming (scipy)."""
    optimize = pytest.importorskip("scipy.optimize")
    import numpy as np

    dim = t.shape[0]
    t, w, b = t.numpy(), w.numpy(), float(b)
    if norm == "linf":   # variables (d, r): min r, -r <= d <= r
        c = np.r_[np.zeros(dim), 1.0]
        a_ub = np.block([[np.eye(dim), -np.ones((dim, 1))], [-np.eye(dim), -np.ones((dim, 1))]])
        a_eq = np.r_[w, 0.0][None]
        bounds = [(low - ti, high - ti) for ti in t] + [(0, None)]
    else:                # variables (d+, d-) >= 0: min sum d+ + d-
        c = np.ones(2 * dim)
        a_ub, a_eq = None, np.r_[w, -w][None]
        bounds = [(0, high - ti) for ti in t] + [(0, ti - low) for ti in t]
    res = optimize.linprog(c, A_ub=a_ub, b_ub=None if a_ub is None else np.zeros(2 * dim), A_eq=a_eq,
                           b_eq=[b - w @ t], bounds=bounds, method="highs")
    return res.fun if res.status == 0 else None


@pytest.mark.parametrize("low,high", [(0.0, 1.0), (-1.0, 2.0)])
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_projection_is_feasible_and_minimal(norm, low, high):
    t, w, b = _problems(low=low, high=high)
    d = project_hyperplane_box(t, w, b, norm, low, high)
    z = t + d
    assert bool(((z >= low - 1e-9) & (z <= high + 1e-9)).all())
    assert bool((d[:, :2] == 0).all())               # untouched where w_i = 0
    residual = ((w * z).sum(1) - b).abs()
    reachable = torch.tensor([(w[i] * torch.where(w[i] > 0, high, low)).sum() >= b[i] - 1e-9
                              and (w[i] * torch.where(w[i] > 0, low, high)).sum() <= b[i] + 1e-9
                              for i in range(len(b))])
    assert bool((residual[reachable] < 1e-8).all())
    # out of reach: every coordinate the hyperplane uses sits on the bound nearest to it
    corner = torch.where((w * torch.sign((b - (w * t).sum(1)))[:, None]) > 0, high, low)
    far = ~reachable
    assert bool(far.any())
    used = w[far] != 0
    assert torch.allclose(z[far][used], corner[far][used].to(z.dtype))
    size = {"linf": d.abs().amax(1), "l2": d.norm(dim=1), "l1": d.abs().sum(1)}[norm]
    for i in torch.nonzero(reachable).flatten().tolist():
        if norm == "l2":   # KKT: d = clip(mu * w, box) for one scalar mu, and optimality along w
            ratio = d[i][w[i] != 0] / w[i][w[i] != 0]
            free = (z[i] > low + 1e-9) & (z[i] < high - 1e-9) & (w[i] != 0)
            if free.any():
                mu = (d[i][free] / w[i][free])
                assert torch.allclose(mu, mu[0].expand_as(mu), atol=1e-9)
                assert bool((ratio.abs() <= mu[0].abs() + 1e-9).all())
        else:
            assert size[i] == pytest.approx(_lp_min_norm(t[i], w[i], b[i], norm, low, high), abs=1e-7)


def test_projection_is_float32_safe_and_batched():
    t, w, b = _problems(m=200, dim=784)
    for norm in ("linf", "l2", "l1"):
        d32 = project_hyperplane_box(t.float(), w.float(), b.float(), norm)
        d64 = project_hyperplane_box(t, w, b, norm)
        assert torch.isfinite(d32).all()
        assert torch.allclose(d32.double(), d64, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# FAB on the undefended MNIST CNN
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def points(mnist_cnn, mnist_points):
    """12 spread test points that the undefended CNN classifies correctly."""
    x, y = mnist_points
    with torch.no_grad():
        correct = mnist_cnn(x).argmax(1) == y
    return x[correct][::20][:12], y[correct][::20][:12]


def pgd_min_eps(model, x, y, norm, high, rounds=6, steps=20):
    """Per point, the smallest radius at which PGD succeeds (bisection on a per-sample eps)."""
    lo, hi = torch.zeros(len(y)), torch.full((len(y),), high)
    for _ in range(rounds):
        mid = (lo + hi) / 2
        broken = PGD(mid, norm, steps=steps, seed=0)(model, x, y).success
        hi, lo = torch.where(broken, mid, hi), torch.where(broken, lo, mid)
    return hi


@pytest.mark.parametrize("norm,high", [("linf", 0.25), ("l2", 3.0)])
def test_fab_breaks_every_point_with_no_larger_norm_than_pgd_bisection(mnist_cnn, points, norm, high):
    x, y = points
    result = FAB(norm=norm, steps=20)(mnist_cnn, x, y)
    assert bool(result.success.all())
    fab = result.norms[norm]
    assert bool((fab > 0).all())
    pgd = pgd_min_eps(mnist_cnn, x, y, norm, high)
    assert float(fab.median()) <= 1.1 * float(pgd.median()), (fab.median(), pgd.median())
    # and FAB's points really sit close to the boundary: shrinking them by 10 % undoes (nearly) all
    with torch.no_grad():
        shrunk = mnist_cnn(x + 0.9 * (result.adv - x)).argmax(1) == y
    assert float(shrunk.float().mean()) >= 0.8


def test_fab_t_reaches_success_on_most_points(mnist_cnn, points):
    x, y = points
    result = FABT(0.3, norm="linf", steps=20)(mnist_cnn, x, y)     # AutoAttack's use: 9 targets in turn
    assert float(result.success.float().mean()) >= 0.9
    assert float(result.norms["linf"].max()) <= 0.3 + 1e-6
    g = torch.Generator().manual_seed(0)
    x, y = x[:8], y[:8]
    target = (y + torch.randint(1, 10, (len(y),), generator=g)) % 10
    targeted = FABT(norm="l2", steps=20)(mnist_cnn, x, y, target=target)
    assert float(targeted.success.float().mean()) >= 0.9
    assert bool((targeted.adv_pred[targeted.success] == target[targeted.success]).all())


# ---------------------------------------------------------------------------------------------
# eps semantics on the (cheap) robust LeNet
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 2.0), ("l1", 12.0)])
def test_with_eps_success_is_exactly_the_min_norm_within_eps(robust_mnist_cnn, mnist_points, norm, eps):
    """Restart 0 is deterministic, so FAB(eps) breaks exactly the points whose FAB(None) norm is <= eps."""
    x, y = mnist_points
    x, y = x[:30], y[:30]
    free = FAB(norm=norm, steps=10)(robust_mnist_cnn, x, y)
    bounded = FAB(eps, norm=norm, steps=10)(robust_mnist_cnn, x, y)
    assert bool(bounded.threat.contains(bounded.adv, x).all())
    within = free.success & (free.norms[norm] <= eps)
    assert torch.equal(bounded.success, within)
    assert bool((bounded.norms[norm][~bounded.success] == 0).all())   # failures are reported as x
    broken = int((within & free.clean_correct).sum())
    assert 0 < broken < int(free.clean_correct.sum())                   # the comparison means something


def test_restarts_only_improve_and_are_seeded(robust_mnist_cnn, mnist_points):
    x, y = mnist_points
    x, y = x[:20], y[:20]
    one = FAB(norm="l2", steps=8, seed=0)(robust_mnist_cnn, x, y)
    three = FAB(norm="l2", steps=8, restarts=3, seed=0)(robust_mnist_cnn, x, y)
    again = FAB(norm="l2", steps=8, restarts=3, seed=0)(robust_mnist_cnn, x, y)
    assert torch.equal(three.adv, again.adv)
    ok = one.success
    assert bool(three.success[ok].all())
    assert bool((three.norms["l2"][ok] <= one.norms["l2"][ok] + 1e-6).all())


def test_generate_keeps_every_sample_and_respects_eps(robust_mnist_cnn, mnist_points):
    x, y = mnist_points
    x, y = x[:16], y[:16]
    adv = FABT(0.3, steps=5, n_target_classes=2, early_stop=False).generate(robust_mnist_cnn, x, y)
    assert adv.shape == x.shape
    assert float((adv - x).abs().amax()) <= 0.3 + 1e-6
    assert 0.0 <= float(adv.min()) and float(adv.max()) <= 1.0


def test_bad_arguments_are_refused():
    for kwargs, name in [({"steps": 0}, "steps"), ({"restarts": 0}, "restarts"), ({"alpha_max": 1.5}, "alpha_max"),
                         ({"eta": 0.5}, "eta"), ({"beta": 0.0}, "beta"), ({"beta": 1.2}, "beta"),
                         ({"eta": float("inf")}, "eta"), ({"steps": 2.5}, "steps")]:
        with pytest.raises(ValueError, match=name):
            FAB(**kwargs)
    with pytest.raises(ValueError, match="n_target_classes"):
        FABT(n_target_classes=0)
    with pytest.raises(ValueError, match="eps"):
        FAB(-0.1)
    with pytest.raises(ValueError, match="norm"):
        FAB(norm="l0")
    assert FAB().eps == float("inf") and FABT.requires_eps is False


def test_bad_inputs_are_refused(robust_mnist_cnn, mnist_points):
    x, y = mnist_points
    with pytest.raises(ValueError, match="target"):
        FABT(steps=1)(robust_mnist_cnn, x[:4], y[:4], target=y[:4])
    with pytest.raises(ValueError, match="x"):
        FAB(steps=1)(robust_mnist_cnn, x[:4] * 2, y[:4])


# ---------------------------------------------------------------------------------------------
# Agreement with the reference implementation (torchattacks, AutoAttack's FAB-T)
# ---------------------------------------------------------------------------------------------

def _torchattacks_robust_accuracy(model, attack, x, y):
    model.eval()
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        adv = attack(x, y)
        assert float((adv - x).abs().amax()) <= 0.3 + 1e-5
        with torch.no_grad():
            return float((model(adv).argmax(1) == y).float().mean())
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _agreement_fab_t(robust_mnist_cnn, mnist_test, n):
    torchattacks = pytest.importorskip(
        "torchattacks", reason="reference torchattacks not installed (make test installs it with --no-deps)")
    x, y = mnist_test.spread(n).tensors()
    start = time.perf_counter()
    ours = FABT(0.3, steps=100, restarts=1, n_target_classes=9, seed=0)(robust_mnist_cnn, x, y)
    ours_s = time.perf_counter() - start
    assert bool(ours.threat.contains(ours.adv, x).all())
    start = time.perf_counter()
    ref = _torchattacks_robust_accuracy(robust_mnist_cnn, torchattacks.FAB(
        robust_mnist_cnn, norm="Linf", eps=0.3, steps=100, n_restarts=1, multi_targeted=True, n_classes=10), x, y)
    ref_s = time.perf_counter() - start
    parry = float(ours.robust.float().mean())
    print(f"FAB-T Linf 0.3 on {n} points: parry {parry:.3f} ({ours_s:.0f} s), torchattacks {ref:.3f} ({ref_s:.0f} s)")
    return parry, ref


def test_fab_t_agrees_with_torchattacks(robust_mnist_cnn, mnist_test):
    parry, ref = _agreement_fab_t(robust_mnist_cnn, mnist_test, 100)   # ~20 s per implementation
    assert ref - 0.03 <= parry <= ref + 0.02


@pytest.mark.slow
def test_fab_t_agrees_with_torchattacks_500_points(robust_mnist_cnn, mnist_test):
    parry, ref = _agreement_fab_t(robust_mnist_cnn, mnist_test, 500)
    assert ref - 0.03 <= parry <= ref + 0.01
