"""Shared helpers of the benchmarks: paths, data, the cached reference model, timing,
environment description. Not part of the package and not imported by the tests."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CACHE = BENCH_DIR / ".cache"           # git-ignored (".cache/" in the repo's .gitignore)
RESULTS = BENCH_DIR / "results"

MODEL_STEM = CACHE / "madry-mnist-1ep-adam-seed0"
MODEL_RECIPE = {"epochs": 1, "optimizer": "adam", "lr": 1e-3, "schedule": "constant",
                "batch_size": 128, "seed": 0, "data": "mnist train (60,000)"}


def shared_mirror() -> str | None:
    """``file://`` URL of the team's data copies (``<repo>/../shared/data``), or None."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    return path.as_uri() if path.is_dir() else None


def load_mnist(split: str):
    """MNIST ``split`` as a ``parry.data.ArrayDataset`` (shared mirror when present)."""
    import parry.data

    mirror = shared_mirror()
    kwargs = {"mirror": mirror} if mirror else {}
    return parry.data.load("mnist", split, **kwargs)


def trained_madry_mnist(log: Callable[[str], None] = print):
    """The Madry et al. MNIST CNN, trained undefended for one epoch (Adam, lr 1e-3, seed 0).

    Trained once and cached under ``benchmarks/.cache/`` as a parry checkpoint; later runs
    load (and SHA-256-verify) it. Returns ``(classifier, metadata)``.
    """
    import parry.zoo as zoo

    weights = MODEL_STEM.with_suffix(".safetensors")
    if not weights.is_file():
        log(f"training the Madry MNIST CNN (1 epoch, Adam lr 1e-3, seed 0) -> {weights}")
        torch.manual_seed(0)
        clf = zoo.make_classifier("madry-mnist", "mnist")
        train = load_mnist("train")
        history = zoo.train_classifier(
            clf, train, epochs=MODEL_RECIPE["epochs"], batch_size=MODEL_RECIPE["batch_size"],
            optimizer=MODEL_RECIPE["optimizer"], lr=MODEL_RECIPE["lr"], schedule=MODEL_RECIPE["schedule"],
            seed=MODEL_RECIPE["seed"], progress=False)
        test = load_mnist("test")
        acc = zoo.evaluate_accuracy(clf, test)
        log(f"  trained in {history['wall_time_s']:.0f} s; clean test accuracy {acc:.4f}")
        zoo.save_checkpoint(MODEL_STEM, clf, architecture="madry-mnist", arch_kwargs={}, dataset="mnist",
                            recipe=MODEL_RECIPE,
                            metrics={"clean_accuracy_test": acc, "train_loss": history["loss"][-1]})
    clf, meta = zoo.load_checkpoint(MODEL_STEM)
    return clf.eval(), meta


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Parameters requires_grad False for the duration (restored afterwards): the peers get the
    same frozen model Parry's Classifier makes for itself, so nobody computes parameter gradients."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def plain_pgd_at_step(model: nn.Module, optimiser: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                      eps: float, alpha: float, steps: int) -> None:
    """One step of PGD adversarial training as written in eager PyTorch (NCHW, fp32): Linf PGD
    from a uniform random start in eval mode with frozen parameters, then one optimiser step on
    the cross-entropy of the crafted examples in train mode. The benchmarks' plain reference."""
    import torch.nn.functional as F

    model.eval()
    with frozen(model):
        adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(steps):
            adv.requires_grad_(True)
            grad, = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
            adv = torch.min(torch.max(adv.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    model.train()
    optimiser.zero_grad(set_to_none=True)
    F.cross_entropy(model(adv.detach()), y).backward()
    optimiser.step()


def _version(module: str) -> str | None:
    try:
        return str(getattr(importlib.import_module(module), "__version__", "unknown"))
    except Exception:  # noqa: BLE001 - absent or broken peer: just report it
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str | None:
    return _git("rev-parse", "--short", "HEAD") or None


def git_dirty() -> bool | None:
    """True when src/ differs from the commit (the measured code is then not exactly HEAD)."""
    status = _git("status", "--porcelain", "--", "src")
    return None if status is None else bool(status)


def environment(peers: Sequence[str] = ()) -> dict[str, Any]:
    """What the numbers were measured on: versions, CPU, threads, date."""
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": _version("numpy"), "parry": _version("parry")}
    for peer in peers:
        versions[peer] = _version(peer)
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "git_src_dirty": git_dirty(),
        "argv": sys.argv,
    }


def _busy_seconds() -> float | None:
    """CPU seconds all processes of the machine have been busy (from /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")   # minus idle and iowait


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Timing:
    """Wall time of one call and how many cores *other* processes kept busy meanwhile."""

    __slots__ = ("wall_s", "others_cores")

    def __init__(self, wall_s: float, others_cores: float | None) -> None:
        self.wall_s, self.others_cores = wall_s, others_cores

    def quiet(self, limit: float) -> bool:
        return self.others_cores is None or self.others_cores <= limit


def timed(fn: Callable[[], Any]) -> tuple[Timing, Any]:
    """Wall time of ``fn()`` (perf_counter), the other processes' load meanwhile, and the result."""
    busy0, own0 = _busy_seconds(), _own_seconds()
    start = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - start
    busy1, own1 = _busy_seconds(), _own_seconds()
    others = None
    if busy0 is not None and busy1 is not None and wall > 0:
        others = max(0.0, ((busy1 - busy0) - (own1 - own0)) / wall)
    return Timing(wall, others), out


def others_load(window_s: float) -> float | None:
    """Cores kept busy by other processes over the next ``window_s`` seconds (we sleep)."""
    busy0, own0 = _busy_seconds(), _own_seconds()
    start = time.perf_counter()
    time.sleep(window_s)
    wall = time.perf_counter() - start
    busy1, own1 = _busy_seconds(), _own_seconds()
    if busy0 is None or busy1 is None:
        return None
    return max(0.0, ((busy1 - busy0) - (own1 - own0)) / wall)


class QuietGate:
    """Before each timed call, wait (up to ``max_wait_s``) until other processes leave the
    CPU nearly idle: a shared machine otherwise turns a 2-thread timing into noise."""

    def __init__(self, limit: float = 0.25, window_s: float = 1.0, max_wait_s: float = 120.0) -> None:
        self.limit, self.window_s, self.max_wait_s = limit, window_s, max_wait_s
        self.waited_s = 0.0
        self.gave_up = 0

    def wait(self) -> None:
        if self.max_wait_s <= 0:
            return
        start = time.perf_counter()
        while True:
            load = others_load(self.window_s)
            if load is None or load <= self.limit:
                break
            if time.perf_counter() - start > self.max_wait_s:
                self.gave_up += 1
                break
        self.waited_s += time.perf_counter() - start


def interleaved(contenders: dict[str, Callable[[Any], Any]], slots: Sequence[Any], rounds: int,
                log: Callable[[str], None] = print,
                gate: QuietGate | None = None) -> tuple[dict[str, list[list[Timing]]], dict[str, list[Any]]]:
    """Run every contender on every slot (e.g. a batch), ``rounds`` times, interleaved finely.

    For each round and each slot the contenders run back to back, in an order rotated from
    slot to slot (no position bias), so all of them see the same state of a shared machine
    within seconds; ``gate`` (optional) waits for a quiet CPU before each call. Returns
    ``times[name][round][slot]`` and the outputs of the last round, ``outputs[name][slot]``.
    """
    names = list(contenders)
    times: dict[str, list[list[Timing]]] = {n: [] for n in names}
    outputs: dict[str, list[Any]] = {n: [None] * len(slots) for n in names}
    k = 0
    for r in range(rounds):
        for n in names:
            times[n].append([])
        for i, slot in enumerate(slots):
            order = names[k % len(names):] + names[:k % len(names)]
            k += 1
            for name in order:
                if gate is not None:
                    gate.wait()
                timing, outputs[name][i] = timed(lambda: contenders[name](slot))
                times[name][r].append(timing)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(
            f"{n} {sum(t.wall_s for t in times[n][r]):.2f}s" for n in names)
            + f" (others' load up to {max((t.others_cores or 0) for n in names for t in times[n][r]):.2f} cores"
            + (f"; waited {gate.waited_s:.0f} s for a quiet CPU so far)" if gate is not None else ")"))
    return times, outputs


