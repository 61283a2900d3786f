"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------
# Data fixtures (parry.data): the shared data copy beside the repo, used as a file:// mirror.
# ---------------------------------------------------------------------------------------------

#: ``shared/data`` beside the repository (CI copies ``shared/`` next to its clone).
SHARED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path | None:
    """The shared data folder (``<repo>/../shared/data``), or None when it is absent."""
    return SHARED_DATA_DIR if SHARED_DATA_DIR.is_dir() else None


@pytest.fixture(scope="session")
def mirror_url(shared_data: Path | None) -> str | None:
    """The ``file://`` URL of the shared data folder, usable as a parry.data mirror, or None."""
    return shared_data.as_uri() if shared_data is not None else None


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide data directory (``root=``) for parry.data, empty at the start."""
    return tmp_path_factory.mktemp("parry-data")


def load_test_data(name: str, split: str, root: Path, mirror: str | None):
    """``parry.data.load`` from the shared mirror only (offline) when it exists, else from any source."""
    from parry.data import load

    with pytest.MonkeyPatch.context() as patch:
        if mirror is not None:
            patch.setenv("PARRY_OFFLINE", "1")   # hermetic: never reach out when the shared copy is at hand
        return load(name, split, root=root, mirror=mirror)


@pytest.fixture(scope="session")
def mnist_train(data_root: Path, mirror_url: str | None):
    """MNIST training split (60,000 images) as a parry.data.ArrayDataset."""
    return load_test_data("mnist", "train", data_root, mirror_url)


@pytest.fixture(scope="session")
def mnist_test(data_root: Path, mirror_url: str | None):
    """MNIST test split (10,000 images) as a parry.data.ArrayDataset."""
    return load_test_data("mnist", "test", data_root, mirror_url)


# ---------------------------------------------------------------------------------------------
# Model fixtures: a briefly trained, undefended MNIST CNN shared by the attack tests.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mnist_cnn(mnist_train):
    """The Madry et al. MNIST CNN after one Adam epoch on 12,000 spread training images (~97 % clean)."""
    import torch

    from parry.zoo import make_classifier, train_classifier

    torch.manual_seed(0)  # the initial weights too: the fixture must not depend on test order
    clf = make_classifier("madry-mnist", "mnist")
    train_classifier(clf, mnist_train.spread(12000), epochs=1, batch_size=128, optimizer="adam", lr=1e-3,
                     seed=0, progress=False)
    return clf


@pytest.fixture(scope="session")
def mnist_points(mnist_test):
    """500 MNIST test points spread over the test set, as float tensors (x, y)."""
    return mnist_test.spread(500).tensors()


@pytest.fixture(scope="session")
def robust_mnist_cnn(mnist_train):
    """A LeNet adversarially trained with FGSM-RS at Linf 0.3 (see tests/robust_model.py), cached on disk."""
    from robust_model import robust_lenet

    return robust_lenet(mnist_train)


@pytest.fixture(scope="session")
def pgd_mnist_cnn(mnist_train):
    """A LeNet adversarially trained with PGD-5 at Linf 0.3 (see tests/robust_model.py), cached on disk."""
    from robust_model import pgd_lenet

    return pgd_lenet(mnist_train)
