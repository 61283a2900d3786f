"""The IDX file format of MNIST and Fashion-MNIST (LeCun et al. 1998), plain or gzip-compressed.

Header: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension; the data follow, big-endian, C order.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .checksums import bytes_digest, check_digest
from .errors import DataError

GZIP_MAGIC = b"\x1f\x8b"

#: IDX type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_raw(path: str | os.PathLike[str], what: str | None = None) -> bytes:
    """A file's contents, gunzipped when it starts with the gzip magic bytes (whatever its name).

    ``what`` names the file in errors (default: its path).
    """
    path = Path(path)
    what = what or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{what}: no such file") from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{what}: corrupted gzip stream ({e})") from e
    return data


def parse_idx(data: bytes | bytearray | memoryview, what: str | os.PathLike[str] = "<bytes>") -> np.ndarray:
    """Parse decompressed IDX bytes into a writable, native-endian array; ``what`` names the source in errors."""
    view = memoryview(data)
    if len(view) < 4:
        raise DataError(f"{what}: not an IDX file (only {len(view)} bytes)")
    if view[0] != 0 or view[1] != 0 or view[2] not in IDX_TYPES:
        raise DataError(f"{what}: not an IDX file (bad magic number {bytes(view[:4]).hex()})")
    dtype, ndim = IDX_TYPES[view[2]], view[3]
    if ndim == 0:
        raise DataError(f"{what}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(view) < header:
        raise DataError(f"{what}: truncated IDX header ({len(view)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(view, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(view) != expected:
        problem = "truncated" if len(view) < expected else "has trailing bytes"
        raise DataError(f"{what}: IDX file {problem}: header says shape {shape} ({expected} bytes), "
                        f"file has {len(view)} bytes")
    array = np.frombuffer(view, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip detected from its magic bytes) into a numpy array of the declared shape.

    Raises :class:`DataError` for a bad magic number, a truncated file, trailing bytes or a broken gzip stream.
    """
    return parse_idx(read_raw(path), path)


def read_idx_verified(path: Path, sha256: str) -> np.ndarray:
    """Read an IDX file after checking the SHA-256 of its decompressed contents."""
    data = read_raw(path)
    check_digest(path, bytes_digest(data), sha256)
    return parse_idx(data, path)


def verify_idx(path: Path, sha256: str, what: str | None = None) -> None:
    """Check the SHA-256 of an IDX file's decompressed contents; :class:`DataError` on mismatch."""
    check_digest(what or path, bytes_digest(read_raw(path, what)), sha256)
