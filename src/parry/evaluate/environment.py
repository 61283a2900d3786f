"""What a run ran on: package versions, device and a host-name-free platform string."""

from __future__ import annotations

import platform
from typing import Any

import numpy
import torch

#: Keys that must agree before a stopped run may be resumed (results could differ otherwise).
RESUME_KEYS = ("python", "torch", "numpy", "parry", "device")


def device_name(device: torch.device | str | None) -> str:
    """'cpu', or 'cuda:0 (<GPU name>)' for a CUDA device."""
    device = torch.device("cpu" if device is None else device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type if device.index is None else f"{device.type}:{device.index}"


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """Versions of python, torch, numpy and parry, the device and the platform (no host name)."""
    from .. import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "parry": __version__,
        "device": device_name(device),
        "cuda": torch.version.cuda,
        "platform": platform.platform(),  # kernel, machine and libc: never the host name
        "torch_threads": torch.get_num_threads(),
    }


def resume_mismatch(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The :data:`RESUME_KEYS` whose values differ, as ``{key: (recorded, current)}``."""
    return {k: (recorded.get(k), current.get(k)) for k in RESUME_KEYS if recorded.get(k) != current.get(k)}
