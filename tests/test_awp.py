"""Adversarial weight perturbation: the move it makes, its agreement with the paper's proxy
formulation, the Trainer's use of it (training, resume, records) and its validation."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from parry.classifier import Classifier
from parry.defenses.training import (HAT, MART, PGDAT, TRADES, GradientRegularization, KnowledgeDistillationAT,
                                     OptimizerSpec, Trainer)
from parry.defenses.training.awp import WeightPerturbation
from parry.defenses.training.recipes import RECIPES, build, get_recipe
from parry.zoo import load_checkpoint, make_classifier
from synthetic import assert_same_weights, interrupt_at, patches


def lenet(seed=0):
    torch.manual_seed(seed)
    return make_classifier("lenet", "mnist")


def batch(n=32, seed=1):
    return patches(n, seed).tensors()


def test_each_weight_tensor_moves_by_gamma_times_its_norm_and_restore_undoes_it():
    model = lenet().train()
    x, y = batch()
    before = {name: p.detach().clone() for name, p in model.model.named_parameters()}
    moves = WeightPerturbation(0.01).perturb(model, lambda: F.cross_entropy(model(x), y))
    moved = {id(w) for w, _ in moves}
    for name, p in model.model.named_parameters():
        if p.ndim > 1:
            assert id(p) in moved, name
            assert torch.isclose((p - before[name]).norm(), 0.01 * before[name].norm(), rtol=1e-4), name
        else:  # biases stay where they were
            assert id(p) not in moved and torch.equal(p, before[name]), name
    WeightPerturbation.restore(moves)
    for name, p in model.model.named_parameters():
        assert torch.allclose(p, before[name], atol=1e-6), name


def test_the_move_raises_the_loss_it_was_computed_on():
    model = lenet().train()
    x, y = batch()
    x_adv = PGDAT(0.1, steps=3).craft(model, x, y, torch.Generator().manual_seed(0))
    with torch.no_grad():
        start = F.cross_entropy(model(x_adv), y)
    WeightPerturbation(5e-3).perturb(model, lambda: F.cross_entropy(model(x_adv), y))
    with torch.no_grad():
        assert F.cross_entropy(model(x_adv), y) > start


def test_agrees_with_the_papers_proxy_model_formulation():
    """Wu et al.'s code: one SGD step (lr 0.01) of a copy of the model on the negated loss, the
    difference of each weight tensor rescaled to ||w|| / ||diff||, times gamma."""
    model = lenet().train()
    x, y = batch()
    proxy = copy.deepcopy(model.model)
    optimiser = torch.optim.SGD(proxy.parameters(), lr=0.01)
    (-F.cross_entropy(proxy(x), y)).backward()
    optimiser.step()
    expected = {}
    for (name, old), new in zip(model.model.named_parameters(), proxy.parameters()):
        if old.ndim > 1:
            diff = new.detach() - old.detach()
            expected[name] = old.detach() + 5e-3 * old.detach().norm() / diff.norm() * diff
    WeightPerturbation(5e-3).perturb(model, lambda: F.cross_entropy(model(x), y))
    for name, p in model.model.named_parameters():
        if name in expected:
            assert torch.allclose(p, expected[name], rtol=1e-5, atol=1e-7), name


def test_batchnorm_statistics_are_left_as_they_were():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    model = Classifier(net, num_classes=10, input_shape=(1, 28, 28)).train()
    x, y = batch()
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
    WeightPerturbation(5e-3).perturb(model, lambda: F.cross_entropy(model(x), y))
    for k, v in stats.items():
        assert torch.equal(net.state_dict()[k], v), k


def trainer(model, out_dir=None, objective=None, awp=WeightPerturbation(0.01), callback=None, epochs=2,
            optimizer=OptimizerSpec("sgd", lr=0.05)):
    return Trainer(model, objective or PGDAT(0.1, steps=2), optimizer=optimizer, epochs=epochs,
                   batch_size=16, seed=3, out_dir=out_dir, architecture="lenet", dataset="mnist",
                   save_every=None if out_dir is None else 1, progress=False, callback=callback, awp=awp)


@pytest.mark.parametrize("objective", [PGDAT(0.1, steps=2), TRADES(0.1, steps=2, beta=1.0), MART(0.1, steps=2)],
                         ids=["pgd-at", "trades", "mart"])
def test_training_with_awp_lowers_the_loss_and_differs_from_training_without(objective):
    data = patches(96, 2)
    with_awp, without = lenet(), lenet()
    adam = OptimizerSpec("adam", lr=3e-3, weight_decay=0.0)
    history = trainer(with_awp, objective=objective, epochs=4, optimizer=adam).fit(data)
    trainer(without, objective=objective, awp=None, epochs=4, optimizer=adam).fit(data)
    losses = [epoch["loss"] for epoch in history["epochs"]]
    assert losses[-1] < 0.9 * losses[0], losses
    assert any(not torch.equal(a, b) for a, b in zip(with_awp.state_dict().values(), without.state_dict().values()))


def test_hat_under_awp_runs_its_helper_once_per_step():
    helper, calls = lenet(seed=4), []
    helper.model.register_forward_hook(lambda *_: calls.append(1))
    history = trainer(lenet(), objective=HAT(helper, 0.1, steps=2)).fit(patches(40, 2))
    assert history["steps"] == 6 and len(calls) == 6  # two epochs of three batches; AWP's ascent reuses them


def test_kd_at_under_awp_runs_each_teacher_once_per_step():
    teachers, calls = [lenet(seed=4), lenet(seed=5)], []
    for i, teacher in enumerate(teachers):
        teacher.model.register_forward_hook(lambda *_, i=i: calls.append(i))
    history = trainer(lenet(), objective=KnowledgeDistillationAT(teachers, 0.1, steps=2)).fit(patches(40, 2))
    assert history["steps"] == 6 and calls == [0, 1] * 6  # AWP's ascent reuses the teachers' logits


def test_before_its_start_epoch_awp_changes_nothing():
    data = patches(40, 2)
    late, without = lenet(), lenet()
    trainer(late, awp=WeightPerturbation(0.01, start_epoch=2)).fit(data)  # epochs 0 and 1 only
    trainer(without, awp=None).fit(data)
    assert_same_weights(late, without)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one_and_records_awp(tmp_path):
    data = patches(40, 2)
    reference = lenet()
    trainer(reference, tmp_path / "full").fit(data)
    assert load_checkpoint(tmp_path / "full" / "last")[1]["recipe"]["awp"] == {"gamma": 0.01, "start_epoch": 0}
    with pytest.raises(KeyboardInterrupt):
        trainer(lenet(), tmp_path / "cut", callback=interrupt_at(3)).fit(data)
    resumed = lenet(seed=7)
    trainer(resumed, tmp_path / "cut").fit(data, resume=True)
    assert_same_weights(reference, resumed)


@pytest.mark.parametrize("kwargs", [{"gamma": 0.0}, {"gamma": -1e-3}, {"gamma": 2.0}, {"gamma": float("nan")},
                                    {"gamma": True}, {"start_epoch": -1}, {"start_epoch": 1.5}])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError, match="awp"):
        WeightPerturbation(**kwargs)


def test_the_trainer_refuses_awp_of_another_type_or_with_an_objective_that_does_not_craft():
    with pytest.raises(ValueError, match="awp"):
        Trainer(lenet(), PGDAT(0.1), epochs=1, progress=False, awp={"gamma": 5e-3})
    with pytest.raises(ValueError, match="crafts its examples"):
        Trainer(lenet(), GradientRegularization(1.0), epochs=1, progress=False, awp=WeightPerturbation())


def test_recipes_build_their_awp_and_refuse_bad_ones():
    recipe = get_recipe("fashion-pgd-at-ema-madry", awp={"gamma": 5e-3, "start_epoch": 2})
    assert build(recipe)[2]["awp"] == WeightPerturbation(5e-3, 2)
    assert recipe.params()["awp"] == {"gamma": 5e-3, "start_epoch": 2}
    assert build(RECIPES["fashion-pgd-at-ema"])[2]["awp"] is None
    assert "awp" not in RECIPES["fashion-pgd-at-ema"].params()  # earlier runs' sidecars still match
    for bad in ({"gamma": 0}, {"size": 5e-3}, 5e-3):
        with pytest.raises(ValueError, match="awp"):
            get_recipe("fashion-pgd-at-ema", awp=bad)
    with pytest.raises(ValueError, match="awp"):
        get_recipe("fashion-gradient-reg", awp={"gamma": 5e-3})
