"""Channels-last attack layout on or off: PGD-10 generate on the Madry CNN, side by side.

    benchmarks/.venv-peers/bin/python benchmarks/channels_last_ab.py

One torch thread, 256 MNIST test points spread over the test set, Linf eps 0.3, alpha 0.075,
seed 0, three interleaved rounds; prints the wall time of each call.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from parry import Classifier  # noqa: E402
from parry.attacks import PGD  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    clf, _ = _common.trained_madry_mnist()
    x, y = _common.load_mnist("test").spread(256).tensors()
    on, off = Classifier(clf.model, channels_last=True), Classifier(clf.model)
    for r in range(3):
        for name, c in (("channels_last", on), ("nchw", off)):
            start = time.perf_counter()
            PGD(0.3, steps=10, alpha=0.075, early_stop=False, seed=0).generate(c, x, y)
            print(f"round {r} {name}: {time.perf_counter() - start:.2f} s", flush=True)


if __name__ == "__main__":
    main()
