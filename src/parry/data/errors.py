"""Exceptions of the data layer."""

from __future__ import annotations

from collections.abc import Sequence


class DataError(RuntimeError):
    """A data file is missing, corrupted or fails verification, or a fetch failed."""


class FetchError(DataError):
    """Every source of a data set failed; ``attempts`` holds ``(source, reason)`` for each one tried."""

    def __init__(self, message: str, attempts: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.attempts: list[tuple[str, str]] = list(attempts)


class JpegCopyWarning(UserWarning):
    """Emitted when CIFAR-10 is served from the JPEG-re-encoded copy instead of the original pixels."""


class SourceUnavailable(Exception):
    """Internal: a whole source cannot be used (host unreachable, client missing, ...); try the next one."""


class FileUnavailable(Exception):
    """Internal: a source does not have one file (HTTP 404, no such file in the package, ...)."""
