"""Checkpoints: weights in safetensors, metadata in a JSON sidecar.

``<stem>.safetensors`` holds the Classifier's state_dict (no pickle anywhere);
``<stem>.json`` says how to rebuild it (architecture, data set, normalisation), how it
was trained (recipe) and how good it is (metrics), and carries the SHA-256 of the
weights, which :func:`load_checkpoint` verifies before reading them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from parry.classifier import Classifier
from parry.zoo.registry import ARCHITECTURES, wrap

FORMAT = "parry-checkpoint"
FORMAT_VERSION = 1
_EXTENSIONS = (".safetensors", ".json")


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted or rebuilt (tampered, corrupted, unknown)."""


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, sidecar) for a checkpoint given with or without its extension."""
    text = os.fspath(path)
    for ext in _EXTENSIONS:
        if text.endswith(ext):
            text = text[: -len(ext)]
            break
    if not text or text.endswith(("/", os.sep)):
        raise ValueError(f"path: no checkpoint name in {os.fspath(path)!r}")
    return Path(text + ".safetensors"), Path(text + ".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(target: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_name)`` on a temporary file next to ``target``, then rename it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parry_version() -> str:
    try:
        from parry import __version__
        return str(__version__)
    except ImportError:
        pass
    try:
        from importlib.metadata import version
        return version("parry")
    except Exception:  # not installed: running from source
        return "unknown"


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _channel_list(t: torch.Tensor | None) -> list[float] | None:
    return None if t is None else [float(v) for v in t.flatten().tolist()]


def save_checkpoint(
    path: str | os.PathLike,
    classifier: Classifier,
    *,
    architecture: str,
    arch_kwargs: dict[str, Any],
    dataset: str,
    recipe: dict[str, Any],
    metrics: dict[str, Any],
) -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically; return the weights path.

    ``classifier`` must be a :class:`Classifier` with ``input_shape`` and ``num_classes``
    set (as :func:`parry.zoo.make_classifier` makes them); ``arch_kwargs`` are the extra
    arguments given to the architecture; ``recipe`` and ``metrics`` must be JSON-serialisable.
    """
    if not isinstance(classifier, Classifier):
        raise TypeError(f"classifier: expected a parry Classifier, got {type(classifier).__name__}")
    if classifier.input_shape is None or classifier.num_classes is None:
        raise ValueError("classifier: input_shape and num_classes must be set to save a checkpoint")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture: unknown name {architecture!r}; valid names: {', '.join(ARCHITECTURES)}")
    weights, sidecar = checkpoint_paths(path)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "arch_kwargs": dict(arch_kwargs),
        "dataset": dataset,
        "input_shape": list(classifier.input_shape),
        "num_classes": classifier.num_classes,
        "bounds": list(classifier.bounds),
        "mean": _channel_list(classifier.mean),
        "std": _channel_list(classifier.std),
        "recipe": recipe,
        "metrics": metrics,
    }
    for key in ("arch_kwargs", "recipe", "metrics"):
        try:
            json.dumps(meta[key], default=_json_default)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{key}: not JSON-serialisable: {exc}") from exc
    # Clone: contiguous, on the CPU, and no shared storage (which safetensors refuses).
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in classifier.state_dict().items()}
    _atomic_write(weights, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT}))
    meta.update(
        sha256=sha256_file(weights),
        weights_file=weights.name,
        parry_version=_parry_version(),
        torch_version=torch.__version__,
        created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    text = json.dumps(meta, indent=2, default=_json_default) + "\n"
    _atomic_write(sidecar, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return weights


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of a checkpoint, checked for format and version (weights not read)."""
    _, sidecar = checkpoint_paths(path)
    if not sidecar.is_file():
        raise FileNotFoundError(f"checkpoint metadata (JSON sidecar) not found: {sidecar}")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{sidecar}: not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{sidecar}: not a parry checkpoint sidecar")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{sidecar}: unsupported format version {meta.get('format_version')!r} "
                              f"(this parry reads version {FORMAT_VERSION})")
    missing = [k for k in ("architecture", "arch_kwargs", "input_shape", "num_classes", "bounds",
                           "mean", "std", "sha256") if k not in meta]
    if missing:
        raise CheckpointError(f"{sidecar}: missing fields {missing}")
    return meta


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """Verify and load a checkpoint written by :func:`save_checkpoint`.

    ``path`` may name the stem, the ``.safetensors`` or the ``.json`` file. Returns the
    rebuilt Classifier on ``device`` in eval mode, and the metadata dict.
    Raises FileNotFoundError for a missing file and :class:`CheckpointError` (a
    ValueError) for a SHA-256 mismatch, an unknown architecture, weights that do not fit
    the architecture, or an unsupported format version.
    """
    weights, sidecar = checkpoint_paths(path)
    meta = read_metadata(path)
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint weights not found: {weights}")
    digest = sha256_file(weights)
    if digest != meta["sha256"]:
        raise CheckpointError(f"{weights}: SHA-256 mismatch (file has {digest}, {sidecar.name} records "
                              f"{meta['sha256']}); the weights were modified or corrupted")
    if meta["architecture"] not in ARCHITECTURES:
        raise CheckpointError(f"{sidecar}: unknown architecture {meta['architecture']!r}; "
                              f"valid names: {', '.join(ARCHITECTURES)}")
    try:
        classifier = wrap(meta["architecture"], meta["arch_kwargs"], input_shape=meta["input_shape"],
                          num_classes=meta["num_classes"], mean=meta["mean"], std=meta["std"],
                          bounds=tuple(meta["bounds"]))
        state = load_file(weights)
        classifier.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{weights}: cannot load into {meta['architecture']!r}: {exc}") from exc
    return classifier.to(device).eval(), meta
