"""The MNIST CNN of Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018 (the model of their MNIST challenge).

``activation="silu"`` swaps its ReLUs for SiLU (x * sigmoid(x)): Xie et al., "Smooth
Adversarial Training" (arXiv 2006.14536, 2020), found smooth activations to give adversarial
training better gradients, in its inner maximisation and in its weight updates, and more
robustness at the same clean accuracy; Gowal et al., "Uncovering the Limits of Adversarial
Training against Norm-Bounded Adversarial Examples" (2020), found SiLU (Swish) the best of
the activations they compared.

``width`` multiplies the two convolutions' channels (32 and 64 at width 1), as the widening
factor of Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016). Madry et al. found
capacity to matter for adversarial training (their Section 4: networks with more channels keep
more accuracy, clean and adversarial), as Gowal et al. (2020) did for larger networks.
"""

from __future__ import annotations

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU}


class MadryMNISTCNN(nn.Module):
    """conv5x5(32, pad 2) - act - maxpool2 - conv5x5(64, pad 2) - act - maxpool2 -
    fc(7*7*64 -> 1024) - act - fc(1024 -> num_classes), act being ReLU (the paper's) or SiLU;
    ``width`` multiplies the convolutions' channels (rounded; 32 and 64 at the paper's width 1).

    Takes (N, in_channels, 28, 28) inputs (already normalised) and returns logits.
    With the defaults (1 channel, 10 classes) it has 3,274,634 parameters.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, activation: str = "relu",
                 width: float = 1.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: unknown name {activation!r}; valid names: {', '.join(ACTIVATIONS)}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0.25 <= width <= 8:
            raise ValueError(f"width: expected a number in [0.25, 8], got {width!r}")
        act = ACTIVATIONS[activation]
        first, second = round(32 * width), round(64 * width)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, first, 5, padding=2), act(), nn.MaxPool2d(2),
            nn.Conv2d(first, second, 5, padding=2), act(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(7 * 7 * second, 1024), act(), nn.Linear(1024, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
