"""Tests of parry.zoo: architectures, checkpoints, the plain trainer and `parry train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import parry.data
from parry.classifier import Classifier
from parry.cli.train import train
from parry.zoo import (ARCHITECTURES, CheckpointError, build, evaluate_accuracy, load_checkpoint,
                       make_classifier, save_checkpoint, train_classifier)

PARAMS = {  # exact parameter counts with the default arguments (10 classes)
    "madry-mnist": ("mnist", 3_274_634),
    "lenet": ("mnist", 80_202),
    "small-cnn": ("mnist", 312_202),
    "cifar-cnn": ("cifar10", 815_018),
    "preact-resnet18": ("cifar10", 11_172_170),
    "lipschitz-mnist": ("mnist", 839_018),
}


class TinySet:
    """A stand-in with the interface of parry.data.ArrayDataset that the zoo uses."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, name: str = "tiny") -> None:
        self.images, self.labels, self.name = images, labels, name

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size, shuffle=False, seed=None, drop_last=False, device=None):
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed or 0))
        else:
            order = torch.arange(n)
        stop = n - n % batch_size if drop_last else n
        for i in range(0, stop, batch_size):
            idx = order[i:i + batch_size]
            yield self.images[idx].to(device), self.labels[idx].to(device)

    def spread(self, n: int) -> "TinySet":
        idx = torch.arange(n) * len(self) // n
        return TinySet(self.images[idx], self.labels[idx], self.name)


