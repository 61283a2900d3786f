"""The attack ensemble: worst case over stages, survivors only, resumable."""

import pytest
import torch

from parry.attacks import FGSM, PGD
from parry.attacks.ensemble import AttackEnsemble, Stage


def cheap_ensemble(batch_size=50):
    return AttackEnsemble([Stage("fgsm", FGSM(0.3)), Stage("pgd-10", PGD(0.3, steps=10, seed=0)),
                           Stage("pgd-margin", PGD(0.3, steps=10, loss="margin", seed=1))], batch_size=batch_size)


@pytest.fixture(scope="module")
def points(mnist_test):
    return mnist_test.spread(200).tensors()


def test_worst_case_is_at_most_each_component(robust_mnist_cnn, points):
    x, y = points
    result = cheap_ensemble()(robust_mnist_cnn, x, y)
    for stage in cheap_ensemble().stages:
        alone = stage.attack(robust_mnist_cnn, x, y).robust.float().mean()
        assert result.robust_accuracy <= float(alone) + 1e-9, stage.name
    accs = [row["accuracy"] for row in result.table()]
    assert accs == sorted(accs, reverse=True)  # clean, then non-increasing after each stage
    assert result.stages[-1]["robust"] == int(result.result.robust.sum())
    # every broken point is adversarial at a point inside the threat model
    broken = result.broken_by >= 0
    assert bool((result.result.adv_pred[broken] != y[broken]).all())
    assert bool(result.result.threat.contains(result.result.adv, x).all())


def test_interrupted_run_resumes_to_the_same_result(robust_mnist_cnn, points, tmp_path):
    x, y = points
    reference = cheap_ensemble()(robust_mnist_cnn, x, y)
    state = tmp_path / "state.safetensors"
    calls = []

    def interrupt_after(n):
        def hook(stage, batch):
            calls.append((stage, batch))
            if len(calls) == n:
                raise KeyboardInterrupt
        return hook

    for stop in (3, 7):  # interrupt twice, mid-stage
        with pytest.raises(KeyboardInterrupt):
            cheap_ensemble()(robust_mnist_cnn, x, y, state_path=state, on_batch=interrupt_after(stop))
    done_before = len(calls)
    calls.clear()
    resumed = cheap_ensemble()(robust_mnist_cnn, x, y, state_path=state, on_batch=lambda s, b: calls.append((s, b)))
    assert done_before == 7 and len(calls) == 12 - done_before  # 4 batches x 3 stages; none redone
    assert torch.equal(resumed.result.robust, reference.result.robust)
    assert torch.equal(resumed.broken_by, reference.broken_by)
    assert torch.equal(resumed.result.adv, reference.result.adv)


def test_state_of_another_run_is_refused(robust_mnist_cnn, points, tmp_path):
    x, y = points
    state = tmp_path / "state.safetensors"
    cheap_ensemble()(robust_mnist_cnn, x[:50], y[:50], state_path=state)
    with pytest.raises(ValueError, match="belongs to another run"):
        cheap_ensemble()(robust_mnist_cnn, x[:60], y[:60], state_path=state)


def test_bad_ensembles_are_refused():
    with pytest.raises(ValueError, match="stages"):
        AttackEnsemble([])
    with pytest.raises(ValueError, match="one threat model"):
        AttackEnsemble([Stage("a", FGSM(0.3)), Stage("b", PGD(0.1))])
    with pytest.raises(ValueError, match="evaluation mode"):
        AttackEnsemble([Stage("a", PGD(0.3, early_stop=False))])
    with pytest.raises(ValueError, match="unique"):
        AttackEnsemble([Stage("a", FGSM(0.3)), Stage("a", PGD(0.3))])
