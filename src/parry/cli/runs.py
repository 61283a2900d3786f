"""``parry runs``: list the runs of the results store and show one with its tables."""

from __future__ import annotations

import json
import sqlite3

import click

from ..evaluate.store import DEFAULT_STORE

store_option = click.option("--store", "store_path", type=click.Path(dir_okay=False), default=DEFAULT_STORE,
                            show_default=True, envvar="PARRY_STORE",
                            help="Results store (SQLite file; default also from $PARRY_STORE).")


def _open(store_path: str):
    from ..evaluate.store import ResultsStore

    try:
        return ResultsStore(store_path, create=False)
    except (ValueError, FileNotFoundError, sqlite3.DatabaseError) as exc:
        raise click.ClickException(str(exc)) from exc


def _names(items: list[dict], key: str = "name") -> str:
    return ", ".join(str(i[key]) for i in items)


@click.group("runs", help="Inspect the results store: the runs, their settings and their tables.")
def runs() -> None:
    pass


@runs.command("ls")
@store_option
def ls(store_path: str) -> None:
    """List the runs, newest first."""
    from ..evaluate.markdown import to_markdown

    with _open(store_path) as store:
        rows = []
        for r in store.runs():
            c = r["config"]
            models = c.get("models") or c.get("sources", []) + [t for t in c.get("targets", [])
                                                                if t not in c.get("sources", [])]
            rows.append({"id": r["id"], "kind": r["kind"], "status": r["status"], "created": r["created"],
                         "seed": r["seed"], "models": _names(models), "attacks": _names(c.get("attacks", [])),
                         "threats": "; ".join(f"{t['norm']} {t['eps']}" for t in c.get("threats", [])),
                         "points": "; ".join(f"{p['selection']} {p['n']} {p['dataset']}" for p in c.get("points", [])),
                         "units": f"{r['units_done']}/{r['units_total']}"})
    click.echo(to_markdown(rows) if rows else f"no runs in {store_path}")


@runs.command("show")
@click.argument("run_id", type=int)
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the run and its tables as JSON.")
def show(run_id: int, store_path: str, as_json: bool) -> None:
    """Show run RUN_ID: settings, environment and the tables computed from its outcomes."""
    from ..evaluate import tables
    from ..evaluate.markdown import matrix_to_markdown, to_markdown

    with _open(store_path) as store:
        try:
            info = store.run(run_id)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        sections = {"accuracy": tables.accuracy_table(store, run_id),
                    "minimum-norm perturbations": tables.norm_table(store, run_id),
                    "worst case over the run's attacks": tables.worst_case_table(store, run_id),
                    "transfers": tables.transfer_table(store, run_id)}
        matrices = []
        for attack, norm, eps in sorted({(r["attack"], r["norm"], r["eps"]) for r in sections["transfers"]}):
            matrices.append((f"{attack} {norm} eps {eps:g}",
                             tables.transfer_matrix(store, attack=attack, norm=norm, eps=eps, runs=run_id)))
    if as_json:
        click.echo(json.dumps({"run": info, "tables": sections}, indent=2, default=str))
        return
    click.echo(f"run {info['id']} ({info['kind']}): {info['status']}, {info['units_done']}/{info['units_total']} "
               f"units, {info['outcomes']} outcomes, {info['time_s']:.1f} s of attack time")
    click.echo(f"created {info['created']}" + (f", finished {info['finished']}" if info["finished"] else ""))
    click.echo(f"seed {info['seed']}; batch size {info['config'].get('batch_size')}")
    click.echo("environment: " + ", ".join(f"{k} {v}" for k, v in info["environment"].items()))
    for title, rows in sections.items():
        if rows:
            click.echo(f"\n## {title}\n\n{to_markdown(rows)}")
    for title, (sources, targets, matrix) in matrices:
        click.echo(f"\n## transfer success rate %, {title}\n\n{matrix_to_markdown(sources, targets, matrix)}")
