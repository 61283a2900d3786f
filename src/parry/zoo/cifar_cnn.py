"""A small VGG-style CIFAR-10 CNN (about 0.8M parameters), the quick CIFAR model of
Parry's tests and examples; the block pattern follows Simonyan & Zisserman, "Very Deep
Convolutional Networks for Large-Scale Image Recognition", ICLR 2015.
"""

from __future__ import annotations

from torch import Tensor, nn


def _conv(cin: int, cout: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    return layers + [nn.ReLU()]


class CifarCNN(nn.Module):
    """conv(32) conv(32) pool conv(64) conv(64) pool conv(128) conv(128) pool (3x3 convs,
    padding 1, each followed by BatchNorm when ``batch_norm`` and ReLU), then
    fc(128*4*4 -> 256) ReLU fc(256 -> num_classes).

    Takes (N, in_channels, 32, 32) inputs (already normalised) and returns logits.
    With the defaults it has 815,018 parameters (814,122 without BatchNorm).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, batch_norm: bool = True) -> None:
        super().__init__()
        widths = [(in_channels, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(widths):
            layers += _conv(cin, cout, batch_norm)
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
