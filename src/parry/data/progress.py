"""tqdm progress bars, switched off with ``progress=False``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def bar(*, desc: str, total: int | None = None, unit: str = "B", enabled: bool = True) -> tqdm:
    """A progress bar (bytes by default, scaled to kB/MB); a no-op when not ``enabled``."""
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", unit_divisor=1024 if unit == "B" else 1000,
                disable=not enabled, leave=False, dynamic_ncols=True)


def track(items: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it",
          enabled: bool = True) -> Iterator[T]:
    """Iterate ``items`` behind a progress bar."""
    with bar(desc=desc, total=total, unit=unit, enabled=enabled) as b:
        for item in items:
            yield item
            b.update(1)
