"""Options shared by several commands."""

from __future__ import annotations

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


device_option = click.option("--device", default="auto", show_default=True,
                             help="Torch device: auto, cpu, cuda, cuda:1 ...")
data_root_option = click.option("--data-root", type=click.Path(file_okay=False), default=None,
                                help="Data directory (default: $PARRY_DATA or ~/.cache/parry).")
mirror_option = click.option("--mirror", default=None,
                             help="Base URL of a data mirror, e.g. file:///path/to/shared/data "
                                  "(default: $PARRY_MIRROR).")
