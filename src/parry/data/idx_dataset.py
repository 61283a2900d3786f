"""Data sets stored as four IDX files (train/test images and labels), like MNIST and Fashion-MNIST."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from .acquire import acquire, local_candidates
from .checksums import IDX_SHA256
from .dataset import ArrayDataset
from .errors import DataError
from .idx import read_idx_verified, verify_idx
from .sources import Source, UrlSource

#: split -> (images file, labels file), the names every IDX distribution uses.
IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class IdxDataset:
    """An IDX data set: its classes, official download bases and package-registry copy."""

    name: str
    classes: tuple[str, ...]
    citation: str
    official: tuple[str, ...]
    registry: Callable[[Sequence[str]], Source] | None = None
    files: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(IDX_FILES))

    @property
    def filenames(self) -> list[str]:
        return [f for pair in self.files.values() for f in pair]

    def sha256(self, filename: str) -> str:
        return IDX_SHA256[f"{self.name}/{filename}"]

    def sources(self, mirror: str | None) -> list[Source]:
        """Official bases, then the mirror, then the registry copy, each offering ``<file>.gz`` or ``<file>``."""
        def paths(prefix: str) -> dict[str, tuple[str, str]]:
            return {f: (f"{prefix}{f}.gz", f"{prefix}{f}") for f in self.filenames}
        found: list[Source] = [UrlSource("official", base, paths(""), official=True) for base in self.official]
        found.append(UrlSource("mirror", mirror, paths(f"{self.name}/")))
        if self.registry is not None:
            found.append(self.registry(self.filenames))
        return found

    def fetch(self, directory: Path, *, mirror: str | None, progress: bool) -> None:
        wanted = {f: partial(_check, sha256=self.sha256(f)) for f in self.filenames}
        acquire(directory, wanted, self.sources(mirror), what=self.name, progress=progress)

    def read(self, directory: Path, split: str) -> ArrayDataset:
        images_file, labels_file = self.files[split]
        images = read_idx_verified(self._locate(directory, images_file), self.sha256(images_file))
        labels = read_idx_verified(self._locate(directory, labels_file), self.sha256(labels_file))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DataError(f"{self.name} {split}: images {images.shape} and labels {labels.shape} do not match")
        return ArrayDataset(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).to(torch.int64),
                            list(self.classes), self.name)

    def _locate(self, directory: Path, filename: str) -> Path:
        found = local_candidates(directory, filename)
        if not found:
            raise DataError(f"{self.name}: {filename}[.gz] not found in {directory}")
        return found[0]


def _check(path: Path, what: str, *, sha256: str) -> None:
    verify_idx(path, sha256, what)
