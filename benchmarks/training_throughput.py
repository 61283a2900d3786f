"""PGD-10 adversarial-training throughput: the Trainer with its fast path on and off, against a
plain eager PyTorch PGD-AT loop (NCHW, fp32), side by side in one run (issue 7).

    .venv/bin/python benchmarks/training_throughput.py --threads 1,2
    .venv/bin/python benchmarks/training_throughput.py --quick        # smoke run

Same model (the TRADES SmallCNN on MNIST, freshly initialised with seed 0 for each contender),
same batches (the first ``--batches`` x 128 training images, not shuffled), same work: per batch,
PGD-10 at Linf 0.3 (alpha 0.03, uniform random start, no early exit) in eval mode with frozen
parameters, then one Adam step on the cross-entropy of the crafted examples in train mode. The
contenders run in interleaved rounds after one untimed warm-up each, for each torch thread
count asked for; the table reports the median images per second and the ratio to the plain
loop at the same thread count. Results go to
``benchmarks/results/training_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from parry.defenses.training import PGDAT, OptimizerSpec, Trainer, bf16_supported  # noqa: E402
from parry.zoo import make_classifier  # noqa: E402

EPS, ALPHA, STEPS, BATCH, LR = 0.3, 0.03, 10, 128, 1e-3


def plain_loop(train, seed: int) -> None:
    """The reference: PGD-AT written out in eager PyTorch, NCHW fp32."""
    torch.manual_seed(seed)
    model = make_classifier("small-cnn", "mnist").model
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    for x, y in train.batches(BATCH):
        _common.plain_pgd_at_step(model, optimiser, x, y, EPS, ALPHA, STEPS)


def parry_trainer(fast: bool) -> Callable[[object, int], None]:
    def run(train, seed: int) -> None:
        torch.manual_seed(seed)
        clf = make_classifier("small-cnn", "mnist")
        Trainer(clf, PGDAT(EPS, steps=STEPS, alpha=ALPHA), optimizer=OptimizerSpec("adam", lr=LR),
                schedule="constant", epochs=1, batch_size=BATCH, seed=seed, progress=False, fast=fast).fit(train)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1", help="comma-separated torch thread counts (default 1)")
    parser.add_argument("--batches", type=int, default=30, help="batches of 128 per timed call (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 batches, 1 round, no JSON")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.rounds = 4, 1
    threads = [int(t) for t in args.threads.split(",")]
    train = _common.load_mnist("train").subset(range(args.batches * BATCH))
    contenders = {"plain PyTorch loop (NCHW fp32)": plain_loop, "Trainer, fast path off": parry_trainer(False),
                  "Trainer, fast path on": parry_trainer(True)}
    gate = _common.QuietGate()
    images = args.batches * BATCH
    rows = []
    print("| threads | contender | images/s | x plain loop |\n|---|---|---|---|")
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for fn in contenders.values():  # warm-up (one-off allocations, oneDNN primitive caches)
            fn(train.subset(range(2 * BATCH)), 0)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        others: dict[str, list[float | None]] = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                gate.wait()
                timing, _ = _common.timed(lambda: fn(train, 0))
                times[name].append(timing.wall_s)
                others[name].append(timing.others_cores)
        base = images / statistics.median(times["plain PyTorch loop (NCHW fp32)"])
        for name, walls in times.items():
            rate = images / statistics.median(walls)
            rows.append({"threads": n_threads, "contender": name, "wall_s": walls, "others_cores": others[name],
                         "images_per_s": rate, "ratio_to_plain": rate / base})
            print(f"| {n_threads} | {name} | {rate:.1f} | {rate / base:.2f}x |", flush=True)
    print(f"bf16 autocast on this CPU: {bf16_supported('cpu')}")
    if not args.quick:
        out = _common.RESULTS / "training_throughput.json"
        out.write_text(json.dumps({"environment": _common.environment(), "bf16_supported": bf16_supported("cpu"),
                                   "setup": {"model": "small-cnn (TRADES SmallCNN)", "data": f"MNIST train[:{images}]",
                                             "eps": EPS, "alpha": ALPHA, "steps": STEPS, "batch_size": BATCH,
                                             "optimizer": f"adam lr {LR}", "rounds": args.rounds},
                                   "rows": rows}, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
