"""Convert an image tarball of CIFAR-10 (``<split>/<class>/NNNN.jpg``, e.g. the JPEG-re-encoded copy)
into the binary CIFAR-10 layout, marked as the JPEG copy. Needs Pillow."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from .checksums import file_digest
from .cifar10_format import (
    CLASSES,
    IMAGE_SHAPE,
    JPEG_MARKER,
    JPEG_NOTE,
    batch_files,
    encode_binary_batch,
    write_batch_folder,
)
from .errors import DataError
from .images import IMAGE_SUFFIXES, decode_image, natural_key, require_pillow
from .progress import track
from .spec import SPLITS

JPEG_TARBALL = "cifar10-jpeg.tar.gz"
JPEG_FOLDER = "cifar10-jpeg-batches-bin"

#: Seed of the fixed shuffle applied at conversion: the original CIFAR-10 order is not in the image
#: tarball, and a class-sorted file would make every prefix a single class.
CONVERSION_SEED = 0


def convert_image_tarball(tarball: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                          classes: Sequence[str] = CLASSES, seed: int = CONVERSION_SEED,
                          progress: bool = True) -> Path:
    """Decode ``<split>/<class>/*.jpg|png`` from ``tarball`` and write the binary layout into ``dest``.

    ``dest`` gets ``data_batch_1..5.bin`` (train split in five near-equal parts), ``test_batch.bin``,
    ``batches.meta.txt``, ``JPEG_COPY.txt`` (the caveat) and ``MANIFEST.sha256``. Images are ordered
    class by class in natural file order, then shuffled with a fixed ``seed``.
    """
    require_pillow()
    tarball, dest = Path(tarball), Path(dest)
    entries: dict[str, list[tuple[int, list[int | str], np.ndarray]]] = {s: [] for s in SPLITS}
    try:
        with tarfile.open(tarball, "r:*") as tar:
            for member in track(tar, desc=f"converting {tarball.name}", unit="file", enabled=progress):
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or len(parts) < 3 or PurePosixPath(parts[-1]).suffix.lower() \
                        not in IMAGE_SUFFIXES or parts[-3] not in entries:
                    continue
                split, cls, filename = parts[-3:]
                if cls not in classes:
                    raise DataError(f"{tarball}:{member.name}: class folder {cls!r} is not one of {list(classes)}")
                what = f"{tarball}:{member.name}"
                image = decode_image(tar.extractfile(member).read(), "RGB", what)
                if image.shape != IMAGE_SHAPE:
                    raise DataError(f"{what}: expected a 32x32 RGB image, got shape {image.shape}")
                entries[split].append((list(classes).index(cls), natural_key(filename), image))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{tarball}: cannot read the archive ({e})") from e

    rng = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    for split, items in entries.items():
        if not items:
            raise DataError(f"{tarball}: no {split}/<class>/ images")
        items.sort(key=lambda item: (item[0], item[1]))
        order = rng.permutation(len(items))
        images = np.stack([items[i][2] for i in order])
        labels = np.array([items[i][0] for i in order], dtype=np.uint8)
        names = batch_files(split, binary=True)
        for name, part in zip(names, np.array_split(np.arange(len(order)), len(names)), strict=True):
            files[name] = encode_binary_batch(images[part], labels[part])
    files["batches.meta.txt"] = "".join(f"{c}\n" for c in classes).encode()
    files[JPEG_MARKER] = (f"{JPEG_NOTE}\nConverted from {tarball.name} (SHA-256 {file_digest(tarball)}), "
                          f"shuffled with seed {seed}.\n").encode()
    return write_batch_folder(dest, files)
