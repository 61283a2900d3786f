"""A quickly trained, undefended surrogate for the audit's transfer attack.

Transfer attacks craft adversarial examples on a model the attacker can differentiate and
replay them on the target (Papernot et al., "Transferability in Machine Learning", 2016).
An undefended surrogate has honest gradients, so its examples beat a masked model whose own
gradients are useless (Athalye, Carlini & Wagner, ICML 2018, section 3.1). The network is a
small two-block CNN that takes any image size (adaptive pooling), trained with Adam on
cross-entropy for a fixed number of steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...classifier import Classifier
from ...validation import check_positive_int
from ...zoo.trainer import BatchSource, train_classifier


class SurrogateCNN(nn.Module):
    """conv3x3(16) ReLU maxpool2 conv3x3(32) ReLU maxpool2 adaptive-avg-pool(4) fc(512 -> 128) ReLU
    fc(128 -> num_classes), padding 1: for (N, in_channels, H, W) inputs with H, W >= 4 (on MNIST
    about the cost of LeNet)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, 128), nn.ReLU(), nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_surrogate(train_set: BatchSource, input_shape: tuple[int, ...], num_classes: int, *,
                    bounds: tuple[float, float] = (0.0, 1.0), steps: int = 300, batch_size: int = 128,
                    seed: int = 0, device: torch.device | str = "cpu") -> Classifier:
    """Train a :class:`SurrogateCNN` for ``steps`` Adam steps (lr 1e-3) on ``train_set``.

    ``train_set`` yields ``(x, y)`` batches in ``bounds`` (e.g. ``parry.data.ArrayDataset``);
    ``input_shape`` is (C, H, W). Returns the surrogate as a Classifier in eval mode.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape: the surrogate needs images (C, H, W), got {tuple(input_shape)}")
    check_positive_int(steps, "steps")
    check_positive_int(batch_size, "batch_size")
    torch.manual_seed(seed)
    clf = Classifier(SurrogateCNN(int(input_shape[0]), num_classes), num_classes=num_classes, bounds=bounds,
                     input_shape=input_shape)
    epochs = math.ceil(steps / max(1, len(train_set) // batch_size))
    train_classifier(clf, train_set, epochs=epochs, batch_size=batch_size, optimizer="adam", lr=1e-3,
                     schedule="constant", seed=seed, device=device, max_steps=steps, progress=False)
    return clf.eval()
