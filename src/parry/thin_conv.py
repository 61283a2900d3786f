"""Input gradients of thin convolutions as one matrix product and a fold (attacks on CPUs).

Attacks need the gradient of the loss with respect to the input only. For a convolution with
one input channel (the first layer of a grey-scale image model), oneDNN's backward-data kernel
is slow on CPUs: on the MNIST LeNet and Madry CNN it took about a quarter of a forward-backward
pass. The same gradient is ``fold(W^T @ grad_out)`` (the transpose of the im2col product that
defines the convolution; Chellapilla, Puri & Simard, "High performance convolutional neural
networks for document processing", 2006): one batched matrix product and a col2im, 1.5-2.8x
faster than oneDNN for these layers here (CPU, one thread, batches of 169-290). With three
input channels oneDNN's channels-last kernel is as fast or faster, so only one-channel layers
are switched. It is the same linear map, so the gradients agree up to float rounding; second
derivatives through ``grad_out`` (double backpropagation) stay exact, since the map does not
depend on the input.

Used by :meth:`parry.Classifier.attack_mode` on CPUs for plain ``nn.Conv2d`` layers with at
most :data:`MAX_IN_CHANNELS` input channels, zero padding and one group, while the weights are
frozen.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAX_IN_CHANNELS = 1


class _ThinConvInputGrad(torch.autograd.Function):
    """``conv2d(x, weight, bias)`` whose backward returns the input's gradient only."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, conv: nn.Conv2d) -> Tensor:
        ctx.save_for_backward(weight)
        ctx.geometry = (tuple(x.shape[-2:]), conv.kernel_size, conv.dilation, conv.padding, conv.stride, x.dtype)
        return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None, None]:
        (weight,) = ctx.saved_tensors
        size, kernel, dilation, padding, stride, dtype = ctx.geometry
        n, c_out = grad_out.shape[:2]
        columns = torch.matmul(weight.reshape(c_out, -1).t().to(grad_out.dtype), grad_out.reshape(n, c_out, -1))
        grad_x = F.fold(columns, size, kernel, dilation=dilation, padding=padding, stride=stride)
        return grad_x.to(dtype), None, None, None


def _thin_forward(conv: nn.Conv2d, x: Tensor) -> Tensor:
    if conv.weight.requires_grad or (conv.bias is not None and conv.bias.requires_grad):
        return conv._conv_forward(x, conv.weight, conv.bias)  # weight gradients wanted: the stock path
    return _ThinConvInputGrad.apply(x, conv.weight, conv.bias, conv)


def is_thin(module: nn.Module) -> bool:
    """Whether ``module`` is a plain ``nn.Conv2d`` (not a subclass) that the fold path serves."""
    return (type(module) is nn.Conv2d and module.groups == 1 and module.padding_mode == "zeros"
            and not isinstance(module.padding, str) and module.in_channels <= MAX_IN_CHANNELS
            and "forward" not in vars(module))


@contextmanager
def thin_conv_input_grads(model: nn.Module) -> Iterator[int]:
    """For the duration, the thin convolutions of ``model`` compute input gradients by matrix
    product and fold; yields how many layers were switched. Restored also when the body raises."""
    layers = [m for m in model.modules() if is_thin(m)]
    try:
        for layer in layers:
            layer.forward = _thin_forward.__get__(layer)  # an instance attribute shadows the class's
        yield len(layers)
    finally:
        for layer in layers:
            vars(layer).pop("forward", None)
