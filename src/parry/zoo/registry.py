"""Architecture registry, data-set defaults, and the one place where an architecture
becomes a :class:`~parry.classifier.Classifier` for a data set."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from parry.classifier import Classifier
from parry.zoo.cifar_cnn import CifarCNN
from parry.zoo.lenet import LeNet
from parry.zoo.madry_mnist import MadryMNISTCNN
from parry.zoo.preact_resnet import PreActResNet18
from parry.zoo.small_cnn import SmallCNN


def _lipschitz_mnist(**kwargs: Any) -> nn.Module:
    """:func:`~parry.zoo.lipschitz_mnist.lipschitz_mnist`, imported on use: its layers live in
    parry.defenses, a layer above the zoo."""
    from parry.zoo.lipschitz_mnist import lipschitz_mnist

    return lipschitz_mnist(**kwargs)


def _logit_ensemble(**kwargs: Any) -> nn.Module:
    """:class:`~parry.zoo.logit_ensemble.LogitEnsemble`, imported on use: it builds its members
    through this registry."""
    from parry.zoo.logit_ensemble import LogitEnsemble

    return LogitEnsemble(**kwargs)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "madry-mnist": MadryMNISTCNN,
    "lenet": LeNet,
    "small-cnn": SmallCNN,
    "cifar-cnn": CifarCNN,
    "preact-resnet18": PreActResNet18,
    "lipschitz-mnist": _lipschitz_mnist,
    "logit-ensemble": _logit_ensemble,
}

_MNIST = {"input_shape": (1, 28, 28), "num_classes": 10, "mean": None, "std": None}
DATASET_INFO: dict[str, dict[str, Any]] = {
    "mnist": dict(_MNIST),
    "fashion-mnist": dict(_MNIST),
    "cifar10": {
        "input_shape": (3, 32, 32),
        "num_classes": 10,
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2471, 0.2435, 0.2616),
    },
}

BOUNDS = (0.0, 1.0)


def build(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the registered architecture ``name`` with ``kwargs``."""
    if name not in ARCHITECTURES:
        raise ValueError(f"architecture: unknown name {name!r}; valid names: {', '.join(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"arch_kwargs: {name!r} rejects {sorted(kwargs)}: {exc}") from exc


def dataset_info(dataset: str) -> dict[str, Any]:
    """The defaults (input_shape, num_classes, mean, std) of a known data set."""
    if dataset not in DATASET_INFO:
        raise ValueError(f"dataset: unknown name {dataset!r}; valid names: {', '.join(DATASET_INFO)}")
    return DATASET_INFO[dataset]


def wrap(
    architecture: str,
    arch_kwargs: dict[str, Any],
    *,
    input_shape: Sequence[int],
    num_classes: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    bounds: tuple[float, float] = BOUNDS,
) -> Classifier:
    """Build ``architecture`` for inputs of ``input_shape`` and wrap it in a Classifier.

    ``in_channels`` and ``num_classes`` are taken from ``input_shape``/``num_classes``
    unless ``arch_kwargs`` sets them. One forward pass of zeros checks that the network
    accepts the input shape and returns (N, num_classes) logits.
    """
    kwargs = {"in_channels": int(input_shape[0]), "num_classes": int(num_classes), **arch_kwargs}
    model = build(architecture, **kwargs)
    _check_shapes(model, architecture, tuple(input_shape), int(num_classes))
    return Classifier(model, num_classes=int(num_classes), bounds=bounds, mean=mean, std=std,
                      input_shape=input_shape)


def _check_shapes(model: nn.Module, architecture: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *input_shape))
    except RuntimeError as exc:
        raise ValueError(f"architecture: {architecture!r} does not accept inputs of shape "
                         f"{input_shape}: {exc}") from exc
    finally:
        model.train(training)
    if tuple(out.shape) != (1, num_classes):
        raise ValueError(f"architecture: {architecture!r} returns shape {tuple(out.shape[1:])} "
                         f"per input, expected ({num_classes},) logits")


def make_classifier(arch: str, dataset: str, **arch_kwargs: Any) -> Classifier:
    """Architecture ``arch`` for ``dataset`` wrapped in a Classifier with the data set's
    bounds (0, 1), mean/std normalisation, input shape and number of classes."""
    info = dataset_info(dataset)
    return wrap(arch, arch_kwargs, input_shape=info["input_shape"], num_classes=info["num_classes"],
                mean=info["mean"], std=info["std"])
