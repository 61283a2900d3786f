"""Transfer attacks and the transferability matrix."""

import pytest
import torch

from parry.attacks import PGD
from parry.attacks.blackbox.transfer import transfer_attack, transfer_matrix
from parry.zoo import make_classifier, train_classifier


@pytest.fixture(scope="module")
def second_mnist_model(mnist_train):
    clf = make_classifier("lenet", "mnist")
    train_classifier(clf, mnist_train.spread(12000), epochs=1, batch_size=128, optimizer="adam", lr=2e-3,
                     seed=1, progress=False)
    return clf


def test_transfer_matrix_shape_diagonal_and_transfer(mnist_cnn, second_mnist_model, mnist_points):
    x, y = mnist_points[0][:200], mnist_points[1][:200]
    attack = PGD(0.2, steps=20, seed=0)
    names, matrix = transfer_matrix({"madry": mnist_cnn, "lenet": second_mnist_model}, attack, x, y)
    assert names == ["madry", "lenet"] and matrix.shape == (2, 2)
    assert bool(((matrix >= 0) & (matrix <= 1)).all())
    # white box beats transfer for each target model
    assert matrix[0, 0] >= matrix[1, 0] and matrix[1, 1] >= matrix[0, 1]
    assert matrix[0, 0] > 0.8 and matrix[0, 1] > 0.05  # examples do transfer, but not perfectly


def test_ensemble_of_surrogates_transfers(mnist_cnn, second_mnist_model, mnist_points):
    x, y = mnist_points[0][:200], mnist_points[1][:200]
    attack = PGD(0.2, steps=20, seed=0)
    single = transfer_attack(attack, second_mnist_model, mnist_cnn, x, y)
    both = transfer_attack(attack, [second_mnist_model, mnist_cnn], mnist_cnn, x, y)
    assert both["success_rate"] >= single["success_rate"]
    assert bool(((both["adv"] - x).abs().amax() <= 0.2 + 1e-6))
    with pytest.raises(ValueError, match="models"):
        transfer_matrix({}, attack, x, y)
