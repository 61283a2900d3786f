"""Downloads over urllib (``http(s)://`` and ``file://``), written to a temp file and renamed atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import FileUnavailable, SourceUnavailable
from .progress import bar

#: Seconds to wait for a connection or a read before giving up on a host.
TIMEOUT_S = 10.0
_CHUNK = 1 << 20


def file_mode(mode: int = 0o666) -> int:
    """``mode`` with the process umask applied (what ``open`` would give a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


@contextlib.contextmanager
def atomic_writer(dest: Path) -> Iterator[IO[bytes]]:
    """Open a temp file beside ``dest``; it becomes ``dest`` (atomic rename) only if the block succeeds.

    An interrupted write leaves at most a ``.<name>.*.part`` file, never a half file under ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())   # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def copy_stream(src: IO[bytes], dest: Path, *, desc: str, total: int | None = None, progress: bool = True) -> Path:
    """Copy a binary stream into ``dest`` atomically, with a byte progress bar."""
    with atomic_writer(dest) as out, bar(desc=desc, total=total, enabled=progress) as b:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            b.update(len(chunk))
    return dest


def download(url: str, dest: Path, *, progress: bool = True, timeout: float = TIMEOUT_S) -> Path:
    """Fetch ``url`` into ``dest`` (atomically).

    Raises :class:`FileUnavailable` when the server answers but lacks the file (HTTP error, missing
    local file) and :class:`SourceUnavailable` when the host cannot be reached at all.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:   # noqa: S310 (scheme checked by caller)
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            return copy_stream(response, dest, desc=dest.name, total=total, progress=progress)
    except urllib.error.HTTPError as e:
        raise FileUnavailable(f"HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise FileUnavailable(e.reason.strerror or str(e.reason)) from e
        raise SourceUnavailable(f"cannot reach {url} ({e.reason})") from e
    except (TimeoutError, ConnectionError) as e:
        raise SourceUnavailable(f"connection to {url} failed ({type(e).__name__}: {e})") from e

