"""What every data set module provides to ``fetch`` and ``load``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .dataset import ArrayDataset

SPLITS = ("train", "test")


class DatasetSpec(Protocol):
    """A named data set: where its raw files come from and how to read a split from them."""

    name: str
    classes: tuple[str, ...]
    citation: str

    def fetch(self, directory: Path, *, mirror: str | None, progress: bool) -> None:
        """Make the raw files present and verified in ``directory``; FetchError if no source works."""

    def read(self, directory: Path, split: str) -> ArrayDataset:
        """Read one verified split from ``directory``; DataError if absent or corrupted."""
