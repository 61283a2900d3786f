"""``parry evaluate --store PATH``: checkpoints x attacks x eps through the benchmark runner into
the results store, then the accuracy table read back from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import click
import torch

#: Columns of the printed accuracy table.
ACCURACY_COLUMNS = ("model", "attack", "kind", "norm", "eps", "n", "clean_accuracy", "robust_accuracy",
                    "robust_accuracy_ci95", "attack_success_rate", "time_s")
NORM_COLUMNS = ("model", "attack", "norm", "n", "attack_success_rate", "l2_median", "linf_median", "time_s")


def grid_attacks(attacks: str | None, preset: str) -> list[Any]:
    """``--attacks`` as GridAttacks (default: the AutoAttack ``preset``). An attack may carry
    options after colons, e.g. ``pgd:steps=40:restarts=2``; values are read as JSON where they
    parse (numbers, true/false, null) and as strings otherwise."""
    from ..evaluate import GridAttack

    if not attacks:
        return [GridAttack(f"autoattack-{preset}")]
    specs = [a.strip() for a in attacks.split(",") if a.strip()]
    if not specs:
        raise ValueError("--attacks: expected comma-separated attack names")
    out = []
    for spec in specs:
        name, *pairs = spec.split(":")
        options: dict[str, Any] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"--attacks: {spec!r}: expected NAME:KEY=VALUE[:KEY=VALUE...]")
            try:
                options[key] = json.loads(text)
            except json.JSONDecodeError:
                options[key] = text
        out.append(GridAttack(name, options))
    return out


def evaluate_into_store(model_paths: Sequence[str], preset: str, norm: str, eps_values: Sequence[float],
                        attacks: str | None, num_points: int, batch_size: int, seed: int, store_path: str,
                        out: str | None, device: torch.device, data_root: str | None, mirror: str | None,
                        progress: bool) -> None:
    """Run (or resume) the grid and print its accuracy table from the store."""
    from ..evaluate import (EvalPoints, ModelSpec, ResultsStore, ThreatSpec, accuracy_table, norm_table, run_grid,
                            to_markdown)
    from .options import spread_test_points

    try:
        names = grid_attacks(attacks, preset)
        models = [ModelSpec.from_checkpoint(Path(p).resolve(), device=device) for p in model_paths]
        points = []
        for dataset in sorted({m.dataset for m in models}):
            test, _ = spread_test_points(dataset, num_points, data_root, mirror)
            points.append(EvalPoints.spread(test, num_points))
        with ResultsStore(store_path) as store:
            run = run_grid(models, names, [ThreatSpec(norm, tuple(eps_values))], points, store, seed=seed,
                           batch_size=batch_size, progress=progress)
            accuracy = accuracy_table(store, run.run_id)
            norms = norm_table(store, run.run_id)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"store {store_path}: run {run.run_id} ({'resumed' if run.resumed else 'new'}); "
               f"{run.work_run} of {run.work_total} work items run, {run.work_skipped} already recorded")
    click.echo(f"models {', '.join(m.name for m in models)}; attacks {attacks or names[0].name}; {norm} eps "
               f"{', '.join(f'{e:g}' for e in eps_values)}; {num_points} test points spread over the test set; "
               f"seed {seed}")
    click.echo(to_markdown(accuracy, ACCURACY_COLUMNS) if accuracy else "(no fixed-radius attacks)")
    if norms:
        click.echo("\nminimum-norm attacks (medians over the successful, initially correct points):")
        click.echo(to_markdown(norms, NORM_COLUMNS))
    click.echo(f"\nreport: parry report --store {store_path} --run {run.run_id} --out DIR")
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"store": str(store_path), "run": run.run_id, "resumed": run.resumed,
                                    "work_run": run.work_run, "work_skipped": run.work_skipped,
                                    "accuracy": accuracy, "min_norm": norms}, indent=2, default=str))
        click.echo(f"wrote {path}")
