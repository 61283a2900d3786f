"""Classifier wrapper: normalisation inside, modes and flags restored after attacks."""

import pytest
import torch
from torch import nn

from parry import Classifier
from parry.attacks import PGD


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.Linear(8, 3))


def test_normalisation_happens_inside_the_wrapper():
    inner = nn.Flatten()
    clf = Classifier(inner, mean=[0.5], std=[0.25])
    x = torch.rand(2, 1, 2, 2)
    assert torch.allclose(clf(x), ((x - 0.5) / 0.25).flatten(1))


def test_training_mode_and_requires_grad_are_restored_after_an_attack():
    model = small_model()
    model.train()
    model[1].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    clf = Classifier(model, num_classes=3)
    x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))
    PGD(0.1, steps=3)(clf, x, y)
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_modes_are_restored_when_the_attack_raises():
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = small_model()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            assert not self.training and not any(p.requires_grad for p in self.parameters())
            if self.calls > 2:
                raise RuntimeError("boom")
            return self.inner(x)

    model = Exploding()
    model.train()
    clf = Classifier(model, num_classes=3)
    with pytest.raises(RuntimeError, match="boom"):
        PGD(0.1, steps=5)(clf, torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,)))
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_query_counter_counts_images():
    clf = Classifier(small_model(), num_classes=3)
    x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))
    result = PGD(0.1, steps=4, early_stop=False)(clf, x, y)
    # one clean pass, 4 gradient steps, one final pass, all on 6 images
    assert result.queries == 6 * 6


def test_device_mismatch_is_reported():
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU to place the model and the data on different devices")
    clf = Classifier(small_model().cuda(), num_classes=3)
    with pytest.raises(ValueError, match="x: is on cpu"):
        PGD(0.1)(clf, torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))


def _conv_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 4))


def test_channels_last_layout_during_attacks_changes_nothing_but_speed():
    x, y = torch.rand(16, 3, 14, 14), torch.randint(0, 4, (16,))
    fast, plain = Classifier(_conv_model(), channels_last=True), Classifier(_conv_model())
    weights = [(p.data_ptr(), p.stride()) for p in fast.parameters()]
    with fast.attack_mode():
        assert fast.model[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert fast.model[0].weight.stride() != weights[0][1]
    with plain.attack_mode():
        assert plain.model[0].weight.is_contiguous()
    # the caller's very tensors are back, in their own layout, also after an attack
    a = PGD(0.1, steps=5, random_start=False)(fast, x, y)
    assert [(p.data_ptr(), p.stride()) for p in fast.parameters()] == weights
    assert fast.model[0].weight.is_contiguous()
    b = PGD(0.1, steps=5, random_start=False)(plain, x, y)
    assert torch.allclose(a.adv, b.adv, atol=1e-5) and torch.equal(a.success, b.success)
    with pytest.raises(ValueError, match="channels_last"):
        Classifier(_conv_model(), channels_last="yes")
