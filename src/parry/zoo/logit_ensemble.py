"""An ensemble that averages its members' logits, as one network and one checkpoint.

Averaging logits is the usual way to combine independently trained models. Attacked as one
differentiable network, the ensemble gives every white-box attack the gradient of the whole,
not of one member, which is how an ensemble defence must be evaluated (He, Wei, Chen, Carlini &
Song, "Adversarial Example Defenses: Ensembles of Weak Defenses are not Strong", WOOT 2017).
The members share the input normalisation, bounds and classes; :func:`save_ensemble` combines
saved checkpoints into one checkpoint (architecture ``logit-ensemble``) that every command loads
like any other.

With ``flip=True`` the ensemble also averages over each member's logits on the left-right mirror
image of the input: test-time transformation ensembling (Pérez, Alfarra, Jeanneret, Rueda,
Thabet, Ghanem & Arbeláez, "Enhancing Adversarial Robustness via Test-time Transformation
Ensembling", ICCV Workshops 2021), for models trained on mirrored images. The mirror is a fixed
permutation of pixels, so the ensemble stays deterministic and differentiable: attacks get its
exact gradient and nothing is hidden from them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

#: Sidecar fields that every member of an ensemble must share.
SHARED_FIELDS = ("dataset", "input_shape", "num_classes", "bounds", "mean", "std")


def _fewest(flip: bool) -> tuple[int, str]:
    """The fewest members an ensemble needs (one with ``flip``: its mirror image is a second view), and
    how to say it."""
    if not isinstance(flip, bool):
        raise ValueError(f"flip: expected True or False, got {flip!r}")
    return (1, "with flip, at least one") if flip else (2, "at least two")


class LogitEnsemble(nn.Module):
    """The mean of the members' logits.

    Args:
        members: one ``{"architecture": name, "arch_kwargs": {...}}`` per member (at least two;
            registry architectures other than ``logit-ensemble``). With ``flip``, one is enough.
        in_channels, num_classes: passed to every member, as the registry does.
        flip: also average each member's logits on the left-right mirror image (the last axis).
    """

    def __init__(self, members: Sequence[Mapping[str, Any]], in_channels: int, num_classes: int,
                 flip: bool = False) -> None:
        from parry.zoo.registry import build  # the registry lists this module's class

        super().__init__()
        fewest, words = _fewest(flip)
        if isinstance(members, (str, Mapping)) or not isinstance(members, Sequence) or len(members) < fewest:
            raise ValueError(f"members: expected {words} member specifications, got {members!r}")
        nets = []
        for i, spec in enumerate(members):
            if not isinstance(spec, Mapping) or set(spec) != {"architecture", "arch_kwargs"}:
                raise ValueError(f"members[{i}]: expected {{'architecture': ..., 'arch_kwargs': ...}}, got {spec!r}")
            if spec["architecture"] == "logit-ensemble":
                raise ValueError(f"members[{i}]: an ensemble cannot be a member; list its members instead")
            nets.append(build(spec["architecture"], **{"in_channels": in_channels, "num_classes": num_classes,
                                                       **spec["arch_kwargs"]}))
        self.members = nn.ModuleList(nets)
        self.flip = flip

    def forward(self, x: Tensor) -> Tensor:
        views = (x, x.flip(-1)) if self.flip else (x,)
        return torch.stack([member(view) for member in self.members for view in views]).mean(dim=0)


def save_ensemble(paths: Sequence[str | os.PathLike], out: str | os.PathLike, flip: bool = False) -> Path:
    """Combine the checkpoints ``paths`` (at least two, or one with ``flip``; with the same
    :data:`SHARED_FIELDS`) into one ``logit-ensemble`` checkpoint at ``out``; its recipe lists
    each member's path, SHA-256 and recipe. With ``flip`` every member must have been trained on
    mirrored images (its recipe's ``augment.flip``). Returns the weights path."""
    from parry.zoo.checkpoint import load_checkpoint, save_checkpoint
    from parry.zoo.registry import wrap

    fewest, words = _fewest(flip)
    if isinstance(paths, (str, os.PathLike)) or len(paths) < fewest:
        raise ValueError(f"checkpoints: an ensemble needs {words}, got {paths!r}")
    loaded = [load_checkpoint(p) for p in paths]
    first = loaded[0][1]
    for path, (_, meta) in zip(paths[1:], loaded[1:]):
        for key in SHARED_FIELDS:
            if meta.get(key) != first.get(key):
                raise ValueError(f"checkpoints: {path} has {key} {meta.get(key)!r} but {paths[0]} has "
                                 f"{first.get(key)!r}; an ensemble's members must share {', '.join(SHARED_FIELDS)}")
    unmirrored = [path for path, (_, meta) in zip(paths, loaded)
                  if not ((meta.get("recipe") or {}).get("augment") or {}).get("flip")]
    if flip and unmirrored:
        raise ValueError(f"checkpoints: {unmirrored[0]} was not trained on mirrored images (its recipe has no "
                         "augment.flip); mirroring its inputs at test time would only cost accuracy")
    members = [{"architecture": meta["architecture"], "arch_kwargs": meta["arch_kwargs"]} for _, meta in loaded]
    ensemble = wrap("logit-ensemble", {"members": members, "flip": flip}, input_shape=first["input_shape"],
                    num_classes=first["num_classes"], mean=first["mean"], std=first["std"],
                    bounds=tuple(first["bounds"]))
    for net, (member, _) in zip(ensemble.model.members, loaded):
        net.load_state_dict(member.model.state_dict())
    recipe = {"ensemble_of": [{"checkpoint": str(path), "sha256": meta["sha256"], "recipe": meta.get("recipe")}
                              for path, (_, meta) in zip(paths, loaded)], "flip": flip}
    return save_checkpoint(out, ensemble, architecture="logit-ensemble",
                           arch_kwargs={"members": members, "flip": flip},
                           dataset=first.get("dataset"), recipe=recipe, metrics={})
