"""``parry train --recipe NAME``: run a named robust-training recipe with the Trainer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from parry import data
from parry.cli.options import resolve_device
from parry.data.errors import DataError
from parry.defenses.training.recipes import Recipe, RecipeTrainer, build, get_recipe, split_heldout
from parry.zoo.checkpoint import load_checkpoint

#: plain-training options that a recipe fixes itself
_PLAIN_ONLY = ("arch", "arch_option", "dataset", "optimizer", "lr", "momentum", "weight_decay", "schedule")


def _budget(recipe: Recipe) -> str:
    """The run's budget as it is (the description states the catalogue's, which overrides change)."""
    epochs = f"{recipe.epochs} epoch{'' if recipe.epochs == 1 else 's'}"
    if recipe.minutes is None:
        return epochs
    cap = "" if recipe.epochs is None else f", at most {epochs}"
    return f"{recipe.minutes:g} minutes{cap}"


def run_recipe(name: str, *, given: set[str], epochs: int | None, minutes: float | None, eval_points: int | None,
               seed: int, batch_size: int, limit: int | None, resume: bool, fast: bool, device: str,
               data_root: str | None, mirror: str | None, out: Path | None, progress: bool,
               teacher: Sequence[Path] = ()) -> dict[str, Any]:
    """Load the recipe's data set, hold out its seeded validation split, train, and write
    best/last checkpoints into ``out``; returns the Trainer's history. ``given`` names the
    options set on the command line (only those override the recipe); ``teacher`` holds the
    teacher checkpoints of a distillation recipe (none: the default paths)."""
    clash = sorted(given & set(_PLAIN_ONLY))
    if clash:
        raise click.UsageError(f"--{clash[0].replace('_', '-')}: the recipe sets it; drop it or train without --recipe")
    overrides: dict[str, Any] = {"fast": fast}
    if "epochs" in given:
        overrides["epochs"] = epochs
        if "minutes" not in given:
            overrides["minutes"] = None  # epochs alone: the schedule follows the steps
    if "minutes" in given:
        overrides["minutes"] = minutes
    for option, key, value in (("eval_points", "eval_points", eval_points), ("seed", "seed", seed),
                               ("batch_size", "batch_size", batch_size), ("limit", "train_points", limit)):
        if option in given:
            overrides[key] = value
    try:
        recipe = get_recipe(name, **overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    out = out if out is not None else Path("runs") / f"{recipe.name}-seed{recipe.seed}"
    if teacher and recipe.teacher is None:
        raise click.UsageError(f"--teacher: the recipe {recipe.name} has no teacher")
    try:
        full = data.load(recipe.dataset, "train", root=data_root, mirror=mirror)
    except DataError as exc:
        raise click.ClickException(f"cannot load {recipe.dataset}: {exc}") from exc
    try:
        train_set, held_out = split_heldout(full, recipe.eval_points, recipe.seed)
        if recipe.train_points is not None:
            if recipe.train_points > len(train_set):
                raise ValueError(f"--limit: {recipe.train_points} exceeds the {len(train_set)} training images "
                                 "left after the validation split")
            train_set = train_set.spread(recipe.train_points)
        classifier, objective, kwargs = build(recipe, *load_teacher(recipe, teacher, resolve_device(device)))
        classifier.to(resolve_device(device))
        trainer = RecipeTrainer(classifier, objective, recipe=recipe, eval_set=held_out, out_dir=out,
                                progress=progress, log=_echo_epoch, **kwargs)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    fast_path = trainer.fast.params()
    click.echo(f"recipe {recipe.name}: {recipe.description}")
    click.echo(f"this run's budget: {_budget(recipe)}")
    attack = trainer.eval_attack
    steps = getattr(attack, "steps", None)
    check = "none" if attack is None else type(attack).__name__ + (f"-{steps}" if steps else "")
    click.echo(f"{len(train_set)} training images, {len(held_out)} held out (attack: {check}); fast path: "
               f"channels_last={fast_path['channels_last']}, autocast={fast_path['autocast']}; out: {out}")
    history = trainer.fit(train_set, resume=resume)
    click.echo(f"{history['steps']} steps in {history['wall_time_s']:.1f}s; best epoch {history['best_epoch']} "
               f"(held-out score {history['best_score']}); checkpoints: {out / 'best'}, {out / 'last'}")
    if history["stopped"]:
        click.echo(f"stopped: {history['stopped']}")
    return history


def load_teacher(recipe: Recipe, paths: Sequence[Path], device: Any) -> tuple[Any, Any]:
    """``(teacher classifier, teacher id)`` of a recipe with a teacher (tuples of them, in the
    recipe's order, for a recipe with several), else ``(None, None)``. Each checkpoint (``paths``,
    by default each teacher recipe's ``best`` under ``runs/``) must come from its teacher recipe;
    the id names that recipe and the weights' digest."""
    names = recipe.teachers
    if not names:
        return None, None
    if paths and len(paths) != len(names):
        raise ValueError(f"--teacher: the recipe {recipe.name} has {len(names)} teacher(s) ({', '.join(names)}), "
                         f"got {len(paths)} --teacher path(s); give one per teacher, in that order, or none")
    loaded = [_load_one_teacher(recipe, name, path, device) for name, path in zip(names, paths or [None] * len(names))]
    models, ids = zip(*loaded)
    return (models[0], ids[0]) if isinstance(recipe.teacher, str) else (models, ids)


def _load_one_teacher(recipe: Recipe, name: str, path: Path | None, device: Any) -> tuple[Any, str]:
    path = path if path is not None else Path("runs") / f"{name}-seed{recipe.seed}" / "best"
    try:
        model, meta = load_checkpoint(path, device=device)
    except FileNotFoundError as exc:
        raise ValueError(f"--teacher: no checkpoint at {path} ({exc}); train it first with "
                         f"`parry train --recipe {name}` or pass --teacher PATH") from exc
    trained_by = (meta.get("recipe") or {}).get("recipe", {}).get("name")
    if trained_by != name:
        raise ValueError(f"--teacher: {path} was trained by {trained_by or 'no named recipe'}, but {recipe.name} "
                         f"distils a {name} model")
    return model, f"{name} sha256:{meta['sha256'][:12]}"


def _echo_epoch(record: dict[str, Any]) -> None:
    parts = [f"epoch {record['epoch']}", f"loss {record.get('loss', float('nan')):.4f}"]
    for key, label in (("clean_accuracy", "held-out clean"), ("robust_accuracy", "held-out robust")):
        if record.get(key) is not None:
            parts.append(f"{label} {record[key]:.4f}")
    parts.append(f"{record['time_s']:.1f}s")
    click.echo("  ".join(parts))
