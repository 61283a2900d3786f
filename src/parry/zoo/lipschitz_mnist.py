"""A small Lipschitz-constrained MNIST network: spectrally normalised layers (Miyato et al.,
ICLR 2018) and MaxMin activations (Anil, Lucas & Grosse, "Sorting out Lipschitz function
approximation", ICML 2019), so that its logits map is (about) 1-Lipschitz in L2 and
:func:`parry.defenses.lipschitz.certified_accuracy` gives non-trivial certificates.
"""

from __future__ import annotations

from torch import nn

from parry.defenses.lipschitz.groupsort import MaxMin
from parry.defenses.lipschitz.layers import SpectralConv2d, SpectralLinear
from parry.validation import check_positive_int


def lipschitz_mnist(in_channels: int = 1, num_classes: int = 10, width: int = 32) -> nn.Sequential:
    """conv4x4(width, stride 2, pad 1) MaxMin conv4x4(2 width, stride 2, pad 1) MaxMin
    fc(2 width*7*7 -> 256) MaxMin fc(256 -> num_classes), every layer spectrally normalised
    (the convolutions on their operator at their input size).

    Takes (N, in_channels, 28, 28) inputs and returns logits. A plain ``nn.Sequential``, so
    :func:`~parry.defenses.lipschitz.lipschitz_bound` can bound it. With the defaults it has
    839,018 parameters.
    """
    width = check_positive_int(width, "width")
    return nn.Sequential(
        SpectralConv2d(in_channels, width, 4, stride=2, padding=1, input_size=28), MaxMin(),
        SpectralConv2d(width, 2 * width, 4, stride=2, padding=1, input_size=14), MaxMin(),
        nn.Flatten(),
        SpectralLinear(2 * width * 7 * 7, 256), MaxMin(),
        SpectralLinear(256, num_classes),
    )