def separable(n: int = 256, shape=(1, 4, 4), classes: int = 4, seed: int = 0) -> TinySet:
    """Class k brightens the k-th quarter of the pixels: linearly separable."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    x = torch.rand(n, *shape, generator=g) * 0.3
    flat = x.view(n, -1)
    size = flat.shape[1] // classes
    for k in range(classes):
        flat[labels == k, k * size:(k + 1) * size] += 0.6
    return TinySet(x.clamp(0, 1), labels)


def tiny_classifier(dropout: bool = True) -> Classifier:
    torch.manual_seed(123)
    layers = [nn.Flatten(), nn.Linear(16, 32), nn.ReLU()]
    layers += [nn.Dropout(0.2)] if dropout else []
    return Classifier(nn.Sequential(*layers, nn.Linear(32, 4)), num_classes=4, input_shape=(1, 4, 4))


# ----------------------------------------------------------------------------- architectures

def test_every_architecture_but_the_ensemble_has_defaults():
    assert set(ARCHITECTURES) - set(PARAMS) == {"logit-ensemble"}  # its members are required (test_logit_ensemble)


@pytest.mark.parametrize("arch", list(PARAMS))
def test_architecture_shapes_and_parameter_counts(arch):
    dataset, count = PARAMS[arch]
    clf = make_classifier(arch, dataset).eval()
    assert sum(p.numel() for p in clf.parameters()) == count
    x = torch.rand(3, *clf.input_shape)
    assert clf(x).shape == (3, 10)
    assert clf.bounds == (0.0, 1.0) and clf.num_classes == 10


def test_cifar_cnn_without_batch_norm_and_dataset_normalisation():
    assert sum(p.numel() for p in build("cifar-cnn", batch_norm=False).parameters()) == 814_122
    clf = make_classifier("cifar-cnn", "cifar10")
    assert torch.allclose(clf.mean.flatten(), torch.tensor([0.4914, 0.4822, 0.4465]))
    assert make_classifier("small-cnn", "fashion-mnist").mean is None


def test_madry_cnn_with_silu_has_the_same_weights_and_another_function():
    torch.manual_seed(0)
    relu = build("madry-mnist")
    torch.manual_seed(0)
    silu = build("madry-mnist", activation="silu")
    assert not any(isinstance(m, nn.ReLU) for m in silu.modules())
    assert sum(isinstance(m, nn.SiLU) for m in silu.modules()) == 3
    assert all(torch.equal(a, b) for a, b in zip(relu.state_dict().values(), silu.state_dict().values()))
    x = torch.rand(2, 1, 28, 28)
    assert not torch.allclose(relu(x), silu(x))
    with pytest.raises(ValueError, match="activation: unknown name 'gelu'; valid names: relu, silu"):
        build("madry-mnist", activation="gelu")


def test_madry_cnn_width_multiplies_the_channels():
    wide = build("madry-mnist", width=1.5)
    convs = [m for m in wide.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [48, 96] and wide.classifier[1].in_features == 7 * 7 * 96
    # 1*48*25+48 + 48*96*25+96 + 4704*1024+1024 + 1024*10+10
    assert sum(p.numel() for p in wide.parameters()) == 4_944_714
    assert wide(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert [c.out_channels for c in build("madry-mnist", width=1).modules() if isinstance(c, nn.Conv2d)] == [32, 64]
    for bad in (0, 0.1, 9, "2", True, float("nan")):
        with pytest.raises(ValueError, match="width: expected a number in"):
            build("madry-mnist", width=bad)


def test_registry_rejects_unknown_names_and_bad_shapes():
    with pytest.raises(ValueError, match="valid names: madry-mnist"):
        build("resnet-9000")
    with pytest.raises(ValueError, match="dataset"):
        make_classifier("small-cnn", "imagenet")
    with pytest.raises(ValueError, match="does not accept inputs"):
        make_classifier("small-cnn", "cifar10")
    with pytest.raises(ValueError, match="arch_kwargs"):
        build("small-cnn", width=3)


# ----------------------------------------------------------------------------- checkpoints

def _save(tmp_path: Path, arch: str = "small-cnn", dataset: str = "mnist", **kw):
    clf = make_classifier(arch, dataset, **kw)
    stem = tmp_path / "sub" / "model.v1"
    path = save_checkpoint(stem, clf, architecture=arch, arch_kwargs=kw, dataset=dataset,
                           recipe={"lr": 0.1, "root": tmp_path}, metrics={"test_accuracy": 0.5})
    return clf.eval(), stem, path


@pytest.mark.parametrize("arch,dataset,kw", [("small-cnn", "mnist", {}),
                                             ("cifar-cnn", "cifar10", {"batch_norm": False}),
                                             ("madry-mnist", "fashion-mnist", {"activation": "silu"})])
def test_checkpoint_round_trip(tmp_path, arch, dataset, kw):
    clf, stem, path = _save(tmp_path, arch, dataset, **kw)
    assert path == Path(str(stem) + ".safetensors") and path.is_file()
    x = torch.rand(4, *clf.input_shape)
    for name in (stem, path, Path(str(stem) + ".json"), str(stem)):
        loaded, meta = load_checkpoint(name)
        assert not loaded.training
        assert torch.equal(loaded(x), clf(x))
    assert meta["architecture"] == arch and meta["arch_kwargs"] == kw and meta["dataset"] == dataset
    assert meta["input_shape"] == list(clf.input_shape) and meta["num_classes"] == 10
    assert meta["bounds"] == [0.0, 1.0] and meta["recipe"] == {"lr": 0.1, "root": str(tmp_path)}
    assert meta["metrics"] == {"test_accuracy": 0.5} and len(meta["sha256"]) == 64
    assert meta["parry_version"] and meta["torch_version"] == torch.__version__
    assert meta["created_utc"].endswith("+00:00")
    assert (meta["mean"] is None) == (dataset != "cifar10")
    assert not list(path.parent.glob("*.tmp"))  # atomic writes leave nothing behind


def test_tampered_weights_are_refused(tmp_path):
    _, stem, path = _save(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.v1\.safetensors.*SHA-256 mismatch"):
        load_checkpoint(stem)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    _, stem, path = _save(tmp_path)
    # Valid sidecar hash, but the sidecar claims another architecture.
    sidecar = Path(str(stem) + ".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "architecture": "madry-mnist"}))
    with pytest.raises(CheckpointError, match="cannot load into 'madry-mnist'"):
        load_checkpoint(stem)


@pytest.mark.parametrize("field,value,message", [
    ("architecture", "resnet-9000", "unknown architecture 'resnet-9000'"),
    ("format_version", 99, "unsupported format version 99"),
])
def test_bad_sidecar_fields_are_refused(tmp_path, field, value, message):
    _, stem, _ = _save(tmp_path)
    sidecar = Path(str(stem) + ".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), field: value}))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(stem)


def test_missing_files_are_refused(tmp_path):
    _, stem, path = _save(tmp_path)
    Path(str(stem) + ".json").unlink()
    with pytest.raises(FileNotFoundError, match="sidecar"):
        load_checkpoint(stem)
    _, stem, path = _save(tmp_path)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="weights"):
        load_checkpoint(stem)


def test_save_rejects_unknown_architecture_and_unserialisable_recipe(tmp_path):
    clf = make_classifier("small-cnn", "mnist")
    with pytest.raises(ValueError, match="architecture"):
        save_checkpoint(tmp_path / "m", clf, architecture="nope", arch_kwargs={}, dataset="mnist",
                        recipe={}, metrics={})
    with pytest.raises(TypeError, match="recipe"):
        save_checkpoint(tmp_path / "m", clf, architecture="small-cnn", arch_kwargs={}, dataset="mnist",
                        recipe={"f": object()}, metrics={})
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- trainer

def _train(seed: int, **kw):
    clf = tiny_classifier()
    history = train_classifier(clf, separable(), epochs=3, batch_size=32, lr=0.1, seed=seed,
                               progress=False, **kw)
    return clf, history


def test_trainer_lowers_the_loss_and_learns():
    data = separable()
    clf = tiny_classifier()
    before = evaluate_accuracy(clf, data)
    records = []
    history = train_classifier(clf, data, epochs=5, batch_size=32, lr=0.1, seed=0, progress=False,
                               log=records.append)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["steps"] == 5 * 8 and history["samples"] == 5 * 256 and len(records) == 5
    assert evaluate_accuracy(clf, data) > max(0.9, before)
    assert not clf.training


def test_trainer_is_reproducible():
    a, _ = _train(seed=0)
    b, _ = _train(seed=0)
    c, _ = _train(seed=1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("optimizer,schedule", [("adam", "step"), ("sgd", "constant")])
def test_trainer_options_and_max_steps(optimizer, schedule):
    _, history = _train(seed=0, optimizer=optimizer, schedule=schedule, max_steps=10)
    assert history["steps"] == 10 and len(history["loss"]) == 2  # 8 steps + 2 steps


def test_trainer_drops_a_trailing_single_sample_batch():
    clf = make_classifier("cifar-cnn", "cifar10")  # BatchNorm: a batch of one would fail
    data = TinySet(torch.rand(5, 3, 32, 32), torch.randint(0, 10, (5,)))
    history = train_classifier(clf, data, batch_size=2, progress=False)
    assert history["steps"] == 2 and history["samples"] == 4


@pytest.mark.parametrize("kwargs,name", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"lr": 0.0}, "lr"), ({"lr": float("nan")}, "lr"), ({"momentum": 1.0}, "momentum"),
    ({"weight_decay": -1.0}, "weight_decay"), ({"schedule": "linear"}, "schedule"),
    ({"seed": -1}, "seed"), ({"max_steps": 0}, "max_steps"), ({"epochs": 1.5}, "epochs"),
    ({"log": 3}, "log"), ({"device": "warp-drive"}, "device"),
])
def test_trainer_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        train_classifier(tiny_classifier(), separable(), progress=False, **kwargs)


def test_trainer_rejects_bad_data():
    with pytest.raises(ValueError, match="^train_set:"):
        train_classifier(tiny_classifier(), [1, 2, 3], progress=False)
    with pytest.raises(ValueError, match="^train_set: needs at least 2"):
        train_classifier(tiny_classifier(), separable(n=1), progress=False)


def test_evaluate_accuracy_restores_mode():
    clf = tiny_classifier().train()
    acc = evaluate_accuracy(clf, separable(), batch_size=100)
    assert 0.0 <= acc <= 1.0 and clf.training
    with pytest.raises(ValueError, match="^batch_size:"):
        evaluate_accuracy(clf, separable(), batch_size=0)


# ----------------------------------------------------------------------------- CLI

def test_cli_train_end_to_end_with_a_stand_in(tmp_path, monkeypatch):
    calls = []

    def fake_load(name, split, root=None, download=True, mirror=None):
        calls.append((name, split, mirror))
        n = 64 if split == "train" else 40
        g = torch.Generator().manual_seed(len(calls))
        return TinySet(torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))

    monkeypatch.setattr(parry.data, "load", fake_load, raising=False)
    out = tmp_path / "ckpt"
    result = CliRunner().invoke(train, [
        "--arch", "small-cnn", "--dataset", "mnist", "--epochs", "2", "--batch-size", "16",
        "--limit", "32", "--seed", "3", "--device", "cpu", "--mirror", "file:///nowhere",
        "--arch-option", "drop=0.25", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert calls == [("mnist", "train", "file:///nowhere"), ("mnist", "test", "file:///nowhere")]
    assert "clean test accuracy" in result.output and "on all 40 test images" in result.output
    clf, meta = load_checkpoint(out)
    assert meta["recipe"]["seed"] == 3 and meta["recipe"]["limit"] == 32 and meta["recipe"]["epochs"] == 2
    assert meta["metrics"]["train_points"] == 32 and meta["metrics"]["steps"] == 4
    assert meta["metrics"]["test_points"] == 40 and 0.0 <= meta["metrics"]["test_accuracy"] <= 1.0
    assert meta["arch_kwargs"] == {"drop": 0.25} == meta["recipe"]["arch_kwargs"]
    assert [m.p for m in clf.modules() if isinstance(m, nn.Dropout)] == [0.25]  # rebuilt with the option


def test_cli_train_help_documents_every_option():
    text = CliRunner().invoke(train, ["--help"]).output
    for option in ("--arch", "--dataset", "--epochs", "--batch-size", "--optimizer", "--lr", "--schedule",
                   "--seed", "--limit", "--device", "--data-root", "--mirror", "--out", "--no-progress"):
        assert option in text
    assert all(p.help for p in train.params if p.name != "help")


def test_cli_train_rejects_bad_options():
    result = CliRunner().invoke(train, ["--arch", "vgg", "--no-progress"])
    assert result.exit_code == 2 and "--arch" in result.output


@pytest.mark.parametrize("options, word", [
    (["activation=silu", "activation=relu"], "given twice"), (["silu"], "KEY=VALUE"), (["1x=2"], "KEY=VALUE"),
    (["depth=2"], "rejects"), (["activation=tanh"], "activation"), (["width=0"], "width: expected a number")])
def test_cli_train_rejects_bad_arch_options(options, word):
    args = ["--arch", "madry-mnist", "--no-progress"] + [a for o in options for a in ("--arch-option", o)]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 2 and word in result.output, result.output


def test_cli_train_refuses_arch_options_with_a_recipe(tmp_path):
    result = CliRunner().invoke(train, ["--recipe", "mnist-standard", "--arch-option", "drop=0.1",
                                        "--out", str(tmp_path / "x"), "--no-progress"])
    assert result.exit_code == 2 and "--arch-option" in result.output, result.output


def test_cli_train_rejects_an_architecture_that_does_not_fit_the_dataset():
    result = CliRunner().invoke(train, ["--arch", "small-cnn", "--dataset", "cifar10", "--no-progress"])
    assert result.exit_code == 2 and "does not accept inputs" in result.output


def _real_mnist_run(tmp_path, data_root, mirror_url, extra=()):
    out = tmp_path / "mnist-madry"
    result = CliRunner().invoke(train, [
        "--arch", "madry-mnist", "--dataset", "mnist", "--epochs", "1", "--limit", "512",
        "--batch-size", "32", "--optimizer", "adam", "--lr", "0.001", "--schedule", "constant",
        "--device", "cpu", "--data-root", str(data_root), "--out", str(out), "--no-progress",
        *(["--mirror", mirror_url] if mirror_url else []), *extra])
    assert result.exit_code == 0, result.output
    _, meta = load_checkpoint(out)
    assert meta["metrics"]["train_points"] == 512 and meta["metrics"]["steps"] == 16
    assert meta["metrics"]["data"]["name"] == "mnist"
    return meta


def test_cli_train_on_real_mnist(tmp_path, data_root, mirror_url, monkeypatch):
    """Real MNIST through the mirror; the test split is cut to 1,000 spread points for speed."""
    if mirror_url is None:
        pytest.skip("the shared data copy is not available")
    real_load = parry.data.load

    def load(name, split, **kw):
        dataset = real_load(name, split, **kw)
        return dataset.spread(1000) if split == "test" else dataset

    monkeypatch.setattr(parry.data, "load", load)
    meta = _real_mnist_run(tmp_path, data_root, mirror_url)
    assert meta["metrics"]["test_points"] == 1000
    assert meta["metrics"]["test_accuracy"] > 0.4  # 16 Adam steps on 512 images: far above chance


@pytest.mark.slow
def test_cli_train_on_real_mnist_full_test_split(tmp_path, data_root, mirror_url):
    meta = _real_mnist_run(tmp_path, data_root, mirror_url)
    assert meta["metrics"]["test_points"] == 10_000 and meta["metrics"]["test_accuracy"] > 0.4
