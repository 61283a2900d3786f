"""experiments/mixing_bound.py: the mix and its survival criterion behave as stated, bad input is refused."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from parry.evaluate import ResultsStore
from parry.zoo import make_classifier, save_checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "mixing_bound.py"
_spec = importlib.util.spec_from_file_location("mixing_bound", SCRIPT)
mixing_bound = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mixing_bound)


def _logits(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z_robust, z_standard = torch.randn(n, 10, generator=g) * 3, torch.randn(n, 10, generator=g) * 3
    return z_robust, z_standard, torch.randint(0, 10, (n,), generator=g)


def test_mix_is_a_distribution_and_follows_its_weight():
    z_robust, z_standard, _ = _logits()
    mix = mixing_bound.mixed_probs(z_robust, z_standard, 0.7, 2.0)
    assert torch.allclose(mix.sum(dim=1), torch.ones(len(mix)), atol=1e-6) and (mix >= 0).all()
    assert torch.equal(mixing_bound.mixed_probs(z_robust, z_standard, 1.0, 2.0).argmax(1), z_robust.argmax(1))


def test_bound_never_exceeds_the_robust_members_own_robustness():
    z_robust, _, y = _logits()
    correct = mixing_bound.logit_margin(z_robust, y) > 0
    survived = [mixing_bound.survives_any_standard(z_robust, y, a, 4.0) for a in (0.5, 0.6, 0.8, 0.95, 1.0)]
    assert not survived[0].any()  # at a = 0.5 the standard member can always win
    for weaker, stronger in zip(survived, survived[1:]):
        assert (weaker <= stronger).all()  # more weight on R never loses a point
        assert (stronger <= correct).all()  # a point R gets wrong never survives
    assert torch.equal(survived[-1], correct)  # at a = 1 the bound is R's own margin


def test_bound_is_met_by_the_worst_standard_output():
    z_robust, _, y = _logits()
    weight, temperature = 0.8, 2.0
    probs = torch.softmax(temperature * z_robust, dim=1)
    strongest_wrong = probs.scatter(1, y[:, None], -1.0).argmax(dim=1)
    worst_standard = torch.full_like(z_robust, -1e4).scatter(1, strongest_wrong[:, None], 1e4)
    fooled = mixing_bound.mixed_probs(z_robust, worst_standard, weight, temperature).argmax(1) != y
    assert torch.equal(~fooled, mixing_bound.survives_any_standard(z_robust, y, weight, temperature))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("flag,value,message", [
    ("--weights", "0.5", "--weights: every value must lie in (0.5, 1]"),
    ("--weights", "0.9,1.2", "--weights: every value must lie in (0.5, 1]"),
    ("--temperatures", "0", "--temperatures: every value must lie in (0, 100]"),
])
def test_refuses_bad_arguments(flag, value, message):
    result = _run("--store", "s", "--robust", "r", "--standard", "s", flag, value)
    assert result.returncode == 2 and message in result.stderr


def test_refuses_a_store_without_the_robust_members_autoattack(tmp_path):
    torch.manual_seed(0)
    for stem in ("r", "s"):
        save_checkpoint(tmp_path / stem / "best", make_classifier("lenet", "mnist"), architecture="lenet",
                        arch_kwargs={}, dataset="mnist", recipe={}, metrics={})
    store = tmp_path / "results.sqlite"
    ResultsStore(store).close()
    result = _run("--store", str(store), "--robust", str(tmp_path / "r" / "best"),
                  "--standard", str(tmp_path / "s" / "best"))
    assert result.returncode == 2 and "expected one series of autoattack-standard for r/best, found 0" in result.stderr
