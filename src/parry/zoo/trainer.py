"""A plain (non-adversarial) supervised trainer and a clean-accuracy evaluator.

The adversarial objectives and their Trainer live in ``parry.defenses``; this one trains
the reference models of the zoo with cross-entropy, SGD or Adam, and a per-step
learning-rate schedule (cosine: Loshchilov & Hutter, "SGDR", ICLR 2017; step: x0.1 at
50 % and 75 % of the steps, He et al. 2016).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step", "constant")


class BatchSource(Protocol):
    """What the trainer needs of a data set (e.g. ``parry.data.ArrayDataset``)."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, shuffle: bool = False, seed: int | None = None,
                drop_last: bool = False, device: Any = None) -> Any: ...


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: must be an int >= {minimum}, got {value!r}")
    return value


def _check_float(name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool = False,
                 open_high: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ValueError(f"{name}: must be a finite number in {interval}, got {value!r}")
    return float(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: must be one of {choices}, got {value!r}")
    return value


def _check_dataset(name: str, dataset: Any, minimum: int) -> int:
    if not callable(getattr(dataset, "batches", None)) or not hasattr(dataset, "__len__"):
        raise ValueError(f"{name}: needs a batches(...) method and a length, got {type(dataset).__name__}")
    size = len(dataset)
    if size < minimum:
        raise ValueError(f"{name}: needs at least {minimum} samples, got {size}")
    return size


def _check_device(device: Any) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: not a torch device: {device!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device} requested but CUDA is not available")
    return device


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total_steps``."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    if schedule == "step":
        return 0.1 ** ((step >= 0.5 * total_steps) + (step >= 0.75 * total_steps))
    return 1.0


def _make_optimizer(name: str, params: Any, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def train_classifier(
    classifier: nn.Module,
    train_set: BatchSource,
    *,
    epochs: int = 1,
    batch_size: int = 128,
    optimizer: str = "sgd",
    lr: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
    progress: bool = True,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``classifier`` (moved to ``device`` in place) with cross-entropy on ``train_set``.

    ``train_set.batches(batch_size, shuffle=True, seed=seed + epoch, device=device)`` gives
    the seeded order of each epoch; ``torch.manual_seed(seed)`` (global) fixes the rest
    (e.g. dropout), so the same seed on the same device reproduces the same weights. The
    learning rate follows ``schedule`` per step over all steps; ``momentum`` is used by
    SGD only. A trailing batch of one sample is dropped (BatchNorm cannot train on it).
    ``max_steps`` stops early. ``log`` is called with a dict after every epoch.

    Returns the history: per-epoch ``loss`` and ``accuracy`` (on the training batches, in
    train mode), ``epoch_time_s``, ``steps``, ``samples``, ``wall_time_s``. The classifier
    is left in eval mode.
    """
    if not isinstance(classifier, nn.Module):
        raise ValueError(f"classifier: expected a torch.nn.Module, got {type(classifier).__name__}")
    size = _check_dataset("train_set", train_set, 2)
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    _check_float("lr", lr, 0.0, open_low=True)
    _check_float("momentum", momentum, 0.0, 1.0, open_high=True)
    _check_float("weight_decay", weight_decay, 0.0)
    _check_choice("schedule", schedule, SCHEDULES)
    _check_int("seed", seed, 0)
    if max_steps is not None:
        _check_int("max_steps", max_steps, 1)
    if log is not None and not callable(log):
        raise ValueError(f"log: must be callable or None, got {type(log).__name__}")
    device = _check_device(device)

    drop_last = size % batch_size == 1
    steps_per_epoch = size // batch_size + (size % batch_size > 1)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)

    torch.manual_seed(seed)
    classifier.to(device).train()
    opt = _make_optimizer(optimizer, classifier.parameters(), lr, momentum, weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(schedule, s, total_steps))
    history: dict[str, Any] = {"loss": [], "accuracy": [], "epoch_time_s": [], "steps": 0, "samples": 0}
    bar = tqdm(total=total_steps, desc="train", unit="step", disable=not progress, leave=False)
    start = time.perf_counter()
    try:
        for epoch in range(epochs):
            if history["steps"] >= total_steps:
                break
            t0, seen = time.perf_counter(), 0
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            for x, y in train_set.batches(batch_size, shuffle=True, seed=seed + epoch,
                                          drop_last=drop_last, device=device):
                logits = classifier(x)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach() * y.shape[0]
                correct += (logits.detach().argmax(dim=1) == y).sum()
                seen += y.shape[0]
                history["steps"] += 1
                bar.update(1)
                if history["steps"] >= total_steps:
                    break
            epoch_loss = loss_sum.item() / seen
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(f"training diverged in epoch {epoch + 1} (loss {epoch_loss}); "
                                         f"lower lr (now {lr})")
            record = {"epoch": epoch + 1, "loss": epoch_loss, "accuracy": correct.item() / seen,
                      "lr": opt.param_groups[0]["lr"], "time_s": time.perf_counter() - t0}
            history["loss"].append(record["loss"])
            history["accuracy"].append(record["accuracy"])
            history["epoch_time_s"].append(record["time_s"])
            history["samples"] += seen
            bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{record['accuracy']:.4f}")
            if log is not None:
                log(record)
    finally:
        bar.close()
        classifier.eval()
    history["wall_time_s"] = time.perf_counter() - start
    return history


def evaluate_accuracy(classifier: nn.Module, dataset: BatchSource, batch_size: int = 500,
                      device: str | torch.device = "cpu") -> float:
    """Clean accuracy of ``classifier`` on all of ``dataset`` (eval mode, no gradients).

    The classifier is moved to ``device`` in place; its train/eval mode is restored.
    """
    if not isinstance(classifier, nn.Module):
        raise ValueError(f"classifier: expected a torch.nn.Module, got {type(classifier).__name__}")
    _check_dataset("dataset", dataset, 1)
    _check_int("batch_size", batch_size, 1)
    device = _check_device(device)
    modes = [(m, m.training) for m in classifier.modules()]
    classifier.to(device).eval()
    correct, total = torch.zeros((), device=device, dtype=torch.long), 0
    try:
        with torch.no_grad():
            for x, y in dataset.batches(batch_size, device=device):
                correct += (classifier(x).argmax(dim=1) == y).sum()
                total += y.shape[0]
    finally:
        for m, mode in modes:
            m.train(mode)
    return correct.item() / total
