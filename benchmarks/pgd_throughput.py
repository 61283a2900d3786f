"""PGD throughput: Parry against a bare PyTorch loop and the peer libraries (issue 2).

Run in the peer environment (``bash benchmarks/setup_peers.sh`` makes it)::

    benchmarks/.venv-peers/bin/python benchmarks/pgd_throughput.py          # full run
    benchmarks/.venv-peers/bin/python benchmarks/pgd_throughput.py --quick  # smoke run

Everything is measured side by side in one process: the same model object (the Madry et
al. MNIST CNN, trained undefended for one epoch and cached under ``benchmarks/.cache/``),
the same images (n MNIST test images spread over the test set), batch 256, torch's
default thread count; the contenders run interleaved, in a rotated order, for several
rounds, and the median wall time of each is reported.

Row 1, fixed budget: PGD-Linf, 10 steps, eps 0.3, alpha 0.075 (= 2.5 * eps / steps), one
uniform random start, for (a) a bare PyTorch loop doing exactly 10 forward+backward
passes (the limit), (b) Parry ``PGD.generate`` (the training path) and ``PGD.__call__``
(with result bookkeeping), (c) torchattacks, (d) IBM ART, (e) Foolbox 3.

Row 2, evaluation: PGD-40 Linf eps 0.3, alpha 0.01 (Madry et al.), random start; Parry
with its early exit (default) against torchattacks: wall time to the robust accuracy.

Results: a Markdown table on stdout and ``benchmarks/results/pgd_throughput.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

EPS = 0.3
STEPS = 10
ALPHA = 2.5 * EPS / STEPS          # 0.075, Madry et al.'s rule, the same for every contender
EVAL_STEPS = 40
EVAL_ALPHA = 0.01                  # Madry et al.'s MNIST evaluation step size
BATCH = 256
TOL = 1e-5                          # float32 slack of |adv - x| <= eps

TARGET_FIXED = 0.97                 # Parry fixed-budget >= 0.97 of the bare loop
TARGET_SPEEDUP = 3.0                # row 2: Parry at least 3x faster than torchattacks


# ---------------------------------------------------------------------- helpers
@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    correct = sum(int((model(x[i:i + BATCH]).argmax(1) == y[i:i + BATCH]).sum())
                  for i in range(0, x.shape[0], BATCH))
    return correct / x.shape[0]


def check_ball(adv: Tensor, x: Tensor, eps: float) -> dict[str, Any]:
    """Sanity: the output lies in the eps-ball around x and in [0, 1]."""
    linf = float((adv - x).abs().amax())
    in_box = bool(adv.min() >= 0) and bool(adv.max() <= 1)
    return {"max_linf": linf, "in_ball": linf <= eps + TOL and in_box}


def bare_pgd(model: nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float, steps: int) -> Tensor:
    """The limit: exactly ``steps`` forward+backward passes, gradients w.r.t. the input only.

    The caller puts the model in eval mode with frozen parameters.
    """
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp_(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y, reduction="sum")
        grad, = torch.autograd.grad(loss, adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp_(0, 1)
    return adv


# ---------------------------------------------------------------------- contenders
def row1_contenders(clf: nn.Module, frozen_peers: bool) -> dict[str, dict[str, Any]]:
    """name -> {fn(x_batch, y_batch) -> adv, what the timing includes}."""
    from parry.attacks import PGD

    out: dict[str, dict[str, Any]] = {}

    def bare(xs: Tensor, ys: Tensor) -> Tensor:
        with _common.frozen(clf):
            return bare_pgd(clf, xs, ys, EPS, ALPHA, STEPS)

    out["bare PyTorch loop (limit)"] = {
        "fn": bare, "includes": "10 fwd+bwd per image, grad w.r.t. input only, frozen parameters"}

    parry_gen = PGD(eps=EPS, steps=STEPS, alpha=ALPHA, early_stop=False)
    out["Parry PGD.generate"] = {
        "fn": lambda xs, ys: parry_gen.generate(clf, xs, ys),
        "includes": "validation + 10 fwd+bwd + projection (fixed-budget training path)"}
    parry_call = PGD(eps=EPS, steps=STEPS, alpha=ALPHA, early_stop=False)
    out["Parry PGD.__call__"] = {
        "fn": lambda xs, ys: parry_call(clf, xs, ys).adv,
        "includes": "as generate + 1 clean and 1 final forward + AttackResult bookkeeping"}

    peer_ctx = (lambda: _common.frozen(clf)) if frozen_peers else contextlib.nullcontext

    try:
        import torchattacks
        ta = torchattacks.PGD(clf, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)

        def run_ta(xs: Tensor, ys: Tensor) -> Tensor:
            with peer_ctx():
                return ta(xs, ys)

        out[f"torchattacks {torchattacks.__version__} PGD"] = {
            "fn": run_ta, "includes": "10 fwd+bwd (torch.autograd.grad) + input range check"}
    except ImportError as exc:
        print(f"skipping torchattacks: {exc}")

    try:
        import art
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier
        art_clf = PyTorchClassifier(model=clf, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                                    nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
        art_pgd = ProjectedGradientDescent(art_clf, norm=np.inf, eps=EPS, eps_step=ALPHA, max_iter=STEPS,
                                           targeted=False, num_random_init=1, batch_size=BATCH,
                                           random_eps=False, verbose=False)

        def run_art(xs: Tensor, ys: Tensor) -> Tensor:
            # ART's interface is NumPy: arrays in, arrays out (conversions timed, as a user pays them).
            with peer_ctx():
                adv = art_pgd.generate(x=xs.numpy(), y=ys.numpy())
            return torch.from_numpy(adv)

        out[f"ART {art.__version__} ProjectedGradientDescent"] = {
            "fn": run_art,
            "includes": "10 fwd+bwd (loss.backward(): parameter gradients too unless frozen) + "
                        "1 forward for its success-rate log + NumPy conversions"}
    except ImportError as exc:
        print(f"skipping ART: {exc}")

    try:
        import foolbox as fb
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fmodel = fb.PyTorchModel(clf, bounds=(0, 1), device="cpu")
        fb_pgd = fb.attacks.LinfPGD(abs_stepsize=ALPHA, steps=STEPS, random_start=True)

        def run_fb(xs: Tensor, ys: Tensor) -> Tensor:
            with peer_ctx():
                return fb_pgd(fmodel, xs, ys, epsilons=EPS)[1]

        out[f"Foolbox {fb.__version__} LinfPGD"] = {
            "fn": run_fb,
            "includes": "10 fwd+bwd (loss.backward(): parameter gradients too unless frozen) + "
                        "1 forward for its success mask"}
    except ImportError as exc:
        print(f"skipping Foolbox: {exc}")
    return out


def row2_contenders(clf: nn.Module) -> dict[str, dict[str, Any]]:
    """name -> fn(x_batch, y_batch) -> (adv, robust-correct mask), timed to the robust accuracy."""
    from parry.attacks import PGD

    out: dict[str, dict[str, Any]] = {}
    parry_eval = PGD(eps=EPS, steps=EVAL_STEPS, alpha=EVAL_ALPHA)   # early_stop=True (default)

    def run_parry(xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
        res = parry_eval(clf, xs, ys)
        return res.adv, ~res.success

    out["Parry PGD-40 (early exit)"] = {
        "fn": run_parry, "includes": "1 clean fwd, fwd+bwd on still-robust points only, 1 final fwd"}

    try:
        import torchattacks
        ta = torchattacks.PGD(clf, eps=EPS, alpha=EVAL_ALPHA, steps=EVAL_STEPS, random_start=True)

        def run_ta(xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
            adv = ta(xs, ys)
            with torch.no_grad():
                return adv, clf(adv).argmax(1) == ys

        out[f"torchattacks {torchattacks.__version__} PGD-40"] = {
            "fn": run_ta, "includes": "40 fwd+bwd on every point + 1 fwd for the robust accuracy"}
    except ImportError as exc:
        print(f"skipping torchattacks: {exc}")
    return out


# ---------------------------------------------------------------------- measurement
QUIET = 0.25   # a call counts as undisturbed when other processes kept <= 0.25 cores busy meanwhile


def measure(contenders: dict[str, dict[str, Any]], clf: nn.Module, x: Tensor, y: Tensor,
            rounds: int, gate: _common.QuietGate
            ) -> tuple[dict[str, dict[str, Any]], dict[str, list[Any]], dict[str, int]]:
    """Interleave the contenders batch by batch for ``rounds`` passes over (x, y)."""
    slots = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, x.shape[0], BATCH)]
    # Warm-up (untimed): first-call costs (allocator, oneDNN primitives, peer set-up).
    for spec in contenders.values():
        spec["fn"](*slots[0])
    forwards: dict[str, int] = {n: 0 for n in contenders}   # images through forward, per pass

    def call(name: str, fn: Callable[[Tensor, Tensor], Any]) -> Callable[[Any], Any]:
        def run(slot: tuple[Tensor, Tensor]) -> Any:
            before = clf.queries        # a Python int on the Classifier: no sync, no cost
            out = fn(*slot)
            forwards[name] += clf.queries - before
            return out
        return run

    calls = {name: call(name, spec["fn"]) for name, spec in contenders.items()}
    times, outputs = _common.interleaved(calls, slots, rounds, gate=gate)
    forwards = {n: v // rounds for n, v in forwards.items()}
    names = list(contenders)
    stats = {n: _common.summarise(times[n], QUIET) for n in names}
    base = names[0]
    for n in names:   # ratio per (round, batch) pair, both calls undisturbed
        pairs = [times[base][r][i].wall_s / times[n][r][i].wall_s
                 for r in range(rounds) for i in range(len(slots))
                 if times[base][r][i].quiet(QUIET) and times[n][r][i].quiet(QUIET)]
        stats[n]["paired_ratio_median"] = _common.median(pairs) if pairs else None
        stats[n]["paired_ratio_count"] = len(pairs)
    return stats, outputs, forwards


def run_row1(clf: nn.Module, x: Tensor, y: Tensor, rounds: int, frozen_peers: bool,
             gate: _common.QuietGate) -> list[dict[str, Any]]:
    contenders = row1_contenders(clf, frozen_peers)
    print(f"\nRow 1: fixed-budget PGD-Linf, {STEPS} steps, eps {EPS}, alpha {ALPHA}, random start; "
          f"{x.shape[0]} images, batch {BATCH}, {rounds} rounds")
    stats, outputs, forwards = measure(contenders, clf, x, y, rounds, gate)
    names = list(contenders)
    bare_total = stats[names[0]]["total_s"]
    rows = []
    for name in names:
        adv = torch.cat(outputs[name]).to(torch.float32)
        st = stats[name]
        rows.append({
            "name": name, "images_per_s": x.shape[0] / st["total_s"], "time_s": st["total_s"],
            "ratio_to_bare": bare_total / st["total_s"],
            "robust_accuracy": accuracy(clf, adv, y), "model_forwards": forwards[name],
            "includes": contenders[name]["includes"], **check_ball(adv, x, EPS), "timing": st})
    return rows


def run_row2(clf: nn.Module, x: Tensor, y: Tensor, rounds: int,
             gate: _common.QuietGate) -> list[dict[str, Any]]:
    contenders = row2_contenders(clf)
    print(f"\nRow 2: evaluation PGD-{EVAL_STEPS} Linf, eps {EPS}, alpha {EVAL_ALPHA}, random start; "
          f"{x.shape[0]} images, batch {BATCH}, {rounds} rounds")
    stats, outputs, forwards = measure(contenders, clf, x, y, rounds, gate)
    rows = []
    for name in contenders:
        adv = torch.cat([o[0] for o in outputs[name]])
        correct = torch.cat([o[1] for o in outputs[name]])
        rows.append({
            "name": name, "time_s": stats[name]["total_s"],
            "robust_accuracy": float(correct.float().mean()),
            "robust_accuracy_recomputed": accuracy(clf, adv, y), "model_forwards": forwards[name],
            "includes": contenders[name]["includes"], **check_ball(adv, x, EPS), "timing": stats[name]})
    if len(rows) > 1:
        for row in rows:
            row["speedup_vs_torchattacks"] = rows[1]["time_s"] / row["time_s"]
    return rows


# ---------------------------------------------------------------------- report
def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(row1: list[dict[str, Any]], row2: list[dict[str, Any]], n: int, clean: float) -> str:
    lines = [f"Row 1 - fixed budget: PGD-Linf {STEPS} steps, eps {EPS}, alpha {ALPHA}, one random start; "
             f"{n} MNIST test images, batch {BATCH}; clean accuracy {clean:.4f}", "",
             "| contender | images/s | x bare loop | x bare loop (paired) | robust acc. "
             "| model forwards / image | max abs(adv - x) | in ball |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |"]
    for r in row1:
        lines.append(f"| {r['name']} | {r['images_per_s']:.1f} | {r['ratio_to_bare']:.3f} | "
                     f"{_fmt(r['timing']['paired_ratio_median'], '.3f')} | "
                     f"{r['robust_accuracy']:.4f} | {r['model_forwards'] / n:.2f} | {r['max_linf']:.4f} | "
                     f"{'yes' if r['in_ball'] else 'NO'} |")
    if row2:
        lines += ["", f"Row 2 - evaluation: PGD-{EVAL_STEPS} Linf, eps {EPS}, alpha {EVAL_ALPHA}, random start; "
                      f"{n} images, batch {BATCH}", "",
                  "| contender | wall time (s) | speed-up vs torchattacks | robust acc. "
                  "| model forwards / image | in ball |",
                  "| --- | ---: | ---: | ---: | ---: | :---: |"]
        for r in row2:
            lines.append(f"| {r['name']} | {r['time_s']:.2f} | {r.get('speedup_vs_torchattacks', 1.0):.2f} | "
                         f"{r['robust_accuracy']:.4f} | {r['model_forwards'] / n:.2f} | "
                         f"{'yes' if r['in_ball'] else 'NO'} |")
    quiet = sum(r["timing"]["quiet_calls"] for r in row1 + row2)
    calls = sum(r["timing"]["calls"] for r in row1 + row2)
    unquiet = sum(r["timing"]["slots_without_quiet_call"] for r in row1 + row2)
    lines += ["", f"Times: per batch the median over rounds of the calls during which other processes kept "
                  f"<= {QUIET} cores busy ({quiet} of {calls} calls; {unquiet} (contender, batch) pairs had no "
                  f"such call and use the least disturbed one), summed over the batches. "
                  f"'paired': median over (round, batch) of t_bare / t_contender, both undisturbed."]
    return "\n".join(lines)


def verdict(row1: list[dict[str, Any]], row2: list[dict[str, Any]]) -> dict[str, Any]:
    gen = next(r for r in row1 if r["name"] == "Parry PGD.generate")
    out: dict[str, Any] = {"parry_generate_ratio": gen["ratio_to_bare"],
                           "parry_generate_ratio_target": TARGET_FIXED,
                           "parry_generate_meets_target": gen["ratio_to_bare"] >= TARGET_FIXED}
    if len(row2) > 1:
        out.update(row2_speedup=row2[0]["speedup_vs_torchattacks"], row2_speedup_target=TARGET_SPEEDUP,
                   row2_speedup_meets_target=row2[0]["speedup_vs_torchattacks"] >= TARGET_SPEEDUP,
                   row2_robust_acc_parry=row2[0]["robust_accuracy"],
                   row2_robust_acc_torchattacks=row2[1]["robust_accuracy"],
                   row2_robust_acc_meets_target=row2[0]["robust_accuracy"] <= row2[1]["robust_accuracy"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 256 images, 2 rounds")
    ap.add_argument("-n", type=int, default=None, help="number of test images (default 1024; quick 256)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; quick 2)")
    ap.add_argument("--frozen-peers", action="store_true",
                    help="diagnostic: freeze the parameters for the peer libraries too")
    ap.add_argument("--skip-row2", action="store_true")
    ap.add_argument("--max-wait", type=float, default=120.0,
                    help="seconds to wait, before each timed call, for other processes to leave the CPU "
                         "idle (0: never wait; default 120)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON output (default benchmarks/results/pgd_throughput.json; "
                         "quick and diagnostic runs write pgd_throughput.<tag>.json)")
    args = ap.parse_args(argv)
    n = args.n or (256 if args.quick else 1024)
    rounds = args.rounds or (2 if args.quick else 5)
    tag = ".quick" if args.quick else ""
    tag += ".frozen-peers" if args.frozen_peers else ""
    out_path = args.out or _common.RESULTS / f"pgd_throughput{tag}.json"

    torch.manual_seed(0)
    np.random.seed(0)
    clf, meta = _common.trained_madry_mnist()
    x, y = _common.load_mnist("test").spread(n).tensors()
    clean = accuracy(clf, x, y)
    env = _common.environment(peers=("torchattacks", "art", "foolbox", "eagerpy", "scipy"))
    print(f"torch {torch.__version__}, {env['torch_num_threads']} threads, CPU {env['cpu']}; "
          f"model {meta['architecture']} (clean test accuracy {meta['metrics']['clean_accuracy_test']:.4f}); "
          f"{n} images, clean accuracy {clean:.4f}")

    gate = _common.QuietGate(limit=QUIET, max_wait_s=args.max_wait)
    row1 = run_row1(clf, x, y, rounds, args.frozen_peers, gate)
    row2 = [] if args.skip_row2 else run_row2(clf, x, y, rounds, gate)
    env["quiet_gate"] = {"limit_cores": gate.limit, "max_wait_s": gate.max_wait_s,
                         "waited_s": round(gate.waited_s, 1), "gave_up": gate.gave_up}
    table = markdown(row1, row2, n, clean)
    result = {
        "benchmark": "pgd_throughput", "environment": env,
        "config": {"n_images": n, "spread_over": "MNIST test (every N/n-th image)", "batch_size": BATCH,
                   "rounds": rounds, "eps": EPS, "steps": STEPS, "alpha": ALPHA, "eval_steps": EVAL_STEPS,
                   "eval_alpha": EVAL_ALPHA, "frozen_peers": args.frozen_peers, "quick": args.quick,
                   "model": {"architecture": meta["architecture"], "recipe": meta.get("recipe"),
                             "metrics": meta.get("metrics"), "sha256": meta["sha256"]},
                   "clean_accuracy": clean},
        "row1_fixed_budget": row1, "row2_evaluation": row2, "verdict": verdict(row1, row2),
        "markdown": table,
    }
    _common.write_json(out_path, result)
    print("\n" + table)
    print(f"\nverdict: {result['verdict']}")
    print(f"wrote {out_path}")
    bad = [r["name"] for r in row1 + row2 if not r["in_ball"]]
    if bad:
        print(f"ERROR: outputs outside the eps-ball: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
