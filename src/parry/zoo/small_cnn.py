"""The MNIST "SmallCNN" of Zhang et al., "Theoretically Principled Trade-off between
Robustness and Accuracy" (TRADES), ICML 2019.
"""

from __future__ import annotations

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """conv3x3(32) ReLU conv3x3(32) ReLU maxpool2 conv3x3(64) ReLU conv3x3(64) ReLU maxpool2
    fc(64*4*4 -> 200) ReLU dropout(0.5) fc(200 -> 200) ReLU fc(200 -> num_classes).

    No padding, so the input must be (N, in_channels, 28, 28) (already normalised); returns
    logits. With the defaults it has 312,202 parameters. Initialisation as in the TRADES
    reference code: Kaiming-normal convolutions with zero bias, and a zero last layer.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, drop: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 4 * 4, 200), nn.ReLU(), nn.Dropout(drop),
            nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, num_classes),
        )
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.classifier[-1].weight)
        nn.init.zeros_(self.classifier[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
