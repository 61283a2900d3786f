"""Max-pool before ReLU during attacks: the same logits and input gradients, only where safe."""

from contextlib import nullcontext

import pytest
import torch
from torch import nn

from parry import classifier
from parry.pool_relu import pool_before_relu
from parry.zoo import make_classifier


def _logits_and_input_grad(model, x):
    x = x.clone().requires_grad_(True)
    logits = model(x)
    (g,) = torch.autograd.grad((logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum(), x)
    return logits.detach(), g


@pytest.mark.parametrize("architecture, switched", [("madry-mnist", 1), ("small-cnn", 1), ("lenet", 1)])
def test_zoo_networks_give_the_same_logits_and_gradients(architecture, switched, monkeypatch):
    torch.manual_seed(0)
    clf = make_classifier(architecture, "mnist")
    x = torch.rand(16, 1, 28, 28)
    with clf.attack_mode():  # attack_mode switches it on
        got = _logits_and_input_grad(clf, x)
    monkeypatch.setattr(classifier, "pool_before_relu", lambda model: nullcontext(0))
    with clf.attack_mode():  # the rest of the fast path only
        expected = _logits_and_input_grad(clf, x)
    with pool_before_relu(clf.model) as count:
        assert count == switched
        eager = _logits_and_input_grad(clf, x)  # outside attack_mode as well
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert torch.equal(eager[0], clf(x)) and not any("forward" in vars(m) for m in clf.modules())


def test_a_non_monotone_activation_is_not_switched():
    # SiLU dips below zero, so max-pooling does not commute with it: the pairs must stay in order
    clf = make_classifier("madry-mnist", "mnist", activation="silu")
    with pool_before_relu(clf.model) as count:
        assert count == 0


def test_a_window_without_positive_values_sends_no_gradient():
    x = torch.tensor([[[[-1.0, -2.0], [-3.0, -4.0]], [[0.0, -1.0], [2.0, 1.0]]]]).requires_grad_(True)
    model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    with pool_before_relu(model) as count:
        out = model(x)
    assert count == 1
    out.sum().backward()
    assert torch.equal(out.flatten(), torch.tensor([0.0, 2.0]))
    assert torch.equal(x.grad, torch.tensor([[[[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]]]))


def test_what_could_observe_the_order_is_left_alone():
    hooked = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
    hooked[1].register_forward_hook(lambda module, args, out: None)
    indices = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    other_order = nn.Sequential(nn.MaxPool2d(2), nn.ReLU())

    class Custom(nn.Sequential):
        pass

    subclass = Custom(nn.ReLU(), nn.MaxPool2d(2))
    for model in (hooked, indices, other_order, subclass):
        with pool_before_relu(model) as count:
            assert count == 0


def test_the_forward_is_restored_when_the_body_raises():
    model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    with pytest.raises(RuntimeError, match="boom"):
        with pool_before_relu(model):
            assert "forward" in vars(model)
            raise RuntimeError("boom")
    assert "forward" not in vars(model)


def test_a_model_that_is_not_a_module_is_refused_by_name():
    with pytest.raises(TypeError, match="^model: expected an nn.Module"):
        with pool_before_relu(lambda x: x):
            pass
