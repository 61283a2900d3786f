"""The fetch engine: files already present, then each source in turn, every file verified before use.

A file that fails verification is never left in place: a corrupt local copy is renamed to
``*.corrupt`` and a corrupt download is discarded; the engine then moves on to the next source.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import DataError, FetchError, SourceUnavailable
from .idx import GZIP_MAGIC
from .sources import Source

#: Verifies a file (``path``, ``what`` names it in errors); raises :class:`DataError` if it is bad.
Check = Callable[[Path, str], None]


def quarantine(path: Path) -> Path:
    """Move a corrupt file or folder aside to ``<name>.corrupt`` (replacing an older one)."""
    target = path.with_name(path.name + ".corrupt")
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(path, target)
    return target


def local_candidates(directory: Path, name: str) -> list[Path]:
    """Present files that may hold ``name``: ``name`` itself or ``name.gz``."""
    names = [name] if name.endswith(".gz") else [name, f"{name}.gz"]
    return [directory / n for n in names if (directory / n).is_file()]


def _install(path: Path, directory: Path, name: str) -> Path:
    with open(path, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    final = directory / (f"{name}.gz" if gz and not name.endswith(".gz") else name)
    os.replace(path, final)
    return final


def format_attempts(attempts: Sequence[tuple[str, str]]) -> str:
    """One entry per source tried, with its reason(s) (one per line when there are several)."""
    grouped: dict[str, list[str]] = {}
    for label, reason in attempts:
        grouped.setdefault(label, []).append(reason)
    return "\n".join(f"  - {label}: {reasons[0]}" if len(reasons) == 1 else
                     f"  - {label}:" + "".join(f"\n      {r}" for r in reasons) for label, reasons in grouped.items())


def acquire(directory: Path, wanted: Mapping[str, Check], sources: Sequence[Source], *, what: str,
            any_of: bool = False, progress: bool = True,
            notes: Sequence[tuple[str, str]] = ()) -> dict[str, Path]:
    """Make every file of ``wanted`` (or, with ``any_of``, the first one obtainable) present and verified.

    Returns ``{name: path in directory}``. Raises :class:`FetchError` listing every source tried and
    why it failed when the files cannot be obtained (after ``notes``, earlier ``(source, reason)`` pairs).
    """
    attempts: list[tuple[str, str]] = list(notes)
    have: dict[str, Path] = {}
    local = f"data directory {directory}"

    def complete() -> bool:
        return bool(have) if any_of else len(have) == len(wanted)

    for name, check in wanted.items():
        for path in local_candidates(directory, name):
            try:
                check(path, str(path))
            except DataError as e:
                moved = quarantine(path)
                attempts.append((local, f"{e} (moved to {moved.name})"))
            else:
                have[name] = path
                break
        if complete():
            return have
    absent = [n for n in wanted if n not in have]
    attempts.append((local, f"{'none present of' if any_of else 'missing'} {', '.join(absent)}"))

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".fetch-") as tmp:
        for number, source in enumerate(sources):
            pending = [n for n in wanted if n not in have and source.offers(n)]
            if not pending:
                continue
            reason = source.skip_reason()
            if reason:
                attempts.append((source.label, f"skipped: {reason}"))
                continue
            staging = Path(tmp) / str(number)
            staging.mkdir()
            for name in pending:
                try:
                    path, origin = source.get(name, staging, progress)
                    wanted[name](path, origin)
                    have[name] = _install(path, directory, name)
                except SourceUnavailable as e:
                    attempts.append((source.label, str(e)))
                    break
                except Exception as e:   # a broken download, a corrupt file, ...: try the next source
                    attempts.append((source.label, f"{name}: {e}"))
                if complete():
                    return have
            with contextlib.suppress(OSError):
                shutil.rmtree(staging)
    raise FetchError(f"could not fetch {what} into {directory}; sources tried:\n{format_attempts(attempts)}\n"
                     "Point mirror= / --mirror / PARRY_MIRROR at a copy (e.g. file:///path/to/shared/data), "
                     f"or put the files in {directory}.", attempts)
