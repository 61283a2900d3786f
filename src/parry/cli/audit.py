"""``parry audit``: the gradient-masking audit of a checkpoint, one row per check."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import checkpoint_and_points, data_root_option, device_option, mirror_option, resolve_device


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Checkpoint (.safetensors with its .json sidecar).")
@click.option("--norm", type=click.Choice(["linf", "l2", "l1"]), default="linf", show_default=True)
@click.option("--eps", type=float, required=True, help="Radius in pixel space (the claim being audited).")
@click.option("-n", "--num-points", type=int, default=200, show_default=True,
              help="Test points, spread evenly over the test set.")
@click.option("--budget", type=click.Choice(["ci", "full"]), default="ci", show_default=True,
              help="ci = a quick look (few steps and queries); full = paper-grade budgets.")
@click.option("--surrogate", "surrogate_path", type=click.Path(), default=None,
              help="Checkpoint to craft transfer attacks on (default: train a small undefended CNN "
                   "on the training split).")
@click.option("--no-transfer", is_flag=True, help="Skip the transfer attack (no surrogate is trained).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=500, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the report as JSON here.")
@click.option("--strict", is_flag=True, help="Exit with status 1 unless the overall verdict is pass (for CI).")
@device_option
@data_root_option
@mirror_option
def audit(model_path, norm, eps, num_points, budget, surrogate_path, no_transfer, seed, batch_size, out, strict,
          device, data_root, mirror) -> None:
    """Gradient-masking audit of MODEL at NORM radius EPS: a table of checks and the verdict.

    The exit status is 0 whatever the verdict (non-zero only for errors), unless --strict:
    then 1 when the verdict is not pass.
    """
    from ..data import load
    from ..evaluate.audit import audit as run_audit
    from ..zoo import load_checkpoint

    dev = resolve_device(device)
    try:
        clf, meta, test, x, y = checkpoint_and_points(model_path, num_points, dev, data_root, mirror)
        surrogate, train_set = None, None
        if surrogate_path and not no_transfer:
            surrogate = load_checkpoint(surrogate_path, device=dev)[0]
        elif not no_transfer:
            train_set = load(meta["dataset"], "train", root=data_root, mirror=mirror)
        click.echo(f"model {model_path} ({meta['architecture']}, {test.name}); {norm} eps {eps:g}; budget "
                   f"{budget}; {num_points} test points spread over the test set; seed {seed}")
        report = run_audit(clf, x, y, norm=norm, eps=eps, seed=seed, budget=budget, surrogate=surrogate,
                           train_set=train_set, batch_size=batch_size,
                           progress=lambda c: click.echo(f"  {c.name}: {c.verdict} ({c.time_s:.1f} s)", err=True))
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(report.table())
    click.echo(f"clean accuracy {100 * report.clean_accuracy:.1f} %; audit time {report.time_s:.1f} s")
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"model": str(model_path), "dataset": test.name, "selection": "spread", **report.to_dict()}
        path.write_text(json.dumps(data, indent=2, default=str))
        click.echo(f"wrote {path}")
    if strict and report.verdict != "pass":
        raise click.exceptions.Exit(1)
