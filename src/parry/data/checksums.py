"""Known digests of the raw data files, and the helpers that check them.

IDX digests are SHA-256 of the *decompressed* file, so any gzip wrapper verifies the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from .errors import DataError

#: SHA-256 of the decompressed IDX files (originals byte for byte), keyed ``<data set>/<file>``.
IDX_SHA256: dict[str, str] = {
    "mnist/t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "mnist/t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "mnist/train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "mnist/train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "fashion-mnist/t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "fashion-mnist/t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "fashion-mnist/train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "fashion-mnist/train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
}

#: MD5 published by the authors for the official CIFAR-10 archives (www.cs.toronto.edu/~kriz/cifar.html).
CIFAR10_PYTHON_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_BINARY_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"

#: SHA-256 of ``cifar10-jpeg.tar.gz``, the JPEG-re-encoded CIFAR-10 copy (computed from the shared copy).
CIFAR10_JPEG_SHA256 = "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db"

_CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def bytes_digest(data: bytes | bytearray | memoryview, algorithm: str = "sha256") -> str:
    """Hex digest of an in-memory buffer."""
    return hashlib.new(algorithm, data).hexdigest()


def check_digest(what: Path | str, actual: str, expected: str, algorithm: str = "sha256") -> None:
    """Raise a :class:`DataError` naming ``what`` and both digests when they differ."""
    if actual.lower() != expected.lower():
        raise DataError(f"{what}: {algorithm.upper()} mismatch (file corrupted or not the expected file): "
                        f"expected {expected.lower()}, got {actual.lower()}")


def verify_file(path: Path, expected: str, algorithm: str = "sha256") -> None:
    """Check a file's raw bytes against ``expected``; :class:`DataError` on mismatch."""
    check_digest(path, file_digest(path, algorithm), expected, algorithm)


MANIFEST = "MANIFEST.sha256"


def write_manifest(folder: Path, names: list[str]) -> Path:
    """Record the SHA-256 of ``names`` (files of ``folder``) in ``folder/MANIFEST.sha256``."""
    lines = [f"{file_digest(folder / n)}  {n}\n" for n in names]
    path = folder / MANIFEST
    path.write_text("".join(lines))
    return path


def verify_manifest(folder: Path, required: Sequence[str], only: Sequence[str] | None = None) -> bool:
    """Check the files listed in ``folder/MANIFEST.sha256`` (those in ``only`` if given); False if no manifest.

    Raises :class:`DataError` naming the file when one is missing or its digest differs, or when a
    ``required`` file is not listed.
    """
    path = folder / MANIFEST
    if not path.is_file():
        return False
    listed: dict[str, str] = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if name:
            listed[name] = digest
    unlisted = [n for n in required if n not in listed]
    if unlisted:
        raise DataError(f"{path}: does not list {', '.join(unlisted)}")
    for name, digest in listed.items():
        if only is not None and name not in only:
            continue
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}: missing (listed in {path})")
        verify_file(folder / name, digest)
    return True
