"""Metrics: definitions checked on results whose outcome is known."""

import math

import pytest
import torch
from torch import nn

from parry import Classifier, ThreatModel
from parry.attacks import FGSM, PGD
from parry.metrics import (accuracy, attack_success_rate, error_rate, norm_summary, robust_accuracy,
                           robustness_curve, summarize, wilson_interval, worst_case_accuracy,
                           worst_case_robust)
from parry.result import AttackResult


def handmade_result(clean_pred, adv_pred, y, adv, x):
    y = torch.tensor(y)
    adv_pred = torch.tensor(adv_pred)
    return AttackResult(adv=adv, y=y, target=None, clean_pred=torch.tensor(clean_pred), adv_pred=adv_pred,
                        success=adv_pred != y, norms=AttackResult.perturbation_norms(adv, x),
                        threat=ThreatModel("linf", 0.5), attack="handmade")


def test_success_rate_counts_only_points_correct_before_the_attack():
    x = torch.zeros(4, 2)
    adv = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.3], [0.0, 0.0]])
    # point 0 misclassified from the start, 1 and 2 flipped by the attack, 3 robust
    r = handmade_result([1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0], adv, x)
    assert robust_accuracy(r) == 0.25
    assert attack_success_rate(r) == pytest.approx(2 / 3)
    norms = norm_summary(r)
    assert norms["linf"]["mean"] == pytest.approx(0.2) and norms["linf"]["median"] == pytest.approx(0.1)
    assert norms["l0"]["mean"] == 1.0
    assert summarize(r)["error_rate"] == 0.75


def test_worst_case_is_per_point_and_never_above_any_component():
    x = torch.zeros(4, 2)
    a = handmade_result([0] * 4, [0, 1, 0, 0], [0] * 4, x, x)
    b = handmade_result([0] * 4, [0, 0, 1, 0], [0] * 4, x, x)
    assert torch.equal(worst_case_robust([a, b]), torch.tensor([True, False, False, True]))
    assert worst_case_accuracy([a, b]) == 0.5 <= min(robust_accuracy(a), robust_accuracy(b))
    c = handmade_result([0] * 3, [0] * 3, [0] * 3, x[:3], x[:3])
    with pytest.raises(ValueError, match="same points"):
        worst_case_robust([a, c])


def test_wilson_interval_brackets_the_estimate():
    lo, hi = wilson_interval(900, 1000)
    assert lo < 0.9 < hi and hi - lo < 0.04
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError, match="n"):
        wilson_interval(0, 0)


def test_accuracy_and_error_rate_and_curve():
    clf = Classifier(nn.Flatten(), num_classes=2)  # predicts argmax of the two input values
    x = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    y = torch.tensor([0, 1, 1])
    assert accuracy(clf, x, y) == pytest.approx(2 / 3)
    assert error_rate(clf, x, y) == pytest.approx(1 / 3)
    results = [FGSM(eps)(clf, x, y) for eps in (0.3, 0.0, 0.5)]
    curve = robustness_curve(results)
    assert [e for e, _ in curve] == [0.0, 0.3, 0.5]
    assert [a for _, a in curve] == sorted((a for _, a in curve), reverse=True)
    assert math.isclose(curve[-1][1], 0.0)


def test_concat_joins_batches():
    torch.manual_seed(0)
    clf = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), num_classes=3)
    x, y = torch.rand(10, 4), torch.randint(0, 3, (10,))
    parts = [PGD(0.2, steps=3, seed=0)(clf, xb, yb) for xb, yb in zip(x.split(4), y.split(4))]
    joined = AttackResult.concat(parts)
    assert len(joined) == 10 and joined.queries == sum(p.queries for p in parts)
    assert torch.equal(joined.adv, torch.cat([p.adv for p in parts]))
