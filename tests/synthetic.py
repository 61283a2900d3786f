"""A tiny synthetic image data set for the training tests: learnable in a few steps."""

from __future__ import annotations

import torch

from parry.data.dataset import ArrayDataset


def patches(n: int, seed: int) -> ArrayDataset:
    """n images of noise with a bright 6x6 patch at a class-dependent place (10 classes)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.randint(0, 60, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        r, col = 2 + 12 * (c // 5), 1 + 5 * (c % 5)
        images[i, 0, r:r + 6, col:col + 5] = 230
    return ArrayDataset(images, labels, [str(c) for c in range(10)], "synthetic")


def interrupt_at(step: int):
    """A Trainer callback that raises KeyboardInterrupt after optimiser step ``step``."""
    def callback(current: int) -> None:
        if current == step:
            raise KeyboardInterrupt
    return callback


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """Every state-dict entry of ``a`` and ``b`` equal bit for bit (named on failure)."""
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
