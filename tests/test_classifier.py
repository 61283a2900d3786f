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


def _conv_model(in_channels=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 4))


@pytest.mark.parametrize("in_channels", [1, 3])  # with and without a thin convolution
def test_fast_path_during_attacks_changes_nothing_but_speed(in_channels):
    x, y = torch.rand(16, in_channels, 14, 14), torch.randint(0, 4, (16,))
    fast, plain = Classifier(_conv_model(in_channels)), Classifier(_conv_model(in_channels), fast=False)
    weights = [(p.data_ptr(), p.stride()) for p in fast.parameters()]
    with fast.attack_mode():
        # real channels-last strides, also for the one-channel kernel (which .contiguous() leaves alone)
        assert fast.model[0].weight.stride()[1] == 1 and fast.model[3].weight.stride()[1] == 1
        assert ("forward" in vars(fast.model[0])) == (in_channels == 1) and "forward" not in vars(fast.model[3])
        assert fast.model[0](x).is_contiguous(memory_format=torch.channels_last)
    with plain.attack_mode():
        assert plain.model[0].weight.stride() == weights[0][1] and "forward" not in vars(plain.model[0])
    # the caller's very tensors and the modules' own forward are back, also after an attack
    a = PGD(0.1, steps=5, random_start=False)(fast, x, y)
    assert [(p.data_ptr(), p.stride()) for p in fast.parameters()] == weights
    assert "forward" not in vars(fast.model[0])
    b = PGD(0.1, steps=5, random_start=False)(plain, x, y)
    assert torch.allclose(a.adv, b.adv, atol=1e-5) and torch.equal(a.success, b.success)
    with pytest.raises(ValueError, match="fast"):
        Classifier(_conv_model(), fast="yes")


class _ViewModel(nn.Module):
    """Flattens convolution outputs with ``view``, which channels-last strides do not allow."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(h.view(h.shape[0], -1))


def test_a_model_that_cannot_run_channels_last_falls_back_with_a_warning():
    x, y = torch.rand(8, 3, 8, 8), torch.randint(0, 3, (8,))
    fast, plain = Classifier(_ViewModel()), Classifier(_ViewModel(), fast=False)
    weight = (fast.model.conv.weight.data_ptr(), fast.model.conv.weight.stride())
    with pytest.warns(RuntimeWarning, match="channels-last"):
        a = PGD(0.1, steps=3, random_start=False)(fast, x, y)
    b = PGD(0.1, steps=3, random_start=False)(plain, x, y)
    assert torch.allclose(a.adv, b.adv, atol=1e-6) and not fast.fast
    assert (fast.model.conv.weight.data_ptr(), fast.model.conv.weight.stride()) == weight
