"""Thin convolutions' input gradients by matrix product and fold: the same gradients as autograd."""

import pytest
import torch
from torch import nn

from parry import thin_conv
from parry.thin_conv import is_thin, thin_conv_input_grads

GEOMETRIES = [  # (in_channels, out_channels, kernel, stride, padding, dilation)
    (1, 16, 5, 1, 0, 1), (1, 32, 5, 1, 2, 1), (3, 8, 3, 2, 1, 1), (3, 4, (3, 5), (2, 1), (0, 2), 2), (2, 5, 4, 3, 1, 1),
]


def _grads(conv, x, create_graph=False):
    x = x.clone().requires_grad_(True)
    out = conv(x)
    (g,) = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), x,
                               create_graph=create_graph)
    return x, g


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_input_gradient_equals_autograd(geometry, channels_last, monkeypatch):
    monkeypatch.setattr(thin_conv, "MAX_IN_CHANNELS", 3)  # the map is right for any width: check 2 and 3 too
    c_in, c_out, kernel, stride, padding, dilation = geometry
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation).double().requires_grad_(False)
    x = torch.rand(5, c_in, 13, 11, dtype=torch.float64)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    _, expected = _grads(conv, x)
    with thin_conv_input_grads(conv) as switched:
        assert switched == 1
        _, got = _grads(conv, x)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert "forward" not in vars(conv)


def test_double_backpropagation_through_the_fold_is_exact():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 8 * 8, 1)).double()
    model.requires_grad_(False)
    x = torch.rand(4, 1, 10, 10, dtype=torch.float64)

    def penalty_grad():
        xx, g = _grads(model, x, create_graph=True)
        return torch.autograd.grad(g.pow(2).sum(), xx)[0]

    expected = penalty_grad()
    with thin_conv_input_grads(model):
        got = penalty_grad()
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12) and expected.abs().max() > 0


def test_trainable_weights_keep_the_stock_path_and_get_their_gradients():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3)
    x = torch.rand(2, 1, 6, 6)
    conv(x).sum().backward()
    expected = conv.weight.grad.clone()
    conv.weight.grad = None
    with thin_conv_input_grads(conv):
        conv(x).sum().backward()
    assert torch.allclose(conv.weight.grad, expected)


def test_which_layers_are_thin():
    assert is_thin(nn.Conv2d(1, 8, 3)) and not is_thin(nn.Conv2d(3, 8, 3))  # 3 channels: oneDNN is faster
    assert not is_thin(nn.Conv2d(2, 2, 3, groups=2)) and not is_thin(nn.Conv2d(1, 8, 3, padding="same"))
    assert not is_thin(nn.Conv2d(1, 8, 3, padding=1, padding_mode="reflect"))

    class Custom(nn.Conv2d):
        pass

    assert not is_thin(Custom(1, 8, 3))  # a subclass may compute something else


def test_switched_layers_are_restored_when_the_body_raises():
    conv = nn.Conv2d(1, 4, 3).requires_grad_(False)
    with pytest.raises(RuntimeError, match="boom"):
        with thin_conv_input_grads(conv):
            raise RuntimeError("boom")
    assert "forward" not in vars(conv)
