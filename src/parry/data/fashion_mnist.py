"""Fashion-MNIST: 70,000 Zalando article images, 28x28 grey, a drop-in MNIST replacement
(Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST: a novel image dataset for benchmarking machine
learning algorithms", arXiv:1708.07747)."""

from __future__ import annotations

from functools import partial

from .idx_dataset import IdxDataset
from .sources import AptSource

FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    citation="Xiao et al. 2017, Fashion-MNIST, arXiv:1708.07747",
    official=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",),
    registry=partial(AptSource, "dataset-fashion-mnist", "usr/share/datasets/fashion-mnist"),
)
