"""Minimum-norm attacks (C&W L2, DeepFool, FMN, DDN) against the undefended MNIST CNN.

The expensive attack runs happen once per module (fixtures) and several tests read them.
CI-sized runs use 100 of the spread test points; the 500-point agreement runs are slow.
"""

from __future__ import annotations

import time

import pytest
import torch

from parry.attacks import PGD
from parry.attacks.minnorm.cw import CarliniWagnerL2
from parry.attacks.minnorm.ddn import DDN
from parry.attacks.minnorm.deepfool import DeepFool
from parry.attacks.minnorm.fmn import FMN, mid_point, project_ball
from parry.threat import flat_norm

N_POINTS = 100
# A C&W budget that converges on this CNN within a CI run (about 110 Adam steps with abort_early;
# the defaults, 9 x 10,000 steps, agree with Foolbox just as well but take many minutes).
# Both libraries always get the same parameters.
CW_CI = dict(binary_search_steps=4, steps=50, stepsize=0.3, initial_const=1e-2)

# name -> (attack factory, norm, number of the 100 points it runs on)
MIN_NORM_ATTACKS = {
    "cw-l2": (lambda: CarliniWagnerL2(**CW_CI), "l2", N_POINTS),
    "cw-l2-bf16": (lambda: CarliniWagnerL2(**CW_CI, precision="bf16"), "l2", N_POINTS),
    "deepfool-l2": (lambda: DeepFool(norm="l2"), "l2", N_POINTS),
    "deepfool-linf": (lambda: DeepFool(norm="linf"), "linf", N_POINTS),
    "ddn": (lambda: DDN(), "l2", N_POINTS),
    "fmn-l2": (lambda: FMN(norm="l2"), "l2", N_POINTS),
    "fmn-linf": (lambda: FMN(norm="linf"), "linf", 50),
    "fmn-l1": (lambda: FMN(norm="l1"), "l1", 50),
    "fmn-l0": (lambda: FMN(norm="l0"), "l0", 50),
}


@pytest.fixture(scope="module")
def points(mnist_points):
    x, y = mnist_points
    return x[:N_POINTS], y[:N_POINTS]


@pytest.fixture(scope="module")
def min_norm_results(mnist_cnn, points):
    """Every attack of MIN_NORM_ATTACKS run once (eps=None) on the first n of the points, with wall times."""
    x, y = points
    out = {}
    for key, (make, _, n) in MIN_NORM_ATTACKS.items():
        start = time.perf_counter()
        result = make()(mnist_cnn, x[:n], y[:n])
        out[key] = (result, time.perf_counter() - start)
    return out


def _median(values: torch.Tensor) -> float:
    return float(values.float().median())


# --------------------------------------------------------------------------- minimum norm, box
@pytest.mark.parametrize("key", sorted(MIN_NORM_ATTACKS))
def test_every_point_is_found_inside_the_box(min_norm_results, points, key):
    _, norm, n = MIN_NORM_ATTACKS[key]
    x, y = points[0][:n], points[1][:n]
    result, _ = min_norm_results[key]
    assert bool(result.success.all()), f"{key}: {int((~result.success).sum())} points not found"
    assert float(result.adv.min()) >= 0.0 and float(result.adv.max()) <= 1.0
    assert result.threat.norm == norm and result.threat.eps == float("inf")
    # misclassified points are found with norm 0; the others need a real perturbation
    wrong = result.clean_pred != y
    assert bool((result.norms[norm][wrong] == 0).all())
    assert bool((result.norms[norm][~wrong] > 0).all())
    assert torch.allclose(result.norms[norm], flat_norm(result.adv - x, norm))


def test_cw_bf16_finds_what_fp32_finds(min_norm_results):
    """bf16 gradient passes change the trajectory, not the quality: every point found (and
    checked in fp32 by the base, see test_every_point_is_found_inside_the_box), median L2
    within 2 % of the fp32 run's."""
    fp32 = _median(min_norm_results["cw-l2"][0].norms["l2"])
    bf16 = _median(min_norm_results["cw-l2-bf16"][0].norms["l2"])
    print(f"C&W median L2: fp32 {fp32:.4f}, bf16 {bf16:.4f}")
    assert abs(bf16 - fp32) <= 0.02 * fp32


