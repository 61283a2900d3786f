"""A restricted unpickler for data files that are pickles of plain containers and numpy arrays.

``pickle.load`` runs whatever callables a file names; this one resolves only the handful of
numpy reconstruction globals that array pickles need and refuses everything else.
"""

from __future__ import annotations

import codecs
import importlib
import io
import os
import pickle
from typing import IO, Any

from .errors import DataError


def _numpy_attr(module: str, name: str) -> Any:
    """``numpy.<module>.<name>``, whether numpy keeps it under ``numpy._core`` (2.x) or ``numpy.core`` (1.x)."""
    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{module}"), name)
        except (ImportError, AttributeError):
            continue
    raise DataError(f"numpy has no {module}.{name}")


def _allowed(module: str, name: str) -> Any | None:
    if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
        return getattr(importlib.import_module("numpy"), name)
    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
        return _numpy_attr("multiarray", name)
    if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
        return _numpy_attr("numeric", name)
    if (module, name) == ("_codecs", "encode"):   # how protocol-2 pickles from Python 3 store bytes
        return codecs.encode
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that loads only builtin containers/scalars and numpy arrays.

    Any other global (``os.system``, ``builtins.eval``, ...) raises :class:`pickle.UnpicklingError`.
    """

    def find_class(self, module: str, name: str) -> Any:
        obj = _allowed(module, name)
        if obj is None:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: this file should hold only numpy arrays "
                "and plain containers (a pickle naming other callables can run arbitrary code)")
        return obj


def load_pickle(source: str | os.PathLike[str] | bytes | IO[bytes], what: str | None = None,
                encoding: str = "latin1") -> Any:
    """Unpickle a data file with :class:`RestrictedUnpickler`; any failure is a :class:`DataError`.

    ``encoding="latin1"`` reads the Python 2 pickles of the CIFAR distribution (and Python 3 ones).
    """
    if isinstance(source, (bytes, bytearray)):
        what, stream = what or "<bytes>", io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        what = what or os.fspath(source)
        try:
            with open(source, "rb") as f:
                return load_pickle(f, what, encoding)
        except FileNotFoundError:
            raise DataError(f"{what}: no such file") from None
    else:
        what, stream = what or getattr(source, "name", "<stream>"), source
    try:
        return RestrictedUnpickler(stream, encoding=encoding).load()
    except pickle.UnpicklingError as e:
        raise DataError(f"{what}: {e}") from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise DataError(f"{what}: not a valid pickle ({type(e).__name__}: {e})") from e
