"""The CIFAR-10 distribution formats (Krizhevsky 2009, "Learning multiple layers of features from
tiny images", tech. report, U. Toronto): the python-pickle and the binary version.

* python: ``cifar-10-python.tar.gz`` / ``cifar-10-batches-py/`` with ``data_batch_1..5``,
  ``test_batch`` (pickled dicts: ``data`` uint8 (10000, 3072) in CHW order, ``labels``) and
  ``batches.meta`` (``label_names``). Read with a restricted unpickler, never ``pickle.load``.
* binary: ``cifar-10-binary.tar.gz`` / ``cifar-10-batches-bin/`` with ``data_batch_1..5.bin``,
  ``test_batch.bin`` (records of 1 label byte + 3072 pixel bytes) and ``batches.meta.txt``.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .acquire import quarantine
from .checksums import write_manifest
from .dataset import ArrayDataset
from .download import file_mode
from .errors import DataError
from .progress import track
from .safe_pickle import load_pickle
from .spec import SPLITS

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PYTHON_FOLDER = "cifar-10-batches-py"
BINARY_FOLDER = "cifar-10-batches-bin"
PYTHON_TARBALL = "cifar-10-python.tar.gz"
BINARY_TARBALL = "cifar-10-binary.tar.gz"
IMAGE_SHAPE = (3, 32, 32)
IMAGE_BYTES = 3 * 32 * 32
RECORD_BYTES = 1 + IMAGE_BYTES

#: A file in a binary-layout folder that marks it as converted from the JPEG-re-encoded copy.
JPEG_MARKER = "JPEG_COPY.txt"
JPEG_NOTE = ("CIFAR-10 (JPEG copy): the CIFAR-10 images re-encoded as JPEG (quality about 75); every pixel "
             "carries JPEG error of a few grey levels, so results are not comparable digit for digit with "
             "published CIFAR-10 figures and must be labelled 'CIFAR-10 (JPEG copy)'.")


def batch_files(split: str, binary: bool) -> list[str]:
    """Batch file names of a split in the python (``binary=False``) or binary layout."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return [f"{n}.bin" for n in names] if binary else names


def meta_file(binary: bool) -> str:
    return "batches.meta.txt" if binary else "batches.meta"


def parse_binary_batch(data: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Records of 1 label byte + 3072 pixel bytes -> images (n, 3, 32, 32) uint8, labels (n,) int64."""
    if not data or len(data) % RECORD_BYTES:
        raise DataError(f"{what}: {len(data)} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR records "
                        "(truncated or not a CIFAR-10 binary batch)")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    return records[:, 1:].reshape(-1, *IMAGE_SHAPE), records[:, 0].astype(np.int64)


def encode_binary_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The binary-format bytes of images (n, 3, 32, 32) uint8 and labels (n,)."""
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE or labels.shape != images.shape[:1]:
        raise ValueError(f"images: expected uint8 (n, 3, 32, 32) with n labels, got {images.dtype} "
                         f"{images.shape} and labels {labels.shape}")
    return np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)], axis=1).tobytes()


def _str_keys(obj: object, what: str) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise DataError(f"{what}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def parse_pickle_batch(data: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A pickled batch dict (``data``, ``labels``) -> images (n, 3, 32, 32) uint8, labels (n,) int64."""
    batch = _str_keys(load_pickle(data, what), what)
    pixels, labels = batch.get("data"), batch.get("labels")
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 \
            or pixels.shape[1] != IMAGE_BYTES:
        raise DataError(f"{what}: 'data' must be a uint8 array (n, {IMAGE_BYTES}), got "
                        f"{getattr(pixels, 'dtype', type(pixels).__name__)} {getattr(pixels, 'shape', '')}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what}: 'labels' must be a list of integers ({e})") from e
    if labels.shape != (pixels.shape[0],):
        raise DataError(f"{what}: {labels.shape} labels for {pixels.shape[0]} images")
    return pixels.reshape(-1, *IMAGE_SHAPE), labels


def parse_meta(data: bytes, binary: bool, what: str) -> list[str]:
    """Class names from ``batches.meta.txt`` (one per line) or the pickled ``batches.meta`` (``label_names``)."""
    if binary:
        names = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    else:
        raw = _str_keys(load_pickle(data, what), what).get("label_names")
        if not isinstance(raw, list):
            raise DataError(f"{what}: no 'label_names' list")
        names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in raw]
    if len(names) != len(CLASSES):
        raise DataError(f"{what}: expected {len(CLASSES)} class names, got {len(names)}")
    return names