def test_cw_bf16_keeps_only_candidates_fp32_confirms(mnist_cnn, points, min_norm_results):
    """The bf16 path's verification: pending candidates go to the result only where the fp32
    model confirms them. Here three real adversarials (the fp32 run's) and three clean inputs
    flagged adversarial, as a wrong bf16 verdict would flag them: only the first three stay."""
    from parry.attacks.base import RunContext
    from parry.attacks.minnorm.common import BestTracker

    found = min_norm_results["cw-l2"][0]
    idx = (found.success & found.clean_correct).nonzero().squeeze(1)[:6]   # found, and correct when clean
    x, y, adv = points[0][idx], points[1][idx], found.adv[idx]
    candidates = torch.cat([adv[:3], x[3:]])
    pending, best = BestTracker(x, "l2"), BestTracker(x, "l2")
    pending.update(candidates, torch.ones(6, dtype=torch.bool), norms=torch.full((6,), 0.5))
    ctx = RunContext(threat=None, target=None, early_stop=True, generator=None)
    with mnist_cnn.attack_mode():
        CarliniWagnerL2(precision="bf16")._verify(mnist_cnn, pending, best, y, ctx)
    assert torch.equal(best.found, torch.tensor([True] * 3 + [False] * 3))
    assert torch.equal(best.result()[:3], adv[:3]) and torch.equal(best.result()[3:], x[3:])
    assert not bool(pending.found.any())


def test_misclassified_points_count_as_found_with_norm_zero(mnist_cnn, points):
    x, y = points[0][:8], points[1][:8].clone()
    y[::2] = (y[::2] + 1) % 10  # wrong labels: already "adversarial"
    for attack in (DDN(steps=10), FMN(norm="linf", steps=10), DeepFool(), CarliniWagnerL2(steps=5,
                                                                                           binary_search_steps=1)):
        result = attack(mnist_cnn, x, y)
        pred = result.clean_pred
        assert bool((result.norms["l2"][pred != y] == 0).all()), type(attack).__name__
        assert bool(result.success[pred != y].all())


def test_norm_aware_results_make_sense_across_norms(min_norm_results):
    # FMN-L0 changes far fewer pixels than the dense L2 attacks; FMN-Linf has the smallest Linf.
    def median(key, norm, n=50):
        return _median(min_norm_results[key][0].norms[norm][:n])

    assert median("fmn-l0", "l0") < 0.25 * median("fmn-l2", "l0")
    assert median("fmn-linf", "linf") <= 1.05 * median("deepfool-linf", "linf")
    assert median("fmn-linf", "linf") < median("fmn-l2", "linf")
    assert median("fmn-l1", "l1") < median("fmn-l2", "l1")


# --------------------------------------------------------------------------- minimality
def _pgd_bisection(model, x, y, rounds=7, high=5.0, steps=25):
    """Per point, the smallest L2 radius at which PGD-L2 finds an adversarial (bisection)."""
    lo = torch.zeros(x.shape[0])
    hi = torch.full((x.shape[0],), high)
    for _ in range(rounds):
        mid = (lo + hi) / 2
        found = PGD(mid, "l2", steps=steps, alpha=None, random_start=False, loss="margin", seed=0)(model, x, y).success
        hi = torch.where(found, mid, hi)
        lo = torch.where(found, lo, mid)
    return hi


