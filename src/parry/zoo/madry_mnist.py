"""The MNIST CNN of Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018 (the model of their MNIST challenge).
"""

from __future__ import annotations

from torch import Tensor, nn


class MadryMNISTCNN(nn.Module):
    """conv5x5(32, pad 2) - ReLU - maxpool2 - conv5x5(64, pad 2) - ReLU - maxpool2 -
    fc(7*7*64 -> 1024) - ReLU - fc(1024 -> num_classes).

    Takes (N, in_channels, 28, 28) inputs (already normalised) and returns logits.
    With the defaults (1 channel, 10 classes) it has 3,274,634 parameters.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Linear(1024, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
