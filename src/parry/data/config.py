"""Where data live and where they may come from: the data directory, the mirror, offline mode."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

#: Environment variable naming the data directory (default ``~/.cache/parry``).
ENV_DATA = "PARRY_DATA"
#: Environment variable naming a mirror base URL (``file://...`` or ``http(s)://...``).
ENV_MIRROR = "PARRY_MIRROR"
#: Environment variable that, when true, keeps fetches off the official sites and package registries.
ENV_OFFLINE = "PARRY_OFFLINE"


def data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``root`` if given, else ``$PARRY_DATA``, else ``~/.cache/parry``."""
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root: expected a path or None, got {type(root).__name__}")
        return Path(root).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "parry"


def resolve_mirror(mirror: str | os.PathLike[str] | None = None) -> str | None:
    """The mirror base URL: ``mirror`` if given, else ``$PARRY_MIRROR``, else None.

    A plain local path is turned into a ``file://`` URL; the result has no trailing slash.
    """
    if mirror is None:
        mirror = os.environ.get(ENV_MIRROR) or None
        if mirror is None:
            return None
    if not isinstance(mirror, (str, os.PathLike)):
        raise TypeError(f"mirror: expected a URL string or None, got {type(mirror).__name__}")
    text = os.fspath(mirror).strip()
    if not text:
        raise ValueError("mirror: empty URL")
    scheme = urlparse(text).scheme
    if scheme in ("file", "http", "https"):
        return text.rstrip("/")
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):   # a local path
        return Path(text).expanduser().resolve().as_uri()
    raise ValueError(f"mirror: unsupported URL scheme {scheme!r} in {text!r}; "
                     "use file://, http:// or https://, or a local folder")


def offline() -> bool:
    """True when ``$PARRY_OFFLINE`` asks to stay off the official sites and package registries."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")
