"""The Classifier's attack fast path on or off, side by side (one torch thread).

    benchmarks/.venv-peers/bin/python benchmarks/fast_path_ab.py

Three rows, three interleaved rounds each, wall time of every call:
- PGD-10 ``generate`` (forward-backward bound) on the Madry CNN of the PGD benchmark, 256 MNIST
  test points spread over the test set, Linf eps 0.3, alpha 0.075, seed 0;
- Square, 300 queries (forward bound) on the FGSM-RS LeNet of the tests, the same points;
- C&W-L2 with the budget of ``autoattack_cw.py`` (5 x 100 Adam steps, abort early) on the Madry
  CNN, that benchmark's 100 points.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import _common  # noqa: E402
from robust_model import robust_lenet  # noqa: E402

from parry import Classifier  # noqa: E402
from autoattack_cw import CW  # noqa: E402
from parry.attacks import PGD, CarliniWagnerL2, Square  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    madry, _ = _common.trained_madry_mnist()
    lenet = robust_lenet(_common.load_mnist("train"))
    test = _common.load_mnist("test")
    x, y = test.spread(256).tensors()
    xc, yc = test.spread(100).tensors()
    rows = {"PGD-10 generate, Madry CNN": (madry, lambda c: PGD(0.3, steps=10, alpha=0.075, early_stop=False,
                                                                   seed=0).generate(c, x, y)),
            "Square 300 queries, LeNet": (lenet, lambda c: Square(0.3, queries=300, early_stop=False,
                                                                  seed=0)(c, x, y)),
            "C&W-L2 5 x 100 steps, Madry CNN": (madry, lambda c: CarliniWagnerL2(**CW)(c, xc, yc))}
    for row, (clf, run) in rows.items():
        on, off = Classifier(clf.model), Classifier(clf.model, fast=False)
        for r in range(3):
            for name, c in (("fast", on), ("plain", off)):
                start = time.perf_counter()
                run(c)
                print(f"{row}, round {r}, {name}: {time.perf_counter() - start:.2f} s", flush=True)


if __name__ == "__main__":
    main()
