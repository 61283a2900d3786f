"""``parry train``: train a zoo architecture on a data set and save a checkpoint.

Plain (``--arch``): cross-entropy with the zoo trainer, one checkpoint. With ``--recipe NAME``:
a named robust-training recipe (``parry.defenses.training.recipes``) run by the Trainer, with a
seeded held-out validation split from the training split, ``best``/``last`` checkpoints and
resumable state in ``--out``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from parry import data
from parry.cli.options import data_root_option, device_option, mirror_option, resolve_device
from parry.cli.recipe_run import run_recipe
from parry.data.errors import DataError
from parry.zoo.checkpoint import save_checkpoint
from parry.zoo.registry import ARCHITECTURES, DATASET_INFO, make_classifier
from parry.defenses.training.recipes import RECIPES
from parry.zoo.trainer import OPTIMIZERS, SCHEDULES, evaluate_accuracy, train_classifier


def _arch_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as architecture keyword arguments (a VALUE that is not JSON stays text)."""
    options: dict[str, Any] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE with KEY a Python name", ctx, param)
        if key in options:
            raise click.BadParameter(f"{key!r} given twice", ctx, param)
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


@click.command("train")
@click.option("--recipe", type=click.Choice(list(RECIPES)), default=None,
              help="Run a named robust-training recipe instead of plain --arch training.")
@click.option("--arch", type=click.Choice([a for a in ARCHITECTURES if a != "logit-ensemble"]), default=None,
              help="Architecture from the zoo (required without --recipe; combine trained checkpoints "
                   "into an ensemble with parry ensemble).")
@click.option("--arch-option", multiple=True, metavar="KEY=VALUE", callback=_arch_options,
              help="An argument of the architecture (repeatable; VALUE is read as JSON, else as text), "
                   "e.g. --arch-option activation=silu or --arch-option drop=0.3; kept in the checkpoint.")
@click.option("--dataset", type=click.Choice(list(DATASET_INFO)), default="mnist", show_default=True,
              help="Data set to train and test on.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Passes over the training set [default: 10; with --recipe, the recipe's, and then "
                   "without --minutes the recipe's time budget is dropped].")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --recipe: wall-clock budget; the learning-rate schedule follows it.")
@click.option("--eval-points", type=click.IntRange(min=1), default=None,
              help="With --recipe: size of the held-out validation split [default: the recipe's].")
@click.option("--resume", is_flag=True, help="With --recipe: continue the interrupted run in --out.")
@click.option("--no-fast", is_flag=True, help="With --recipe: turn the fast path (channels-last, bf16) off.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Training batch size.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="sgd", show_default=True,
              help="Optimiser.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.01, show_default=True,
              help="Base learning rate.")
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9, show_default=True,
              help="SGD momentum (ignored by Adam).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="L2 weight decay.")
@click.option("--schedule", type=click.Choice(SCHEDULES), default="cosine", show_default=True,
              help="Per-step learning-rate schedule (step: x0.1 at 50% and 75% of the steps).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the initialisation, shuffling and dropout.")
@click.option("--limit", type=click.IntRange(min=2), default=None,
              help="Train on N images spread evenly over the training set (default: all; with --recipe, "
                   "of those left after the validation split).")
@device_option
@data_root_option
@mirror_option
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Checkpoint stem; writes STEM.safetensors and STEM.json "
                   "[default: runs/<arch>-<dataset>-seed<seed>]. With --recipe, a directory for "
                   "best/last checkpoints, log.jsonl and the resume state [default: runs/<recipe>-seed<seed>].")
