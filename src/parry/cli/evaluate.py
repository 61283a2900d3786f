"""``parry evaluate``: the AutoAttack-equivalent ensemble on a checkpoint, per-stage table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import data_root_option, device_option, mirror_option, resolve_device


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Checkpoint (.safetensors with its .json sidecar).")
@click.option("--preset", type=click.Choice(["standard", "fast"]), default="standard", show_default=True,
              help="standard = AutoAttack's paper budgets (the headline); fast = a quick look, weaker.")
@click.option("--norm", type=click.Choice(["linf", "l2", "l1"]), default="linf", show_default=True)
@click.option("--eps", type=float, required=True, help="Radius in pixel space.")
@click.option("--attacks", default=None,
              help="Comma-separated subset of the preset's stages, e.g. apgd-ce,apgd-t.")
@click.option("-n", "--num-points", type=int, default=1000, show_default=True,
              help="Test points, spread evenly over the test set.")
@click.option("--batch-size", type=int, default=500, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--state", "state_path", type=click.Path(dir_okay=False), default=None,
              help="State file: an interrupted run started with the same options resumes from it.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the result as JSON here.")
@device_option
@data_root_option
@mirror_option
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def evaluate(model_path, preset, norm, eps, attacks, num_points, batch_size, seed, state_path, out, device,
             data_root, mirror, no_progress) -> None:
    """Robust accuracy of MODEL under the AutoAttack-equivalent ensemble, stage by stage."""
    from ..attacks.autoattack import autoattack
    from ..attacks.ensemble import AttackEnsemble
    from ..data import load
    from ..zoo import load_checkpoint

    dev = resolve_device(device)
    try:
        ensemble = autoattack(eps, norm, preset=preset, seed=seed, batch_size=batch_size)
        if attacks:
            wanted = [a.strip() for a in attacks.split(",") if a.strip()]
            known = {s.name: s for s in ensemble.stages}
            unknown = [a for a in wanted if a not in known]
            if unknown:
                raise ValueError(f"--attacks: {unknown} not in the {preset} preset's stages {list(known)}")
            ensemble = AttackEnsemble([known[a] for a in wanted], batch_size=batch_size, preset=f"{preset}-subset")
        clf, meta = load_checkpoint(model_path, device=dev)
        test = load(meta["dataset"], "test", root=data_root, mirror=mirror)
        if not 0 < num_points <= len(test):
            raise ValueError(f"--num-points: must lie in [1, {len(test)}], got {num_points}")
        x, y = test.spread(num_points).tensors(device=dev)
        result = ensemble(clf, x, y, state_path=state_path, progress=not no_progress)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"model {model_path} ({meta['architecture']}, {test.name}); {norm} eps {eps:g}; preset "
               f"{ensemble.preset}; {num_points} test points spread over the test set; seed {seed}")
    click.echo("| stage | accuracy after stage % | 95% CI | time s |")
    click.echo("|---|---|---|---|")
    for row in result.table():
        lo, hi = row["ci95"]
        click.echo(f"| {row['stage']} | {_pct(row['accuracy'])} | {_pct(lo)}-{_pct(hi)} | {row['time_s']:.1f} |")
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"model": str(model_path), "dataset": test.name, "points": num_points,
                                    "selection": "spread", "seed": seed, "threat": {"norm": norm, "eps": eps},
                                    "ensemble": ensemble.params(), "table": result.table(),
                                    "robust_accuracy": result.robust_accuracy}, indent=2, default=str))
        click.echo(f"wrote {path}")
