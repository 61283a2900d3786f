"""Image files (JPEG/PNG) decoded with Pillow, an optional dependency, and image-folder data sets."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from .dataset import ArrayDataset
from .errors import DataError
from .progress import track

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_MODES = {"RGB": 3, "L": 1}


def require_pillow() -> ModuleType:
    """The ``PIL.Image`` module, or an ImportError telling how to install Pillow."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("reading JPEG/PNG images needs Pillow: pip install pillow "
                          "(or pip install 'parry[images]')") from e
    return Image


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def decode_image(source: bytes | str | os.PathLike[str], mode: str = "RGB", what: str | None = None) -> np.ndarray:
    """Decode one image into a uint8 array ``(C, H, W)`` in ``mode`` (``"RGB"`` or ``"L"``)."""
    image_module = require_pillow()
    what = what or (os.fspath(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        with image_module.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            array = np.asarray(img.convert(mode), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as e:   # Pillow raises these for unreadable images
        raise DataError(f"{what}: cannot decode image ({e})") from e
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def stack_images(arrays: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Stack ``(C, H, W)`` arrays into ``(N, C, H, W)``; a :class:`DataError` names the first odd-sized image."""
    if not arrays:
        return np.zeros((0, 0, 0, 0), dtype=np.uint8)
    first = arrays[0].shape
    for array, name in zip(arrays, names, strict=True):
        if array.shape != first:
            raise DataError(f"{name}: image shape {array.shape} differs from {first} ({names[0]})")
    return np.stack(arrays)


def list_class_folders(split_dir: Path, classes: Sequence[str] | None) -> list[str]:
    """Class folder names of ``split_dir``: ``classes`` (checked to exist) or the sorted subfolders."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: no such folder")
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if classes is None:
        if not found:
            raise DataError(f"{split_dir}: no class folders")
        return found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{split_dir}: folders {unknown} are not among the classes {list(classes)}")
    return list(classes)


def image_files(folder: Path) -> list[Path]:
    """JPEG/PNG files of a folder in natural name order."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image_folder(root: str | os.PathLike[str], split: str | None = None, *,
                      classes: Sequence[str] | None = None, mode: str = "RGB",
                      name: str | None = None, progress: bool = False) -> ArrayDataset:
    """Read ``<root>/<split>/<class>/*.jpg|jpeg|png`` (or ``<root>/<class>/...`` when ``split`` is None).

    Labels follow ``classes`` (default: the sorted folder names); files are read in natural name
    order, class by class. All images must share one size. Needs Pillow.
    """
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {sorted(_MODES)}, got {mode!r}")
    require_pillow()
    root = Path(root)
    split_dir = root / split if split is not None else root
    class_names = list_class_folders(split_dir, classes)
    entries = [(label, path) for label, cls in enumerate(class_names) for path in image_files(split_dir / cls)]
    if not entries:
        raise DataError(f"{split_dir}: no {'/'.join(IMAGE_SUFFIXES)} images in its class folders")
    arrays = [decode_image(path, mode) for _, path in
              track(entries, desc=f"reading {split_dir}", total=len(entries), unit="img", enabled=progress)]
    images = stack_images(arrays, [str(path) for _, path in entries])
    labels = np.array([label for label, _ in entries], dtype=np.int64)
    return ArrayDataset(images, labels, class_names, name or root.name)

