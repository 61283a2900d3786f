"""``parry report``: the HTML report, Markdown summary and leaderboard of a results store."""

from __future__ import annotations

import sqlite3

import click

from .options import data_root_option, device_option, mirror_option, resolve_device
from .runs import store_option


@click.command()
@store_option
@click.option("--run", "run_ids", type=int, multiple=True,
              help="Report on this run only; repeatable (default: every run in the store).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for index.html, summary.md and leaderboard.html (created if needed).")
@click.option("--model", "model", default=None,
              help="Report on this model only (and draw its gallery); default: every model, the gallery of the "
                   "first with a checkpoint.")
@click.option("--gallery-points", type=click.IntRange(0, 32), default=8, show_default=True,
              help="Images in the gallery, recomputed from the checkpoint (0: no gallery).")
@click.option("--title", default=None, help="Page title (default: names the models).")
@device_option
@data_root_option
@mirror_option
def report(store_path, run_ids, out_dir, model, gallery_points, title, device, data_root, mirror) -> None:
    """Write the report of the results store: index.html, summary.md and leaderboard.html.

    Every number is read from the store: the headline robust accuracy is the AutoAttack-standard
    worst case where the store has one, else the worst case of the stored attacks (labelled so).
    Only the gallery images are recomputed: the headline attack re-run on a few stored points of
    the model, loaded from the checkpoint the store recorded (skipped, with a note, when it is
    missing). The leaderboard covers every model in the store.
    """
    from ..data import load
    from ..evaluate.report_builder import write_store_report
    from ..evaluate.store import ResultsStore

    dev = resolve_device(device)
    try:
        with ResultsStore(store_path, create=False) as store:
            paths, data = write_store_report(
                store, out_dir, list(run_ids) or None, models=[model] if model else None, title=title,
                gallery_model=model, gallery_points=gallery_points, device=dev,
                data=lambda name, split: load(name, split, root=data_root, mirror=mirror))
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, sqlite3.DatabaseError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"report of {len(data.models)} model row(s) from {store_path}")
    if data.gallery is None:
        click.echo(data.provenance.settings.get("gallery", "no gallery"))
    for path in (paths.index, paths.summary, paths.leaderboard):
        click.echo(f"wrote {path}")
