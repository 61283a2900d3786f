"""Random-crop (and optional horizontal-flip) data augmentation of training batches, on tensors.

Each image is padded with zeros by ``padding`` pixels on every side and a window of its
original size is cut at a random offset, so it moves by up to ``padding`` pixels in each
direction; with ``flip`` half of the images are also mirrored left to right. This is the
augmentation of the standard CIFAR-10 training recipes (He et al., CVPR 2016). Rebuffi et al.
("Data augmentation can improve robustness", NeurIPS 2021) found that augmentations raise the
robust accuracy of adversarial training when combined with an average of the weights (the
Trainer's ``ema_decay``), and not without one.

The offsets and flips are drawn from the Trainer's CPU generator (saved in the resume state),
so a resumed run sees the same batches as an uninterrupted one; the crop itself runs on the
batch's device without leaving it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class RandomCrop:
    """Shift each image by up to ``padding`` pixels (zero fill); with ``flip``, mirror half of them."""

    padding: int
    flip: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.padding, bool) or not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"augment: padding must be a non-negative int, got {self.padding!r}")
        if not isinstance(self.flip, bool):
            raise ValueError(f"augment: flip must be a bool, got {self.flip!r}")

    def params(self) -> dict[str, Any]:
        return {"padding": self.padding, "flip": self.flip}

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """The augmented batch ``x`` (N, C, H, W): a new tensor of the same shape, dtype and device."""
        if x.dim() != 4:
            raise ValueError(f"augment: expected a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
        n, c, h, w = x.shape
        p = self.padding
        offsets = torch.randint(0, 2 * p + 1, (2, n), generator=generator).to(x.device)
        flips = torch.rand(n, generator=generator).to(x.device) < 0.5 if self.flip else None
        out = x
        if p > 0:
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            rows = (offsets[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (offsets[1, :, None] + torch.arange(w, device=x.device))[:, None, None, :]
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            channels = torch.arange(c, device=x.device)[None, :, None, None]
            out = padded[batch, channels, rows, cols]
        if flips is not None:
            out = torch.where(flips[:, None, None, None], out.flip(3), out)
        return out
