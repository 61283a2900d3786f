"""The data sets ``load`` and ``fetch`` know by name."""

from __future__ import annotations

from .cifar10 import CIFAR10
from .fashion_mnist import FASHION_MNIST
from .mnist import MNIST
from .spec import DatasetSpec

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST, CIFAR10)}
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
            "cifar_10": "cifar10"}
#: Names ``load`` gives to copies that stand in for a catalogue data set (ArrayDataset.name).
_COPIES = {"cifar10-jpeg": "cifar10"}


def dataset_names() -> list[str]:
    """The valid data set names."""
    return list(DATASETS)


def catalogue_name(served: str) -> str:
    """The catalogue data set that a served data set stands for: ``"cifar10"`` for the JPEG copy
    ``"cifar10-jpeg"``, any other name unchanged. Models name the catalogue data set they were
    trained for; evaluation points keep the served name, so results stay labelled as the copy's."""
    if not isinstance(served, str):
        raise TypeError(f"served: expected a data set name (str), got {type(served).__name__}")
    return _COPIES.get(served, served)


def get_spec(name: str) -> DatasetSpec:
    """The spec of data set ``name`` (case-insensitive); ValueError listing the valid names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a data set name (str), got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"name: unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[key]
