"""``parry ensemble``: combine checkpoints into one logit-averaging ensemble checkpoint."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Checkpoint stem of the ensemble (writes STEM.safetensors and STEM.json).")
@click.option("--flip", is_flag=True,
              help="Also average each member's logits on the left-right mirror image (test-time "
                   "transformation ensembling; members trained on mirrored images; one is enough).")
def ensemble(checkpoints: tuple[Path, ...], out: Path, flip: bool) -> None:
    """Combine CHECKPOINTS (at least two, or one with --flip; of the same data set, input shape,
    classes and normalisation) into one checkpoint whose logits are the mean of theirs; attack and
    audit it like any other model (--model STEM). Its sidecar lists each member's path and SHA-256."""
    from ..zoo.logit_ensemble import save_ensemble

    try:
        weights = save_ensemble(list(checkpoints), out, flip=flip)
    except (ValueError, FileNotFoundError) as exc:
        raise click.UsageError(str(exc)) from exc
    views = " and their mirror images" if flip else ""
    whose = "1 member's logits" if len(checkpoints) == 1 else f"{len(checkpoints)} members' logits"
    click.echo(f"wrote {weights} (mean of {whose} on the inputs{views})")
