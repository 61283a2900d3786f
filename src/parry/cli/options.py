"""Options shared by several commands."""

from __future__ import annotations

from typing import Any

import click
import torch


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else must be a device torch knows."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    return device


def spread_test_points(dataset: str, num_points: int, data_root: str | None, mirror: str | None):
    """The data set's test split and ``num_points`` of it spread evenly over it (DESIGN.md, rule 6)."""
    from ..data import load

    test = load(dataset, "test", root=data_root, mirror=mirror)
    if not 0 < num_points <= len(test):
        raise ValueError(f"--num-points: must lie in [1, {len(test)}] for {test.name}, got {num_points}")
    return test, test.spread(num_points)


def checkpoint_and_points(model_path: str, num_points: int, device: torch.device, data_root: str | None,
                          mirror: str | None) -> tuple[Any, dict, Any, torch.Tensor, torch.Tensor]:
    """A checkpoint's classifier and metadata, its test split, and the spread points as tensors."""
    from ..zoo import load_checkpoint

    clf, meta = load_checkpoint(model_path, device=device)
    test, points = spread_test_points(meta["dataset"], num_points, data_root, mirror)
    x, y = points.tensors(device=device)
    return clf, meta, test, x, y


device_option = click.option("--device", default="auto", show_default=True,
                             help="Torch device: auto, cpu, cuda, cuda:1 ...")
data_root_option = click.option("--data-root", type=click.Path(file_okay=False), default=None,
                                help="Data directory (default: $PARRY_DATA or ~/.cache/parry).")
mirror_option = click.option("--mirror", default=None,
                             help="Base URL of a data mirror, e.g. file:///path/to/shared/data "
                                  "(default: $PARRY_MIRROR).")
