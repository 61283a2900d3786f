"""A small LeNet-style CNN (after LeCun et al., "Gradient-based learning applied to
document recognition", Proc. IEEE 1998), about 10x cheaper than the Madry CNN:
Parry's test-suite and quick-experiment model.
"""

from __future__ import annotations

from torch import Tensor, nn


class LeNet(nn.Module):
    """conv5x5(16) - ReLU - maxpool2 - conv5x5(32) - ReLU - maxpool2 - fc(512 -> 128) - ReLU -
    fc(128 -> num_classes), for (N, in_channels, 28, 28) inputs.

    With the defaults (1 channel, 10 classes) it has 80,202 parameters.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * 4 * 32, 128), nn.ReLU(), nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