@click.option("--teacher", type=click.Path(path_type=Path), multiple=True,
              help="With a distillation --recipe: the teacher's checkpoint [default: runs/<teacher recipe>-seed<seed>/"
                   "best]; it must have been trained by the recipe's teacher recipe. Repeat it, in the recipe's "
                   "order, for a recipe with several teachers.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def train(recipe: str | None, arch: str | None, arch_option: dict[str, Any], dataset: str, epochs: int | None,
          minutes: float | None, eval_points: int | None, resume: bool, no_fast: bool, batch_size: int,
          optimizer: str, lr: float, momentum: float, weight_decay: float, schedule: str, seed: int, limit: int | None,
          device: str, data_root: str | None, mirror: str | None, out: Path | None, teacher: tuple[Path, ...],
          no_progress: bool) -> None:
    """Train ARCH on DATASET with cross-entropy, measure clean test accuracy on the whole
    test split, and save a checkpoint (safetensors + JSON sidecar).

    With --recipe NAME, run a named robust-training recipe instead (the recipes are listed and
    described in parry.defenses.training.recipes and the README): best and last checkpoints
    with the recipe in the sidecar, a per-epoch log, and --resume after an interruption."""
    ctx = click.get_current_context()
    given = {name for name in ctx.params
             if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)}
    if recipe is not None:
        run_recipe(recipe, given=given, epochs=epochs, minutes=minutes, eval_points=eval_points, seed=seed,
                   batch_size=batch_size, limit=limit, resume=resume, fast=not no_fast, device=device,
                   data_root=data_root, mirror=mirror, out=out, teacher=teacher, progress=not no_progress)
        return
    recipe_only = sorted(given & {"minutes", "eval_points", "resume", "no_fast", "teacher"})
    if recipe_only:
        raise click.UsageError(f"--{recipe_only[0].replace('_', '-')} needs --recipe")
    if arch is None:
        raise click.UsageError("--arch: give an architecture, or a --recipe")
    epochs = 10 if epochs is None else epochs
    device = str(resolve_device(device))
    out = out if out is not None else Path("runs") / f"{arch}-{dataset}-seed{seed}"
    try:
        classifier = make_classifier(arch, dataset, **arch_option)  # fails fast, before any download
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        train_set = data.load(dataset, "train", root=data_root, mirror=mirror)
        test_set = data.load(dataset, "test", root=data_root, mirror=mirror)
    except DataError as exc:
        raise click.ClickException(f"cannot load {dataset}: {exc}") from exc
    if limit is not None:
        if limit > len(train_set):
            raise click.BadParameter(f"{limit} exceeds the {len(train_set)} training images", param_hint="--limit")
        train_set = train_set.spread(limit)

    data_shape = tuple(getattr(train_set, "input_shape", classifier.input_shape))
    if data_shape != classifier.input_shape:
        raise click.ClickException(f"{dataset} images have shape {data_shape}, "
                                   f"the classifier expects {classifier.input_shape}")
    source = {"name": getattr(train_set, "name", dataset), "note": getattr(train_set, "note", "")}
    try:
        history = train_classifier(
            classifier, train_set, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
            momentum=momentum, weight_decay=weight_decay, schedule=schedule, seed=seed, device=device,
            progress=not no_progress,
            log=lambda r: click.echo(f"epoch {r['epoch']}/{epochs}  loss {r['loss']:.4f}  "
                                     f"train acc {r['accuracy']:.4f}  {r['time_s']:.1f}s"),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    t0 = time.perf_counter()
    test_accuracy = evaluate_accuracy(classifier, test_set, device=device)
    eval_time = time.perf_counter() - t0

    recipe = {"arch": arch, "arch_kwargs": arch_option, "dataset": dataset, "epochs": epochs, "batch_size": batch_size,
              "optimizer": optimizer, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
              "schedule": schedule, "seed": seed, "limit": limit, "device": device,
              "data_root": data_root, "mirror": mirror,
              "objective": "cross-entropy"}
    metrics = {"test_accuracy": test_accuracy, "test_points": len(test_set),
               "train_points": len(train_set), "train_loss": history["loss"][-1],
               "train_accuracy": history["accuracy"][-1], "steps": history["steps"],
               "train_time_s": round(history["wall_time_s"], 3), "eval_time_s": round(eval_time, 3),
               "history": {"loss": history["loss"], "accuracy": history["accuracy"]}, "data": source}
    weights = save_checkpoint(out, classifier.cpu(), architecture=arch, arch_kwargs=arch_option, dataset=dataset,
                              recipe=recipe, metrics=metrics)
    n_params = sum(p.numel() for p in classifier.parameters())
    click.echo(f"{arch} ({n_params:,} parameters) on {source['name']}: "
               f"{len(train_set)} training images, {epochs} epoch(s), {history['steps']} steps, "
               f"{history['wall_time_s']:.1f}s on {device}")
    if source["note"]:
        click.echo(f"note: {source['note']}")
    click.echo(f"train loss {metrics['train_loss']:.4f}, train accuracy {metrics['train_accuracy']:.4f}")
    click.echo(f"clean test accuracy {test_accuracy:.4f} on all {len(test_set)} test images")
    click.echo(f"checkpoint: {weights} (+ {weights.with_suffix('.json').name})")
