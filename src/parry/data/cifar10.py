"""CIFAR-10: 60,000 32x32 colour images in 10 classes (Krizhevsky 2009, "Learning multiple layers of
features from tiny images", tech. report, U. Toronto).

Sources in turn: an installed folder, the official tarballs (verified with the authors' MD5),
the mirror (official tarballs under ``cifar10/``, else the JPEG copy ``cifar10-jpeg/cifar10-jpeg.tar.gz``,
converted once into the binary layout and served as ``name="cifar10-jpeg"``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .acquire import acquire, quarantine
from .checksums import (
    CIFAR10_BINARY_MD5,
    CIFAR10_JPEG_SHA256,
    CIFAR10_PYTHON_MD5,
    check_digest,
    file_digest,
    verify_manifest,
)
from .cifar10_format import (
    BINARY_FOLDER,
    BINARY_TARBALL,
    CLASSES,
    JPEG_NOTE,
    PYTHON_FOLDER,
    PYTHON_TARBALL,
    RECORD_BYTES,
    batch_files,
    extract_batches,
    meta_file,
    read_cifar10_binary,
    read_cifar10_pickle,
)
from .cifar10_jpeg import JPEG_FOLDER, JPEG_TARBALL, convert_image_tarball
from .dataset import ArrayDataset
from .errors import DataError, JpegCopyWarning
from .sources import UrlSource

OFFICIAL_BASE = "https://www.cs.toronto.edu/~kriz"

#: Installed layouts in order of preference: (folder, binary format?).
LAYOUTS = ((PYTHON_FOLDER, False), (BINARY_FOLDER, True), (JPEG_FOLDER, True))


def _check_archive(path: Path, what: str, *, digest: str, algorithm: str) -> None:
    check_digest(what, file_digest(path, algorithm), digest, algorithm)


def check_folder(folder: Path, binary: bool, splits: tuple[str, ...] = ("train", "test")) -> None:
    """Verify an installed folder: its manifest when it has one, else that the batch files are whole."""
    names = [n for s in splits for n in batch_files(s, binary)]
    if verify_manifest(folder, [*names, meta_file(binary)], only=[*names, meta_file(binary)]):
        return
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing")
        if binary and path.stat().st_size % RECORD_BYTES:
            raise DataError(f"{path}: not a whole number of {RECORD_BYTES}-byte records (truncated?)")


@dataclass(frozen=True)
class Cifar10Dataset:
    """CIFAR-10: fetch from the official tarballs or the mirror, read the installed layout."""

    name: str = "cifar10"
    classes: tuple[str, ...] = CLASSES
    citation: str = "Krizhevsky 2009, Learning multiple layers of features from tiny images"
    official: str = OFFICIAL_BASE

    def fetch(self, directory: Path, *, mirror: str | None, progress: bool) -> None:
        notes: list[tuple[str, str]] = []
        for folder, binary in LAYOUTS:
            path = directory / folder
            if path.is_dir():
                try:
                    check_folder(path, binary)
                    return
                except DataError as e:
                    notes.append((f"data directory {directory}", f"{e} (moved to {quarantine(path).name})"))
        wanted = {
            PYTHON_TARBALL: partial(_check_archive, digest=CIFAR10_PYTHON_MD5, algorithm="md5"),
            BINARY_TARBALL: partial(_check_archive, digest=CIFAR10_BINARY_MD5, algorithm="md5"),
            JPEG_TARBALL: partial(_check_archive, digest=CIFAR10_JPEG_SHA256, algorithm="sha256"),
        }
        sources = [
            UrlSource("official", self.official, {PYTHON_TARBALL: (PYTHON_TARBALL,), BINARY_TARBALL: (BINARY_TARBALL,)},
                      official=True),
            UrlSource("mirror", mirror, {PYTHON_TARBALL: (f"cifar10/{PYTHON_TARBALL}",),
                                         BINARY_TARBALL: (f"cifar10/{BINARY_TARBALL}",),
                                         JPEG_TARBALL: (f"cifar10-jpeg/{JPEG_TARBALL}",)}),
        ]
        got = acquire(directory, wanted, sources, what=self.name, any_of=True, progress=progress, notes=notes)
        name, path = next(iter(got.items()))
        if name == JPEG_TARBALL:
            convert_image_tarball(path, directory / JPEG_FOLDER, progress=progress)
        else:
            binary = name == BINARY_TARBALL
            extract_batches(path, directory / (BINARY_FOLDER if binary else PYTHON_FOLDER), binary, progress=progress)

    def read(self, directory: Path, split: str) -> ArrayDataset:
        for folder, binary in LAYOUTS:
            path = directory / folder
            if path.is_dir():
                check_folder(path, binary, (split,))
                dataset = (read_cifar10_binary if binary else read_cifar10_pickle)(path, split)
                if folder == JPEG_FOLDER:   # the folder name marks the copy even if its marker file was lost
                    dataset.name, dataset.note = "cifar10-jpeg", JPEG_NOTE
                if dataset.name == "cifar10-jpeg":
                    warnings.warn(dataset.note, JpegCopyWarning, stacklevel=3)
                return dataset
        raise DataError(f"cifar10: none of {', '.join(f for f, _ in LAYOUTS)} found in {directory}")


CIFAR10 = Cifar10Dataset()
