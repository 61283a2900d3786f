"""``parry demo``: train, attack and report in one go (the README's first command)."""

from __future__ import annotations

import click

from .options import data_root_option, device_option, mirror_option, resolve_device


@click.command()
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the checkpoint, the results store (results.sqlite), results.json/.md and the "
                   "HTML report (report/index.html).")
@click.option("--epochs", default=1, show_default=True, type=int, help="Training epochs.")
@click.option("--train-points", default=None, type=int,
              help="Train on this many images spread over the training set (default: all 60,000).")
@click.option("-n", "--num-points", default=1000, show_default=True, type=int,
              help="Test points to attack, spread evenly over the test set.")
@click.option("--eps", "eps_values", multiple=True, type=float, default=(0.1, 0.2, 0.3), show_default=True,
              help="Linf radius, repeatable.")
@click.option("--pgd-steps", default=40, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@device_option
@data_root_option
@mirror_option
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def demo(out, epochs, train_points, num_points, eps_values, pgd_steps, seed, device, data_root, mirror,
         no_progress) -> None:
    """Train the Madry MNIST CNN briefly, attack it with FGSM and PGD, write a report.

    The attacks run through the benchmark runner into OUT/results.sqlite; the demo ends with the
    HTML report of that run, OUT/report/index.html (with summary.md and leaderboard.html).
    """
    from ..demo import run_demo

    try:
        run_demo(out, epochs=epochs, train_points=train_points, num_points=num_points, eps_values=eps_values,
                 pgd_steps=pgd_steps, seed=seed, device=resolve_device(device), data_root=data_root,
                 mirror=mirror, progress=not no_progress, echo=click.echo)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