def read_members(path: Path, folder: str, required: Sequence[str], optional: Sequence[str] = (), *,
                 progress: bool = False) -> dict[str, bytes]:
    """Bytes of the named files from a tarball, a ``<folder>`` directory or a directory holding it.

    Files are looked up by name only (no path from an archive is ever used for writing).
    """
    wanted = set(required) | set(optional)
    found: dict[str, bytes] = {}
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in track(tar, desc=f"reading {path.name}", unit="file", enabled=progress):
                    name = Path(member.name).name
                    if member.isfile() and name in wanted and Path(member.name).parent.name == folder:
                        found[name] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{path}: cannot read the archive ({e})") from e
    elif path.is_dir():
        base = path / folder if (path / folder).is_dir() else path
        for name in wanted:
            if (base / name).is_file():
                found[name] = (base / name).read_bytes()
        path = base
    else:
        raise DataError(f"{path}: no such file or folder")
    missing = [n for n in required if n not in found]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (expected the {folder} layout)")
    return found


def _read(path: str | os.PathLike[str], split: str, binary: bool) -> ArrayDataset:
    path = Path(path)
    folder = BINARY_FOLDER if binary else PYTHON_FOLDER
    names = batch_files(split, binary)
    members = read_members(path, folder, names, optional=[meta_file(binary), JPEG_MARKER])
    parse = parse_binary_batch if binary else parse_pickle_batch
    batches = [parse(members[n], f"{path}:{n}") for n in names]
    meta = members.get(meta_file(binary))
    classes = parse_meta(meta, binary, f"{path}:{meta_file(binary)}") if meta is not None else list(CLASSES)
    jpeg = JPEG_MARKER in members
    return ArrayDataset(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]),
                        classes, "cifar10-jpeg" if jpeg else "cifar10", JPEG_NOTE if jpeg else "")


def read_cifar10_pickle(path: str | os.PathLike[str], split: str = "train") -> ArrayDataset:
    """Read a split of the python-pickle CIFAR-10 (the tarball, ``cifar-10-batches-py/`` or its parent).

    Pickles are read with a restricted unpickler that loads numpy arrays only.
    """
    return _read(path, split, binary=False)


def read_cifar10_binary(path: str | os.PathLike[str], split: str = "train") -> ArrayDataset:
    """Read a split of the binary CIFAR-10 (the tarball, ``cifar-10-batches-bin/`` or its parent).

    A folder converted from the JPEG copy (it holds ``JPEG_COPY.txt``) gives ``name="cifar10-jpeg"``.
    """
    return _read(path, split, binary=True)


def write_batch_folder(dest: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` and their ``MANIFEST.sha256`` into a temp folder renamed to ``dest`` at the end.

    An existing ``dest`` is moved aside to ``dest.corrupt`` first.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        write_manifest(tmp, sorted(files))
        tmp.chmod(file_mode(0o777))   # mkdtemp creates 0700
        if dest.exists():
            quarantine(dest)
        os.replace(tmp, dest)
    except BaseException:
        for child in tmp.iterdir() if tmp.exists() else ():
            child.unlink()
        if tmp.exists():
            tmp.rmdir()
        raise
    return dest


def extract_batches(tarball: Path, dest: Path, binary: bool, *, progress: bool = False) -> Path:
    """Extract the batch and meta files of an official CIFAR-10 tarball into ``dest`` (with a manifest)."""
    folder = BINARY_FOLDER if binary else PYTHON_FOLDER
    names = [*batch_files("train", binary), *batch_files("test", binary), meta_file(binary)]
    members = read_members(tarball, folder, names, progress=progress)
    # parse once so that a tarball with the right digest but the wrong contents is caught here
    parse = parse_binary_batch if binary else parse_pickle_batch
    for name in names[:-1]:
        parse(members[name], f"{tarball}:{name}")
    return write_batch_folder(dest, members)
