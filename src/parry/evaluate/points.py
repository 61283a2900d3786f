"""EvalPoints: the fixed, seeded test points an evaluation runs on, with their test-set indices.

DESIGN.md rule 6: the points are spread over the whole test set (``spread``: every
(N/n)-th image from the first) or drawn by a seeded permutation, never a contiguous slice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

from ..data.dataset import ArrayDataset
from ..validation import check_inputs, check_labels, check_positive_int

SELECTIONS = ("spread", "permutation", "given")


@dataclass(eq=False)
class EvalPoints:
    """Test points ``x`` (float, in [0, 1]) with labels ``y`` and their ``indices`` in the split.

    ``selection`` says how they were chosen ('spread', 'permutation' with ``seed``, or 'given');
    ``source_size`` is the size of the split they were chosen from.
    """

    x: Tensor
    y: Tensor
    indices: Tensor
    dataset: str
    split: str = "test"
    selection: str = "given"
    seed: int | None = None
    source_size: int | None = None

    def __post_init__(self) -> None:
        check_inputs(self.x, (0.0, 1.0))
        self.y = check_labels(self.y, self.x.shape[0], self.x.device)
        if not isinstance(self.indices, Tensor) or self.indices.shape != self.y.shape \
                or self.indices.is_floating_point() or bool((self.indices < 0).any()):
            raise ValueError(f"indices: expected {self.y.shape[0]} non-negative integer test-set indices, "
                             f"got {getattr(self.indices, 'shape', self.indices)!r}")
        self.indices = self.indices.detach().to("cpu", torch.int64)
        if self.indices.unique().numel() != self.indices.numel():
            raise ValueError("indices: a test point appears more than once")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection: expected one of {SELECTIONS}, got {self.selection!r}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset: expected a data set name, got {self.dataset!r}")
        if self.selection == "permutation" and self.seed is None:
            raise ValueError("seed: a 'permutation' selection needs its seed")

    @classmethod
    def spread(cls, data: ArrayDataset, n: int, split: str = "test") -> "EvalPoints":
        """``n`` points spread evenly over ``data``: indices ``arange(n) * N // n``."""
        indices = data.spread_indices(n)
        x, y = data.subset(indices).tensors()
        return cls(x, y, indices, data.name, split, "spread", None, len(data))

    @classmethod
    def permutation(cls, data: ArrayDataset, n: int, seed: int, split: str = "test") -> "EvalPoints":
        """The first ``n`` indices of a permutation of ``data`` drawn from ``seed``, sorted."""
        check_positive_int(n, "n")
        if n > len(data):
            raise ValueError(f"n: expected at most {len(data)} points, got {n}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed: expected an int, got {seed!r}")
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        indices = order[:n].sort().values
        x, y = data.subset(indices).tensors()
        return cls(x, y, indices, data.name, split, "permutation", seed, len(data))

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def indices_sha256(self) -> str:
        """SHA-256 of the test-set indices (int64, little endian): the identity of the selection."""
        return hashlib.sha256(self.indices.numpy().astype("<i8").tobytes()).hexdigest()

    def describe(self) -> dict:
        """JSON-friendly identity of the selection (no tensors but the hash)."""
        return {"dataset": self.dataset, "split": self.split, "selection": self.selection, "n": self.n,
                "seed": self.seed, "source_size": self.source_size, "indices_sha256": self.indices_sha256()}

    def batches(self, batch_size: int) -> list[tuple[int, int, int]]:
        """``(batch, start, stop)`` for consecutive batches of ``batch_size`` points."""
        check_positive_int(batch_size, "batch_size")
        return [(b, start, min(start + batch_size, self.n)) for b, start in enumerate(range(0, self.n, batch_size))]

    def to(self, device: torch.device | str) -> "EvalPoints":
        """The same points with ``x`` and ``y`` on ``device``."""
        return EvalPoints(self.x.to(device), self.y.to(device), self.indices, self.dataset, self.split,
                          self.selection, self.seed, self.source_size)
