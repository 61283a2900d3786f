"""``parry attack``: attack a checkpoint on its test set and report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..attacks.registry import ATTACKS
from .options import checkpoint_and_points, data_root_option, device_option, mirror_option, resolve_device


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Checkpoint written by `parry train` (.safetensors with its .json sidecar).")
@click.option("--attack", "attack_names", multiple=True, default=("fgsm", "pgd"), show_default=True,
              type=click.Choice(sorted(ATTACKS)), help="Attack, repeatable.")
@click.option("--norm", default="linf", show_default=True, type=click.Choice(["linf", "l2", "l1"]))
@click.option("--eps", "eps_values", multiple=True, type=float, default=(0.1, 0.2, 0.3), show_default=True,
              help="Radius in pixel space, repeatable.")
@click.option("--steps", type=int, default=None, help="Iterations (iterative attacks; default per attack).")
@click.option("--restarts", type=int, default=None, help="Random restarts (PGD).")
@click.option("--loss", type=click.Choice(["ce", "margin"]), default=None, help="Attack loss.")
@click.option("-n", "--num-points", type=int, default=1000, show_default=True,
              help="Test points, spread evenly over the test set.")
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the rows as JSON here (and a .md beside it).")
@device_option
@data_root_option
@mirror_option
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def attack(model_path, attack_names, norm, eps_values, steps, restarts, loss, num_points, batch_size,
           seed, out, device, data_root, mirror, no_progress) -> None:
    """Attack MODEL on N test points at each eps and print the table."""
    from ..attacks.registry import make_attack
    from ..evaluate import AttackSpec, evaluate_attacks, rows_to_markdown

    dev = resolve_device(device)
    try:
        clf, meta, test, x, y = checkpoint_and_points(model_path, num_points, dev, data_root, mirror)
        specs = []
        for name in attack_names:
            options = {"steps": steps, "restarts": restarts, "loss": loss}
            make_attack(name, 0.0, norm, strict=False, **options)  # fail fast on bad options
            specs.append(AttackSpec(name, lambda eps, n=name, o=options: make_attack(n, eps, norm, strict=False, **o)))
        rows = evaluate_attacks(clf, x, y, specs, eps_values, batch_size=batch_size, seed=seed,
                                progress=not no_progress)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    table = rows_to_markdown(rows)
    click.echo(f"model {model_path} ({meta['architecture']}, {test.name}), {num_points} test points "
               f"spread over the test set, seed {seed}")
    click.echo(table)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"model": str(model_path), "rows": rows}, indent=2))
        path.with_suffix(".md").write_text(table + "\n")
        click.echo(f"wrote {path} and {path.with_suffix('.md')}")
