"""Threat model: projections stay in the eps-ball and the bounds, random starts too."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from parry.threat import ThreatModel, canonical_norm, flat_norm, project_l1_ball

norms = st.sampled_from(["linf", "l2", "l1", "l0"])
dtypes = st.sampled_from([torch.float32, torch.float64])
shapes = st.sampled_from([(3, 5), (2, 1, 4, 4), (4, 3, 2, 2), (1, 2, 3, 4, 2)])
eps_values = st.floats(min_value=0.0, max_value=3.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(norm=norms, eps=eps_values, shape=shapes, dtype=dtypes, seed=st.integers(0, 2**16))
def test_project_and_random_init_stay_in_ball_and_bounds(norm, eps, shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype)
    far = x + 5 * torch.randn(shape, generator=g, dtype=dtype)
    threat = ThreatModel(norm, eps)
    for candidate in (threat.project(far, x), threat.random_init(x, g)):
        assert candidate.dtype == dtype
        assert bool(threat.contains(candidate, x).all())
        assert candidate.min() >= 0 and candidate.max() <= 1


@settings(max_examples=30, deadline=None)
@given(norm=norms, shape=shapes, seed=st.integers(0, 2**16))
def test_per_sample_eps(norm, shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    eps = torch.rand(shape[0], generator=g)
    threat = ThreatModel(norm, eps)
    adv = threat.project(x + torch.randn(shape, generator=g), x)
    assert bool((flat_norm(adv - x, norm) <= eps * (1 + 1e-5) + 1e-6).all())


def test_project_is_identity_inside_the_ball():
    x = torch.full((2, 10), 0.5)
    inside = x + 0.01
    for norm in ("linf", "l2", "l1"):
        assert torch.allclose(ThreatModel(norm, 1.0).project(inside, x), inside)


def test_l1_projection_matches_bruteforce_solution():
    # For a vector with equal magnitudes the projection shrinks all coordinates equally.
    delta = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    proj = project_l1_ball(delta, torch.tensor([2.0]))
    assert torch.allclose(proj, torch.tensor([[0.5, -0.5, 0.5, -0.5]]))
    # Projection of (3, 1) onto the unit L1 ball is (1, 0).
    proj = project_l1_ball(torch.tensor([[3.0, 1.0]]), torch.tensor([1.0]))
    assert torch.allclose(proj, torch.tensor([[1.0, 0.0]]))


def test_l1_projection_is_the_closest_point_among_random_feasible_points():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, 6, generator=g) * 2
    p = project_l1_ball(v, torch.tensor([1.0]))
    assert math.isclose(float(p.abs().sum()), 1.0, rel_tol=1e-5)
    best = float((p - v).norm())
    for _ in range(2000):
        q = torch.randn(1, 6, generator=g)
        q = q / q.abs().sum() * float(torch.rand(1, generator=g))
        assert float((q - v).norm()) >= best - 1e-6


def test_l0_projection_keeps_the_largest_coordinates():
    delta = torch.tensor([[0.1, -0.5, 0.3, 0.0, -0.2]])
    proj = ThreatModel("l0", 2.0, bounds=(-1, 1)).project(delta, torch.zeros_like(delta))
    assert torch.equal(proj, torch.tensor([[0.0, -0.5, 0.3, 0.0, 0.0]]))


@pytest.mark.parametrize("norm,bad", [("l3", "norm"), ("", "norm"), (True, "norm")])
def test_unknown_norm_is_refused(norm, bad):
    with pytest.raises(ValueError, match=bad):
        ThreatModel(norm, 0.1)


@pytest.mark.parametrize("eps", [-0.1, float("nan"), torch.tensor([[0.1]]), torch.tensor([-1.0])])
def test_bad_eps_is_refused(eps):
    with pytest.raises(ValueError, match="eps"):
        ThreatModel("linf", eps)


def test_bad_bounds_and_eps_count():
    with pytest.raises(ValueError, match="bounds"):
        ThreatModel("l2", 0.1, bounds=(1, 0))
    with pytest.raises(ValueError, match="eps"):
        ThreatModel("l2", torch.tensor([0.1, 0.2])).eps_tensor(torch.rand(3, 4))


def test_norm_aliases():
    assert canonical_norm(float("inf")) == "linf"
    assert canonical_norm("Linf") == "linf"
    assert canonical_norm(2) == "l2"
    assert canonical_norm("L1") == "l1"


def test_infinite_eps_leaves_only_the_box():
    x = torch.full((2, 1, 3, 3), 0.5)
    far = x + torch.randn(2, 1, 3, 3) * 3
    for norm in ("linf", "l2", "l1", "l0"):
        threat = ThreatModel(norm, float("inf"))
        assert torch.equal(threat.project(far, x), far.clamp(0, 1))
        with pytest.raises(ValueError, match="finite radius"):
            threat.random_init(x)