def test_l2_norms_are_close_to_a_pgd_bisection_and_to_cw(mnist_cnn, points, min_norm_results):
    x, y = points
    idx = torch.arange(0, N_POINTS, 10)  # 10 points
    correct = min_norm_results["cw-l2"][0].clean_correct[idx]
    idx = idx[correct]
    bisection = _median(_pgd_bisection(mnist_cnn, x[idx], y[idx]))
    medians = {key: _median(min_norm_results[key][0].norms["l2"][idx])
               for key in ("cw-l2", "ddn", "fmn-l2", "deepfool-l2")}
    print(f"\nL2 medians on {idx.numel()} points: PGD bisection {bisection:.3f}, "
          + ", ".join(f"{k} {v:.3f}" for k, v in medians.items()))
    for key, median in medians.items():
        assert median <= 1.3 * bisection, (key, median, bisection)
    cw = _median(min_norm_results["cw-l2"][0].norms["l2"])
    for key in ("ddn", "fmn-l2"):
        median = _median(min_norm_results[key][0].norms["l2"])
        print(f"{key} median {median:.3f} vs C&W {cw:.3f} on {N_POINTS} points")
        assert 0.8 * cw <= median <= 1.2 * cw, (key, median, cw)


# --------------------------------------------------------------------------- with eps
@pytest.mark.parametrize("make,norm,eps", [
    (lambda e: CarliniWagnerL2(e, **CW_CI), "l2", 1.4),
    (lambda e: DeepFool(e, "linf"), "linf", 0.1),
    (lambda e: DDN(e, steps=50), "l2", 1.4),
    (lambda e: FMN(e, "l1", steps=50), "l1", 8.0),
    (lambda e: FMN(e, "l0", steps=50), "l0", 8.0),
])
def test_success_with_eps_implies_norm_within_eps(mnist_cnn, points, make, norm, eps):
    x, y = points[0][:20], points[1][:20]
    result = make(eps)(mnist_cnn, x, y)
    assert result.threat.norm == norm and result.threat.eps == eps
    assert bool(result.threat.contains(result.adv, x).all())
    assert bool((result.norms[norm][result.success] <= eps * (1 + 1e-5) + 1e-6).all())
    rate = float(result.success[result.clean_correct].float().mean())
    assert 0.0 < rate < 1.0  # radii chosen near the median minimal norm: a non-trivial split


def test_per_sample_eps_is_respected(mnist_cnn, points):
    x, y = points[0][:20], points[1][:20]
    eps = torch.linspace(0.2, 3.0, 20)
    result = FMN(eps, "l2", steps=50)(mnist_cnn, x, y)
    assert bool((result.norms["l2"] <= eps * (1 + 1e-5)).all())
    assert bool(result.success[-5:].all()) and not bool(result.success[:3][result.clean_correct[:3]].any())


# --------------------------------------------------------------------------- targeted
@pytest.mark.parametrize("key", ["cw-l2", "cw-l2-bf16", "ddn", "fmn-l2", "fmn-linf", "fmn-l1"])
def test_targeted_versions_reach_the_target(mnist_cnn, points, min_norm_results, key):
    x, y = points[0][:10], points[1][:10]
    g = torch.Generator().manual_seed(0)
    target = (y + torch.randint(1, 10, (10,), generator=g)) % 10
    make, norm, _ = MIN_NORM_ATTACKS[key]
    result = make()(mnist_cnn, x, y, target=target)
    assert bool(result.success.all()) and torch.equal(result.adv_pred, target)
    assert float(result.adv.min()) >= 0.0 and float(result.adv.max()) <= 1.0
    # reaching one given class takes at least the untargeted minimum (same attack, same points)
    untargeted = min_norm_results[key][0].norms[norm][:10]
    assert _median(result.norms[norm]) >= 0.95 * _median(untargeted)


def test_deepfool_refuses_a_target(mnist_cnn, points):
    x, y = points[0][:4], points[1][:4]
    with pytest.raises(ValueError, match="target"):
        DeepFool()(mnist_cnn, x, y, target=(y + 1) % 10)


def test_fmn_init_attack_starts_from_the_boundary(mnist_cnn, points):
    x, y = points[0][:10], points[1][:10]
    plain = FMN(norm="l2", steps=20)(mnist_cnn, x, y)
    warm = FMN(norm="l2", steps=20, init_attack=DeepFool())(mnist_cnn, x, y)
    assert bool(warm.success.all())
    assert _median(warm.norms["l2"]) <= 1.05 * _median(plain.norms["l2"])
    assert warm.params["init_attack"]["attack"] == "DeepFool"