def summarise(times: list[list[Timing]], quiet_limit: float) -> dict[str, Any]:
    """Per slot, the median over rounds of the quiet calls (where none was quiet: the least
    disturbed call); the total over slots is the estimate of one pass."""
    per_slot, quiet_used, unquiet_slots = [], 0, 0
    for i in range(len(times[0])):
        calls = [times[r][i] for r in range(len(times))]
        quiet = [t.wall_s for t in calls if t.quiet(quiet_limit)]
        quiet_used += len(quiet)
        if quiet:
            per_slot.append(float(statistics.median(quiet)))
        else:   # never undisturbed: the least disturbed call
            unquiet_slots += 1
            per_slot.append(min(calls, key=lambda t: (t.others_cores or 0.0, t.wall_s)).wall_s)
    return {"total_s": sum(per_slot), "per_slot_s": per_slot, "quiet_calls": quiet_used,
            "slots_without_quiet_call": unquiet_slots,
            "calls": sum(len(r) for r in times),
            "all_calls_total_median_s": float(statistics.median(sum(t.wall_s for t in r) for r in times)),
            "wall_s": [[round(t.wall_s, 4) for t in r] for r in times],
            "others_cores": [[None if t.others_cores is None else round(t.others_cores, 2) for t in r]
                             for r in times]}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
