"""ArrayDataset: a labelled image set held in memory as uint8, served as float batches in [0, 1]."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

Device = torch.device | str | None


def _check_float_dtype(dtype: torch.dtype) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating-point torch.dtype, got {dtype!r}")


@dataclass(eq=False)
class ArrayDataset:
    """Images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64 in memory.

    ``name`` says which data set (``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``, or
    ``"cifar10-jpeg"`` for the JPEG-re-encoded CIFAR-10 copy, whose results must be labelled
    "CIFAR-10 (JPEG copy)"); ``note`` carries any such caveat in words.
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    name: str
    note: str = field(default="")

    def __post_init__(self) -> None:
        if isinstance(self.images, np.ndarray):
            self.images = torch.from_numpy(self.images)
        if isinstance(self.labels, np.ndarray):
            self.labels = torch.from_numpy(self.labels)
        if not isinstance(self.images, Tensor) or self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError("images: expected a uint8 tensor of shape (N, C, H, W), got "
                             f"{getattr(self.images, 'dtype', type(self.images).__name__)} "
                             f"{tuple(getattr(self.images, 'shape', ()))}")
        if not isinstance(self.labels, Tensor) or self.labels.ndim != 1:
            raise ValueError(f"labels: expected a 1-D tensor, got shape {tuple(getattr(self.labels, 'shape', ()))}")
        if self.labels.dtype != torch.int64:
            if self.labels.is_floating_point() or self.labels.dtype == torch.bool:
                raise ValueError(f"labels: expected integer class indices, got {self.labels.dtype}")
            self.labels = self.labels.to(torch.int64)
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"labels: {self.labels.shape[0]} labels for {self.images.shape[0]} images")
        self.classes = [str(c) for c in self.classes]
        if not self.classes:
            raise ValueError("classes: empty class list")
        if self.labels.numel() and bool((self.labels.min() < 0) | (self.labels.max() >= len(self.classes))):
            raise ValueError(f"labels: values must lie in [0, {len(self.classes) - 1}] for "
                             f"{len(self.classes)} classes, found [{int(self.labels.min())}, {int(self.labels.max())}]")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        note = f", note={self.note!r}" if self.note else ""
        return (f"ArrayDataset(name={self.name!r}, n={len(self)}, input_shape={self.input_shape}, "
                f"num_classes={self.num_classes}{note})")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Per-image shape ``(C, H, W)``."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _index(self, indices: Tensor | Sequence[int] | range | slice) -> Tensor | slice:
        if isinstance(indices, slice):
            return indices
        if isinstance(indices, Tensor):
            idx = indices.to(self.images.device)
        else:
            array = np.asarray(indices)
            idx = torch.from_numpy(array) if array.size else torch.zeros(0, dtype=torch.int64)
        if idx.dtype == torch.bool:
            if idx.shape != (len(self),):
                raise ValueError(f"indices: boolean mask of shape {tuple(idx.shape)} for {len(self)} samples")
            return idx.nonzero().flatten()
        if idx.is_floating_point() or idx.ndim != 1:
            raise ValueError(f"indices: expected a 1-D sequence of integer indices, got {idx.dtype} "
                             f"of shape {tuple(idx.shape)}")
        idx = idx.to(torch.int64)
        if idx.numel() and bool((idx.min() < -len(self)) | (idx.max() >= len(self))):
            raise IndexError(f"indices: out of range for a data set of {len(self)} samples")
        return idx

    def subset(self, indices: Tensor | Sequence[int] | range | slice) -> ArrayDataset:
        """A new data set holding the samples at ``indices`` (integers, a boolean mask, a range or a slice)."""
        idx = self._index(indices)
        return ArrayDataset(self.images[idx].clone(), self.labels[idx].clone(), list(self.classes),
                            self.name, self.note)

    def spread_indices(self, n: int) -> Tensor:
        """Indices of ``n`` points spread evenly over the set: ``arange(n) * N // n`` (starts at 0)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= len(self):
            raise ValueError(f"n: expected an integer in [1, {len(self)}], got {n!r}")
        return torch.arange(n, dtype=torch.int64) * len(self) // n

    def spread(self, n: int) -> ArrayDataset:
        """The evaluation subset of ``n`` points: every (N/n)-th image from the first, never a contiguous slice."""
        return self.subset(self.spread_indices(n))

    def _convert(self, x: Tensor, device: Device, dtype: torch.dtype) -> Tensor:
        return x.to(device=device, non_blocking=True).to(dtype).div_(255)

    def tensors(self, device: Device = None, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """The whole set as ``(x, y)``: x float in [0, 1] ``(N, C, H, W)``, y int64 ``(N,)``, on ``device``."""
        _check_float_dtype(dtype)
        return self._convert(self.images, device, dtype), self.labels.to(device)

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int | None = None,
                drop_last: bool = False, device: Device = None,
                dtype: torch.dtype = torch.float32) -> Iterator[tuple[Tensor, Tensor]]:
        """Iterate ``(x, y)`` batches; x float in [0, 1], converted from uint8 per batch on ``device``.

        With ``shuffle`` the order is a permutation drawn from ``seed`` (reproducible) or from
        torch's global generator when ``seed`` is None. Every sample appears exactly once per pass
        (the last short batch is dropped with ``drop_last``).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
        _check_float_dtype(dtype)
        return self._iter_batches(batch_size, shuffle, seed, drop_last, device, dtype)

    def _iter_batches(self, batch_size: int, shuffle: bool, seed: int | None, drop_last: bool,
                      device: Device, dtype: torch.dtype) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self)
        order = None
        if shuffle:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            order = torch.randperm(n, generator=generator)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, n)
            idx = slice(start, end) if order is None else order[start:end]
            yield self._convert(self.images[idx], device, dtype), self.labels[idx].to(device)
