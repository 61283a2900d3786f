"""ModelSpec: a model to evaluate, with the identity the results store records for it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..classifier import Classifier, as_classifier


def state_dict_sha256(model: nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes and bytes, in name order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@dataclass(eq=False)
class ModelSpec:
    """A named classifier for the data set ``dataset``.

    ``sha256`` identifies the weights: the checkpoint's SHA-256 from its JSON sidecar, or, for a
    model built in memory, :func:`state_dict_sha256` (computed when not given). ``recipe`` is
    the training recipe (the sidecar's), used to pair models trained alike on other data sets.
    """

    name: str
    classifier: nn.Module
    dataset: str
    checkpoint: str | None = None
    sha256: str | None = None
    architecture: str | None = None
    recipe: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name: expected a non-empty model name, got {self.name!r}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset: expected a data set name, got {self.dataset!r}")
        self.classifier = as_classifier(self.classifier)
        if self.sha256 is None:
            self.sha256 = state_dict_sha256(self.classifier)

    @property
    def model(self) -> Classifier:
        return self.classifier

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, name: str | None = None,
                        device: torch.device | str = "cpu") -> "ModelSpec":
        """Load and verify a checkpoint (see :func:`parry.zoo.load_checkpoint`). The default name
        is the file's stem, or ``<folder>/<stem>`` for a Trainer's ``best`` and ``last``."""
        from ..zoo import load_checkpoint
        from ..zoo.checkpoint import checkpoint_paths

        clf, meta = load_checkpoint(path, device=device)
        weights, _ = checkpoint_paths(path)
        if name is None:
            name = f"{weights.parent.name}/{weights.stem}" if weights.stem in ("best", "last") else weights.stem
        return cls(name, clf, meta["dataset"], checkpoint=str(weights), sha256=meta["sha256"],
                   architecture=meta["architecture"], recipe=meta.get("recipe"))

    def record(self) -> dict[str, Any]:
        """What the store keeps about the model."""
        return {"name": self.name, "sha256": self.sha256, "dataset": self.dataset, "checkpoint": self.checkpoint,
                "architecture": self.architecture, "recipe": self.recipe}
