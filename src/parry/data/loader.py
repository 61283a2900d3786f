"""``load``: a data set split as an in-memory :class:`ArrayDataset`, fetched on first use."""

from __future__ import annotations

import os
import sys

from .catalog import get_spec
from .config import data_dir, resolve_mirror
from .dataset import ArrayDataset
from .errors import DataError
from .spec import SPLITS


def load(name: str, split: str = "train", *, root: str | os.PathLike[str] | None = None, download: bool = True,
         mirror: str | os.PathLike[str] | None = None) -> ArrayDataset:
    """Load ``split`` ("train" or "test") of ``name`` ("mnist", "fashion-mnist" or "cifar10").

    Files are verified on every load. When they are missing or corrupted and ``download`` is true,
    they are fetched first (see :func:`parry.data.fetch`); otherwise a :class:`DataError` says why.
    ``load("cifar10")`` served from the JPEG copy returns ``name="cifar10-jpeg"`` with a note and a
    :class:`JpegCopyWarning`.
    """
    spec = get_spec(name)
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    if not isinstance(download, bool):
        raise TypeError(f"download: expected a bool, got {type(download).__name__}")
    directory = data_dir(root) / spec.name
    mirror_url = resolve_mirror(mirror)
    try:
        return spec.read(directory, split)
    except DataError as e:
        if not download:
            raise DataError(f"{e}\n{spec.name} is not usable in {directory}: run `parry data fetch {spec.name}` "
                            "or call load(..., download=True)") from e
    spec.fetch(directory, mirror=mirror_url, progress=sys.stderr.isatty())
    return spec.read(directory, split)