def test_ddn_quantised_outputs_lie_on_the_grid(mnist_cnn, points):
    x, y = points[0][:10], points[1][:10]
    levels = 256
    x = (x * (levels - 1)).round() / (levels - 1)
    result = DDN(steps=50, levels=levels)(mnist_cnn, x, y)
    grid = result.adv * (levels - 1)
    assert torch.allclose(grid, grid.round(), atol=1e-3)
    assert float(result.success.float().mean()) >= 0.9


# --------------------------------------------------------------------------- helpers
def test_fmn_projections_and_mid_points():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(4, 1, 5, 5, generator=g)
    eps = torch.tensor([0.5, 1.0, 2.0, 100.0])
    for norm in ("l2", "linf", "l1"):
        projected = project_ball(delta, eps, norm)
        assert bool((flat_norm(projected, norm) <= eps * (1 + 1e-5)).all()), norm
    assert torch.equal(flat_norm(project_ball(delta, torch.tensor([0.0, 3.0, 7.0, 25.0]), "l0"), "l0"),
                       torch.tensor([0.0, 3.0, 7.0, 25.0]))
    x0 = torch.rand(4, 1, 5, 5, generator=g)
    x1 = torch.rand(4, 1, 5, 5, generator=g)
    for norm in ("l2", "linf", "l1", "l0"):
        start = mid_point(x0, x1, torch.zeros(4), norm, (0.0, 1.0))
        end = mid_point(x0, x1, torch.ones(4), norm, (0.0, 1.0))
        assert torch.allclose(start, x0) and torch.allclose(end, x1), norm
        half = flat_norm(mid_point(x0, x1, torch.full((4,), 0.5), norm, (0.0, 1.0)) - x0, norm)
        assert bool((half <= flat_norm(x1 - x0, norm) + 1e-6).all()), norm


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("make,name", [
    (lambda: CarliniWagnerL2(steps=0), "steps"),
    (lambda: CarliniWagnerL2(binary_search_steps=0), "binary_search_steps"),
    (lambda: CarliniWagnerL2(stepsize=0.0), "stepsize"),
    (lambda: CarliniWagnerL2(confidence=-1.0), "confidence"),
    (lambda: CarliniWagnerL2(initial_const=0.0), "initial_const"),
    (lambda: CarliniWagnerL2(abort_early="yes"), "abort_early"),
    (lambda: CarliniWagnerL2(norm="linf"), "norm"),
    (lambda: CarliniWagnerL2(eps=-1.0), "eps"),
    (lambda: CarliniWagnerL2(precision="fp16"), "precision"),
    (lambda: DeepFool(candidates=1), "candidates"),
    (lambda: DeepFool(overshoot=-0.1), "overshoot"),
    (lambda: DeepFool(steps=0), "steps"),
    (lambda: DeepFool(norm="l1"), "norm"),
    (lambda: FMN(norm="l3"), "norm"),
    (lambda: FMN(steps=0), "steps"),
    (lambda: FMN(alpha_init=0.0), "alpha_init"),
    (lambda: FMN(alpha_final=-1.0), "alpha_final"),
    (lambda: FMN(gamma_init=1.5), "gamma_init"),
    (lambda: FMN(gamma_final=-0.1), "gamma_final"),
    (lambda: FMN(binary_search_steps=-1), "binary_search_steps"),
    (lambda: FMN(init_attack="ddn"), "init_attack"),
    (lambda: FMN(box_aware=1), "box_aware"),
    (lambda: DDN(steps=0), "steps"),
    (lambda: DDN(init_epsilon=0.0), "init_epsilon"),
    (lambda: DDN(gamma=0.0), "gamma"),
    (lambda: DDN(gamma=1.0), "gamma"),
    (lambda: DDN(levels=1), "levels"),
    (lambda: DDN(norm="linf"), "norm"),
    (lambda: DDN(eps=float("nan")), "eps"),
])
def test_bad_arguments_are_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# --------------------------------------------------------------------------- Foolbox agreement
def _foolbox_min_norms(fb, model, attack, x, y, norm):
    with model.attack_mode():
        fmodel = fb.PyTorchModel(model, bounds=(0, 1))
        start = time.perf_counter()
        _, adv, success = attack(fmodel, x, y, epsilons=None)
        elapsed = time.perf_counter() - start
    return flat_norm(adv - x, norm), success, elapsed


