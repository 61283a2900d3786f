"""``parry evaluate``: the AutoAttack-equivalent ensemble on checkpoints.

Two modes. Without ``--store``: one checkpoint at one eps, the per-stage table printed,
resumable through a ``--state`` file (as before). With ``--store PATH``: a grid of checkpoints x
attacks x eps through :func:`parry.evaluate.run_grid` into the results store, resumable by
running the same command again; the accuracy table is then printed from the store.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import checkpoint_and_points, data_root_option, device_option, mirror_option, resolve_device

HELP = """Robust accuracy of MODEL under the AutoAttack-equivalent ensemble.

\b
Without --store (one --model, one --eps): runs the ensemble and prints its
per-stage table; --state FILE lets an interrupted run resume; --attacks picks a
subset of the preset's stages (apgd-ce,apgd-t).
\b
With --store PATH: every --model under every --attacks at every --eps (both
repeatable), per sample into the results store PATH via the benchmark runner.
--attacks lists registry attacks or presets (fgsm,pgd,autoattack-standard;
default autoattack-<preset>). Run the same command again to resume an
interrupted evaluation (finished work is skipped). Prints the accuracy table
from the store; see also `parry runs ls` and `parry report --store PATH`.
"""


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


@click.command(help=HELP)
@click.option("--model", "model_paths", required=True, multiple=True, type=click.Path(),
              help="Checkpoint (.safetensors with its .json sidecar); repeatable with --store.")
@click.option("--preset", type=click.Choice(["standard", "fast"]), default="standard", show_default=True,
              help="standard = AutoAttack's paper budgets (the headline); fast = a quick look, weaker.")
@click.option("--norm", type=click.Choice(["linf", "l2", "l1"]), default="linf", show_default=True)
@click.option("--eps", "eps_values", type=float, required=True, multiple=True,
              help="Radius in pixel space; repeatable with --store.")
@click.option("--attacks", default=None,
              help="Comma-separated. Without --store: a subset of the preset's stages, e.g. apgd-ce,apgd-t. "
                   "With --store: attacks of the registry or presets, e.g. fgsm,pgd,autoattack-standard.")
@click.option("-n", "--num-points", type=int, default=1000, show_default=True,
              help="Test points, spread evenly over the test set.")
@click.option("--batch-size", type=int, default=500, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--store", "store_path", type=click.Path(dir_okay=False), default=None,
              help="Results store (SQLite file, created if needed): evaluate through the benchmark runner.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False), default=None,
              help="State file (without --store): an interrupted run started with the same options resumes.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the result as JSON here.")
@device_option
@data_root_option
@mirror_option
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def evaluate(model_paths, preset, norm, eps_values, attacks, num_points, batch_size, seed, store_path, state_path,
             out, device, data_root, mirror, no_progress) -> None:
    dev = resolve_device(device)
    if store_path is not None:
        if state_path is not None:
            raise click.UsageError("--state: not used with --store (the store is the state: rerun to resume)")
        from .evaluate_store import evaluate_into_store

        evaluate_into_store(model_paths, preset, norm, eps_values, attacks, num_points, batch_size, seed, store_path,
                            out, dev, data_root, mirror, not no_progress)
        return
    if len(model_paths) != 1 or len(eps_values) != 1:
        raise click.UsageError("--model, --eps: several models or radii need --store PATH")
    _evaluate_one(model_paths[0], preset, norm, eps_values[0], attacks, num_points, batch_size, seed, state_path,
                  out, dev, data_root, mirror, no_progress)


def _evaluate_one(model_path, preset, norm, eps, attacks, num_points, batch_size, seed, state_path, out, dev,
                  data_root, mirror, no_progress) -> None:
    """The ensemble on one checkpoint at one eps, with its per-stage table (no store)."""
    from ..attacks.autoattack import autoattack
    from ..attacks.ensemble import AttackEnsemble

    try:
        ensemble = autoattack(eps, norm, preset=preset, seed=seed, batch_size=batch_size)
        if attacks:
            wanted = [a.strip() for a in attacks.split(",") if a.strip()]
            known = {s.name: s for s in ensemble.stages}
            unknown = [a for a in wanted if a not in known]
            if unknown:
                raise ValueError(f"--attacks: {unknown} not in the {preset} preset's stages {list(known)}")
            ensemble = AttackEnsemble([known[a] for a in wanted], batch_size=batch_size, preset=f"{preset}-subset")
        clf, meta, test, x, y = checkpoint_and_points(model_path, num_points, dev, data_root, mirror)
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
