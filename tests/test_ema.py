"""The weights' exponential moving average: its arithmetic, the Trainer's use of it, resume."""

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from parry.attacks import PGD
from parry.defenses.training import PGDAT, OptimizerSpec, Trainer
from parry.defenses.training.ema import WeightAverage
from parry.defenses.training.heldout import heldout_accuracy
from parry.defenses.training.resume import load_resume_state
from parry.zoo import load_checkpoint, make_classifier
from synthetic import assert_same_weights, interrupt_at, patches


def test_average_follows_the_warmed_up_decay_exactly():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model, 0.9)
    expected = torch.zeros(1, 2)
    for t in range(1, 30):
        with torch.no_grad():
            model.weight.fill_(float(t))
        average.update(model)
        decay = min(0.9, (1 + t) / (10 + t))
        expected = decay * expected + (1 - decay) * t
        assert torch.allclose(average.average["weight"], expected, atol=1e-5)
    live = model.weight.detach().clone()
    with average.swapped_into(model):
        assert torch.allclose(model.weight, expected, atol=1e-5)
    assert torch.equal(model.weight, live)  # its own weights are back


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, True, "0.99"])
def test_bad_decay_is_refused(decay):
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(nn.Linear(2, 1), decay)


def trainer(model, out_dir, callback=None):
    return Trainer(model, PGDAT(0.1, steps=2), optimizer=OptimizerSpec("sgd", lr=0.05), epochs=2, batch_size=16,
                   seed=3, out_dir=out_dir, architecture="lenet", dataset="mnist", save_every=1, progress=False,
                   callback=callback, ema_decay=0.9, eval_set=patches(20, 5))


def lenet(seed=0):
    torch.manual_seed(seed)
    return make_classifier("lenet", "mnist")


def test_trainer_evaluates_checkpoints_and_returns_the_average(tmp_path):
    model = lenet()
    history = trainer(model, tmp_path).fit(patches(40, 2))
    last, meta = load_checkpoint(tmp_path / "last")
    assert meta["recipe"]["ema_decay"] == 0.9
    for a, b in zip(model.state_dict().values(), last.state_dict().values()):
        assert torch.equal(a, b)  # the model ends holding the average, which "last" keeps
    live = {k[6:]: v for k, v in load_file(tmp_path / "resume.safetensors").items() if k.startswith("model/")}
    assert any(not torch.equal(live[k], v) for k, v in model.state_dict().items())  # not the live weights
    # the held-out figures of the log are those of the average: re-evaluating "last" gives them again
    again = heldout_accuracy(last, patches(20, 5), PGD(0.1, steps=10, seed=3), 500)
    assert again == {k: history["epochs"][-1][k] for k in again}


def test_interrupted_and_resumed_run_with_an_average_equals_uninterrupted(tmp_path):
    data = patches(40, 2)
    reference = lenet()
    trainer(reference, tmp_path / "full").fit(data)

    with pytest.raises(KeyboardInterrupt):
        trainer(lenet(), tmp_path / "cut", interrupt_at(4)).fit(data)
    meta, _, average = load_resume_state(tmp_path / "cut", model=lenet(), optimizer=torch.optim.SGD(
        lenet().parameters(), lr=0.1), generator=torch.Generator())
    assert average is not None and meta["average_updates"] == 4
    resumed = lenet(seed=7)
    trainer(resumed, tmp_path / "cut").fit(data, resume=True)
    assert_same_weights(reference, resumed)


def test_trainer_and_recipe_refuse_a_bad_decay():
    from parry.defenses.training.recipes import get_recipe

    with pytest.raises(ValueError, match="ema_decay"):
        Trainer(lenet(), PGDAT(0.1), epochs=1, progress=False, ema_decay=1.5)
    with pytest.raises(ValueError, match="ema_decay"):
        get_recipe("mnist-pgd-at-ema", ema_decay=0.0)
