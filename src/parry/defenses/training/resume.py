"""The resume state of a training run: tensors in safetensors, everything else in JSON.

``resume.safetensors`` holds the model's, the best and the averaged (EMA) weights, the
optimiser's tensors and the RNG states (torch's global generator, CUDA's, the run's own);
``resume.json`` holds the optimiser's other state and param groups, the run's counters and
history, and the SHA-256 of the tensor file, checked before it is read. Nothing is ever
unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from parry.zoo.checkpoint import CheckpointError, _atomic_write, _json_default, sha256_file

STEM = "resume"


def resume_paths(directory: Path) -> tuple[Path, Path]:
    return directory / f"{STEM}.safetensors", directory / f"{STEM}.json"


def _device(model: torch.nn.Module) -> torch.device:
    return next(iter(model.state_dict().values())).device


def _cpu(t: Tensor) -> Tensor:
    return t.detach().to("cpu").clone().contiguous()


def save_resume_state(directory: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      generator: torch.Generator, best: dict[str, Tensor] | None, meta: dict[str, Any],
                      average: dict[str, Tensor] | None = None) -> None:
    """Write the resume state atomically (tensors first, then the JSON that names their hash)."""
    tensors = {f"model/{k}": _cpu(v) for k, v in model.state_dict().items()}
    for prefix, weights in (("best", best), ("average", average)):
        if weights is not None:
            tensors.update({f"{prefix}/{k}": _cpu(v) for k, v in weights.items()})
    opt = optimizer.state_dict()
    opt_other: dict[str, dict[str, Any]] = {}
    for index, entries in opt["state"].items():
        for name, value in entries.items():
            if isinstance(value, Tensor):
                tensors[f"optim/{index}/{name}"] = _cpu(value)
            else:
                opt_other.setdefault(str(index), {})[name] = value
    tensors["rng/torch"] = torch.get_rng_state()
    tensors["rng/generator"] = generator.get_state()
    device = _device(model)
    if device.type == "cuda":
        tensors["rng/cuda"] = torch.cuda.get_rng_state(device)
    weights, sidecar = resume_paths(directory)
    _atomic_write(weights, lambda tmp: save_file(tensors, tmp))
    record = {"meta": meta, "optimizer": {"state": opt_other, "param_groups": opt["param_groups"]},
              "has_best": best is not None, "has_average": average is not None, "sha256": sha256_file(weights)}
    text = json.dumps(record, indent=1, default=_json_default) + "\n"
    _atomic_write(sidecar, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def has_resume_state(directory: Path) -> bool:
    return all(p.is_file() for p in resume_paths(directory))


def load_resume_state(directory: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      generator: torch.Generator, check: Callable[[dict[str, Any]], None] | None = None,
                      ) -> tuple[dict[str, Any], dict[str, Tensor] | None, dict[str, Tensor] | None]:
    """Restore model, optimiser and RNG states in place; return (meta, best weights or None,
    averaged weights or None).

    ``check(meta)`` runs first and may refuse the state (raise) before anything is changed.
    """
    weights, sidecar = resume_paths(directory)
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{sidecar}: not valid JSON: {exc}") from exc
    if check is not None:
        check(record["meta"])
    if sha256_file(weights) != record.get("sha256"):
        raise CheckpointError(f"{weights}: SHA-256 differs from {sidecar.name}; the resume state is damaged")
    tensors = load_file(weights)
    device = _device(model)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")}, strict=True)
    best = average = None
    if record["has_best"]:
        best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best/")}
    if record.get("has_average"):
        average = {k[8:]: v.to(device) for k, v in tensors.items() if k.startswith("average/")}
    state: dict[int, dict[str, Any]] = {}
    for index, entries in record["optimizer"]["state"].items():
        state.setdefault(int(index), {}).update(entries)
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": record["optimizer"]["param_groups"]})
    torch.set_rng_state(tensors["rng/torch"])
    generator.set_state(tensors["rng/generator"])
    if "rng/cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng/cuda"], device)
    return record["meta"], best, average
