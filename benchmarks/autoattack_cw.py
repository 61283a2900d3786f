"""AutoAttack-standard and C&W-L2: Parry against torchattacks, ART and Foolbox (issue 3).

Run in the peer environment (``bash benchmarks/setup_peers.sh`` makes it)::

    benchmarks/.venv-peers/bin/python benchmarks/autoattack_cw.py            # full run
    benchmarks/.venv-peers/bin/python benchmarks/autoattack_cw.py --quick    # smoke run

Everything runs in one process on the same model objects and the same tensors, on the CPU or
(``--device cuda``) a GPU, torch's default thread count (or ``--threads``), one pass per
contender (these are minutes-long evaluations, not micro-benchmarks); the contenders of a row
run back to back after waiting for a quiet CPU.

Row 1, AutoAttack 'standard' (Croce & Hein 2020), Linf eps 0.3, on the adversarially trained
LeNet of the tests (``tests/robust_model.py``: FGSM-RS, 3 epochs; cached), n points spread
over the MNIST test set, seed 0 (``--seed``: another seed for every contender of the row):
  (a) Parry ``autoattack(0.3, 'linf', preset='standard')``: APGD-CE, APGD-T (9 targets),
      FAB-T (9 targets), 100 iterations each, Square 5,000 queries, each on the survivors;
  (b) torchattacks 3.5.1: the same four attacks at the same budgets chained on the survivors
      by its ``MultiAttack`` (its ``AutoAttack`` class uses 10 iterations, not the paper's 100);
  (c) ART 1.20.1: APGD-CE (100 iterations), APGD-DLR targeted at each of the 9 other classes
      (100 iterations) and Square (5,000 queries), chained on the survivors here (ART has no
      FAB, and its ``AutoAttack`` class reruns every listed attack in its targeted phase).

Row 2, C&W-L2 (Carlini & Wagner 2017) on the undefended Madry et al. MNIST CNN of the
PGD benchmark, n points: the same parameters for Parry ``CarliniWagnerL2``, Foolbox 3
``L2CarliniWagnerAttack`` and ART ``CarliniL2Method``; wall time, success and median L2.
Where the device runs bf16 natively, also Parry with ``precision='bf16'`` (gradient passes
under bf16 autocast, every returned adversarial checked by an fp32 pass), as its own row:
the success rates and norms of every row are measured here on the fp32 model.

Results: a Markdown table on stdout and ``benchmarks/results/autoattack_cw.json`` (CPU) or
``autoattack_cw_cuda.json`` (GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import _common  # noqa: E402

EPS = 0.3
CW = {"binary_search_steps": 5, "steps": 100, "stepsize": 0.1, "initial_const": 1e-2}
SPEEDUP_TARGET = 1.5


def accuracy_of(model: nn.Module, adv: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).float().mean())


def check_linf(adv: Tensor, x: Tensor, eps: float) -> bool:
    return bool(float((adv - x).abs().amax()) <= eps + 1e-5 and float(adv.min()) >= 0 and float(adv.max()) <= 1)


# ---------------------------------------------------------------------- row 1: AutoAttack
def parry_autoattack(clf, x: Tensor, y: Tensor, seed: int) -> tuple[Tensor, dict[str, Any]]:
    from parry.attacks.autoattack import autoattack

    out = autoattack(EPS, "linf", preset="standard", seed=seed, batch_size=x.shape[0])(clf, x, y)
    return out.result.adv, {"stages": [{k: row[k] for k in ("stage", "accuracy", "time_s")} for row in out.table()]}


def torchattacks_autoattack(model: nn.Module, x: Tensor, y: Tensor, seed: int) -> tuple[Tensor, dict[str, Any]]:
    import torchattacks

    common = dict(norm="Linf", eps=EPS, seed=seed)
    chain = torchattacks.MultiAttack([
        torchattacks.APGD(model, steps=100, n_restarts=1, loss="ce", **common),
        torchattacks.APGDT(model, steps=100, n_restarts=1, n_classes=10, **common),
        torchattacks.FAB(model, steps=100, n_restarts=1, multi_targeted=True, n_classes=10, **common),
        torchattacks.Square(model, n_queries=5000, n_restarts=1, p_init=0.8, **common),
    ])
    return chain(x, y), {}


def art_estimator(model: nn.Module, x: Tensor):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]), nb_classes=10,
                             clip_values=(0.0, 1.0), device_type="gpu" if x.is_cuda else "cpu")


def art_autoattack(model: nn.Module, x: Tensor, y: Tensor, seed: int) -> tuple[Tensor, dict[str, Any]]:
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack

    np.random.seed(seed)  # ART draws its random starts and squares from NumPy's global generator
    torch.manual_seed(seed)
    est = art_estimator(model, x)
    n = x.shape[0]
    xs, ys = x.cpu().numpy(), y.cpu().numpy()
    adv = xs.copy()
    robust = est.predict(xs, batch_size=n).argmax(1) == ys
    stages = []

    def run(attack, labels: np.ndarray, name: str) -> None:
        idx = np.flatnonzero(robust)
        if idx.size == 0:
            return
        candidate = attack.generate(xs[idx], labels[idx])
        broken = est.predict(candidate, batch_size=n).argmax(1) != ys[idx]
        adv[idx[broken]] = candidate[broken]
        robust[idx[broken]] = False
        stages.append({"stage": name, "accuracy": float(robust.mean())})

    apgd = dict(norm=np.inf, eps=EPS, eps_step=2 * EPS, max_iter=100, nb_random_init=1, batch_size=n, verbose=False)
    run(AutoProjectedGradientDescent(est, targeted=False, loss_type="cross_entropy", **apgd), ys, "apgd-ce")
    targeted = AutoProjectedGradientDescent(est, targeted=True, loss_type="difference_logits_ratio", **apgd)
    for shift in range(1, 10):
        run(targeted, (ys + shift) % 10, f"apgd-t target y+{shift}")
    run(SquareAttack(est, norm=np.inf, eps=EPS, max_iter=5000, p_init=0.8, nb_restarts=1, batch_size=n,
                     verbose=False), ys, "square")
    return torch.from_numpy(adv).to(x.device), {"stages": stages}


# ---------------------------------------------------------------------- row 2: C&W-L2
def parry_cw(clf, x: Tensor, y: Tensor, precision: str = "fp32") -> tuple[Tensor, Tensor]:
    from parry.attacks import CarliniWagnerL2

    result = CarliniWagnerL2(**CW, precision=precision)(clf, x, y)
    return result.adv, result.success


def foolbox_cw(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
    _, adv, success = fb.attacks.L2CarliniWagnerAttack(**CW)(fmodel, x, y, epsilons=None)
    return adv, success


def art_cw(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    from art.attacks.evasion import CarliniL2Method

    attack = CarliniL2Method(art_estimator(model, x), confidence=0.0, learning_rate=CW["stepsize"],
                             binary_search_steps=CW["binary_search_steps"], max_iter=CW["steps"],
                             initial_const=CW["initial_const"], batch_size=x.shape[0], verbose=False)
    adv = torch.from_numpy(attack.generate(x.cpu().numpy())).to(x.device)
    with torch.no_grad():
        success = model(adv).argmax(1) != y
    return adv, success


# ---------------------------------------------------------------------- driver
def timed_contender(gate: Any, model: nn.Module, name: str, fn: Any) -> tuple[Any, Any]:
    """Wait for a quiet CPU, then time ``fn()`` with ``model`` in eval mode; the peers get it
    frozen (Parry's Classifier freezes its parameters itself). On a GPU the time includes the
    wait for the last kernel."""
    def finished() -> Any:
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return out

    gate.wait()
    model.eval()
    with _common.frozen(model) if name != "parry" else contextlib.nullcontext():
        return _common.timed(finished)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 points per row")
    parser.add_argument("-n", type=int, default=500, help="points of the AutoAttack row")
    parser.add_argument("--cw-n", type=int, default=200, help="points of the C&W row")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every contender (default: torch's own choice); 1 is steadier "
                             "on a machine shared with other jobs")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every AutoAttack contender (default 0); another seed writes its own JSON file")
    parser.add_argument("--max-wait", type=float, default=300,
                        help="seconds to wait for a quiet CPU before each contender")
    parser.add_argument("--skip", default="", help="comma-separated contenders to skip, e.g. art-aa,art-cw; a "
                        "row (aa or cw) skipped entirely keeps the result of an earlier run in the JSON file")
    args = parser.parse_args()
    n_aa, n_cw = (40, 40) if args.quick else (args.n, args.cw_n)
    skip = set(filter(None, args.skip.split(",")))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    gate = _common.QuietGate(limit=0.3, max_wait_s=0 if args.quick else args.max_wait)
    from parry.classifier import as_classifier
    from parry.defenses.training.fast import bf16_supported
    from robust_model import robust_lenet

    test = _common.load_mnist("test")
    device = torch.device(args.device)
    robust = robust_lenet(_common.load_mnist("train")).eval().to(device)
    x, y = (t.to(device) for t in test.spread(n_aa).tensors())
    rows: dict[str, list[dict[str, Any]]] = {"autoattack": [], "cw": []}

    aa = {"parry": lambda: parry_autoattack(as_classifier(robust), x, y, args.seed),
          "torchattacks": lambda: torchattacks_autoattack(robust, x, y, args.seed),
          "art": lambda: art_autoattack(robust, x, y, args.seed)}
    for name, fn in aa.items():
        if f"{name}-aa" in skip:
            continue
        timing, (adv, extra) = timed_contender(gate, robust, name, fn)
        row = {"contender": name, "wall_s": timing.wall_s, "others_cores": timing.others_cores,
               "robust_accuracy": accuracy_of(robust.eval(), adv, y), "in_ball": check_linf(adv, x, EPS), **extra}
        rows["autoattack"].append(row)
        print(f"autoattack {name}: {row['robust_accuracy']:.4f} in {timing.wall_s:.1f} s", flush=True)

    madry, meta = _common.trained_madry_mnist()
    madry = madry.to(device)
    xc, yc = (t.to(device) for t in test.spread(n_cw).tensors())
    cw = {"parry": lambda: parry_cw(as_classifier(madry), xc, yc), "foolbox": lambda: foolbox_cw(madry, xc, yc),
          "art": lambda: art_cw(madry, xc, yc)}
    if bf16_supported(device):  # Parry's bf16 gradient passes, every result checked in fp32
        cw = {"parry-bf16": lambda: parry_cw(as_classifier(madry), xc, yc, "bf16"), **cw}
    clean_correct = madry.eval()(xc).argmax(1) == yc
    for name, fn in cw.items():
        if f"{name}-cw" in skip:
            continue
        timing, (adv, success) = timed_contender(gate, madry, name, fn)
        norms = (adv - xc).flatten(1).norm(dim=1)
        found = success & clean_correct
        row = {"contender": name, "wall_s": timing.wall_s, "others_cores": timing.others_cores,
               "success_rate": float(found.float().sum() / clean_correct.float().sum()),
               "median_l2": float(norms[found].median()) if bool(found.any()) else float("nan"),
               "in_box": bool(float(adv.min()) >= 0 and float(adv.max()) <= 1)}
        rows["cw"].append(row)
        print(f"cw {name}: success {row['success_rate']:.4f}, median L2 {row['median_l2']:.4f} in "
              f"{timing.wall_s:.1f} s", flush=True)

    environment = {**_common.environment(["torchattacks", "art", "foolbox"]),
                   "quiet_gate": {"waited_s": gate.waited_s, "gave_up": gate.gave_up}, "threads": args.threads,
                   "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    sections = {"autoattack": {"eps": EPS, "norm": "linf", "points": n_aa, "seed": args.seed,
                               "model": "tests/robust_model.py LeNet",
                               "rows": rows["autoattack"], "environment": environment},
                "cw": {"params": CW, "points": n_cw, "model": "madry-mnist 1 epoch",
                       "model_sha256": meta.get("sha256"), "rows": rows["cw"], "environment": environment}}
    stem = "autoattack_cw" + ("" if device.type == "cpu" else f"_{device.type}") + (f"_seed{args.seed}" if args.seed else "")
    path = _common.RESULTS / f"{stem}.json"
    report = json.loads(path.read_text()) if path.is_file() and not args.quick else {}
    # a row (section) is always measured in one run: sections this run skipped entirely keep their
    # earlier measurement, with that run's own environment
    report.update({name: section for name, section in sections.items() if section["rows"]})
    print(markdown(report))
    if not args.quick:
        _common.write_json(path, report)


def speedups(rows: list[dict[str, Any]]) -> list[float]:
    """Per row, the fastest peer's wall time over the row's (nan without peers)."""
    peers = [r["wall_s"] for r in rows if not r["contender"].startswith("parry")]
    return [min(peers) / r["wall_s"] if peers else float("nan") for r in rows]


def markdown(report: dict[str, Any]) -> str:
    lines = ["| AutoAttack-standard, Linf 0.3 | wall s | speed-up vs fastest peer | robust acc. | in ball |",
             "| --- | ---: | ---: | ---: | :---: |"]
    aa = report.get("autoattack", {}).get("rows", [])
    for r, speed in zip(aa, speedups(aa)):
        lines.append(f"| {r['contender']} | {r['wall_s']:.1f} | {speed:.2f} | {r['robust_accuracy']:.4f} | "
                     f"{'yes' if r['in_ball'] else 'NO'} |")
    lines += ["", "| C&W-L2 | wall s | speed-up vs fastest peer | success | median L2 | in box |",
              "| --- | ---: | ---: | ---: | ---: | :---: |"]
    cw = report.get("cw", {}).get("rows", [])
    for r, speed in zip(cw, speedups(cw)):
        lines.append(f"| {r['contender']} | {r['wall_s']:.1f} | {speed:.2f} | {r['success_rate']:.4f} | "
                     f"{r['median_l2']:.4f} | {'yes' if r['in_box'] else 'NO'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
