"""GroupSort and MaxMin activations (Anil, Lucas & Grosse, "Sorting out Lipschitz function
approximation", ICML 2019).

GroupSort splits the channels into groups of ``group_size`` and sorts each group. Its
Jacobian is a permutation matrix wherever it exists, so it is 1-Lipschitz in L2 and
gradient-norm preserving (GNP): ``||J^T g|| = ||g||`` for every upstream gradient ``g``,
unlike ReLU, which loses the norm of every gradient it zeroes. MaxMin is GroupSort with
groups of 2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from parry.validation import check_positive_int


class GroupSort(nn.Module):
    """Sort groups of ``group_size`` consecutive channels (dim 1) in ascending order.

    Works on (N, C) and (N, C, H, W) inputs; C must be divisible by ``group_size``.
    """

    def __init__(self, group_size: int = 2) -> None:
        super().__init__()
        self.group_size = check_positive_int(group_size, "group_size", minimum=2)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise ValueError(f"x: expected shape (N, C, ...), got {tuple(x.shape)}")
        channels = x.shape[1]
        if channels % self.group_size != 0:
            raise ValueError(f"x: {channels} channels are not divisible by group_size={self.group_size}")
        if self.group_size == 2:  # MaxMin: two elementwise ops beat a sort
            a, b = x.unflatten(1, (channels // 2, 2)).unbind(2)
            return torch.stack((torch.minimum(a, b), torch.maximum(a, b)), dim=2).flatten(1, 2)
        grouped = x.unflatten(1, (channels // self.group_size, self.group_size))
        return grouped.sort(dim=2).values.flatten(1, 2)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


class MaxMin(GroupSort):
    """GroupSort with groups of two: (min(a, b), max(a, b)) for each channel pair."""

    def __init__(self) -> None:
        super().__init__(2)

    def extra_repr(self) -> str:
        return ""