def _agreement(fb, model, x, y, parry_attack, fb_attack, norm, label):
    """``parry_attack``: an attack to run, or an already computed (AttackResult, seconds) on x."""
    if isinstance(parry_attack, tuple):
        ours, ours_time = parry_attack
    else:
        start = time.perf_counter()
        ours = parry_attack(model, x, y)
        ours_time = time.perf_counter() - start
    theirs, theirs_success, theirs_time = _foolbox_min_norms(fb, model, fb_attack, x, y, norm)
    # Foolbox returns a zero image where it finds nothing: compare on points both found.
    both = ours.success & theirs_success & ours.clean_correct
    ours_median, theirs_median = _median(ours.norms[norm][both]), _median(theirs[both])
    print(f"\n{label} on {x.shape[0]} points: parry median {ours_median:.4f} ({ours_time:.1f} s), "
          f"foolbox median {theirs_median:.4f} ({theirs_time:.1f} s)")
    assert bool(ours.success.all())
    assert int(both.sum()) >= 0.9 * int(ours.clean_correct.sum())
    assert ours_median <= 1.05 * theirs_median
    assert ours_median >= 0.8 * theirs_median


def test_cw_agrees_with_foolbox(mnist_cnn, points, min_norm_results):
    fb = pytest.importorskip("foolbox", reason="reference foolbox not installed (make test installs it)")
    x, y = points
    _agreement(fb, mnist_cnn, x, y, min_norm_results["cw-l2"], fb.attacks.L2CarliniWagnerAttack(**CW_CI),
               "l2", "C&W L2")


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_deepfool_agrees_with_foolbox(mnist_cnn, points, min_norm_results, norm):
    fb = pytest.importorskip("foolbox", reason="reference foolbox not installed (make test installs it)")
    x, y = points
    reference = fb.attacks.L2DeepFoolAttack() if norm == "l2" else fb.attacks.LinfDeepFoolAttack()
    _agreement(fb, mnist_cnn, x, y, min_norm_results[f"deepfool-{norm}"], reference, norm, f"DeepFool {norm}")


@pytest.mark.slow
def test_cw_and_deepfool_agree_with_foolbox_on_500_points(mnist_cnn, mnist_points):
    fb = pytest.importorskip("foolbox", reason="reference foolbox not installed (make test installs it)")
    x, y = mnist_points
    _agreement(fb, mnist_cnn, x, y, DeepFool(), fb.attacks.L2DeepFoolAttack(), "l2", "DeepFool l2")
    _agreement(fb, mnist_cnn, x, y, DeepFool(norm="linf"), fb.attacks.LinfDeepFoolAttack(), "linf",
               "DeepFool linf")
    _agreement(fb, mnist_cnn, x, y, CarliniWagnerL2(**CW_CI), fb.attacks.L2CarliniWagnerAttack(**CW_CI),
               "l2", "C&W L2")


@pytest.mark.slow
def test_cw_with_the_original_step_size_agrees_with_foolbox(mnist_cnn, mnist_points):
    fb = pytest.importorskip("foolbox", reason="reference foolbox not installed (make test installs it)")
    x, y = mnist_points[0][::25], mnist_points[1][::25]  # 20 points
    params = dict(binary_search_steps=5, steps=1000)  # the default stepsize 0.01 and initial_const 1e-3
    _agreement(fb, mnist_cnn, x, y, CarliniWagnerL2(**params), fb.attacks.L2CarliniWagnerAttack(**params), "l2",
               "C&W L2 (5 x 1000 steps, stepsize 0.01)")
