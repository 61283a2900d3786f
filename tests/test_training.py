"""Robust training (parry.defenses.training): objectives, Trainer, resume, checkpoints, guard.

Everything runs on tiny synthetic 28x28 problems (a bright patch whose position is the
class) with a few optimiser steps, on the CPU.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from parry.attacks import APGD, PGD
from parry.data.dataset import ArrayDataset
from parry.defenses.training import (FGSMRS, MART, PGDAT, TRADES, MixedPGDAT, OptimizerSpec, Standard, Trainer,
                                     heldout_accuracy, lr_factor)
from parry.zoo import load_checkpoint, make_classifier

from synthetic import patches


@pytest.fixture(scope="module")
def train_set() -> ArrayDataset:
    return patches(96, 0)


@pytest.fixture(scope="module")
def eval_set() -> ArrayDataset:
    return patches(40, 1)


def lenet(seed: int = 0):
    torch.manual_seed(seed)
    return make_classifier("lenet", "mnist")


OBJECTIVES = {
    "standard": lambda: Standard(),
    "pgd-at": lambda: PGDAT(0.1, steps=3),
    "mixed-at": lambda: MixedPGDAT(0.1, steps=3, clean_weight=0.25),
    "fgsm-rs": lambda: FGSMRS(0.1),
    "trades": lambda: TRADES(0.1, steps=3, beta=1.0),
    "mart": lambda: MART(0.1, steps=3, beta=1.0),
}


def objective_loss(objective, model, x, y) -> float:
    return float(objective.loss(model, x, y, generator=torch.Generator().manual_seed(123))[0].detach())


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_objective_lowers_its_training_loss(name, train_set):
    objective = OBJECTIVES[name]()
    model = lenet().train()
    x, y = train_set.subset(range(64)).tensors()
    before = objective_loss(objective, model, x, y)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(15):
        loss, stats = objective.loss(model, x, y, generator=g)
        assert loss.requires_grad and all(not v.requires_grad for v in stats.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = objective_loss(objective, model, x, y)
    assert after < 0.8 * before, (name, before, after)


def test_trades_inner_step_raises_the_kl_term(train_set):
    model = lenet().eval()
    x, _ = train_set.subset(range(32)).tensors()
    objective = TRADES(0.2, steps=5)
    g = torch.Generator().manual_seed(0)
    start = x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    x_adv = objective.craft(model, x, generator=g)
    assert float(objective.kl(model, x, x_adv)) > 10 * float(objective.kl(model, x, start.clamp(0, 1)))
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("name", ["pgd-at", "fgsm-rs", "trades", "mart"])
def test_crafting_runs_in_eval_mode_without_parameter_gradients(name, train_set):
    """Adversarial examples come from the eval-mode model, parameters get no gradient from the
    crafting, and the training loss is computed in train mode."""
    objective = OBJECTIVES[name]()
    model = lenet().train()
    modes: list[bool] = []
    model.model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    x, y = train_set.subset(range(16)).tensors()
    x_adv = objective.craft(model, x, y, torch.Generator().manual_seed(0))
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert model.training and modes and not any(modes)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    modes.clear()
    loss, _ = objective.loss(model, x, y, generator=torch.Generator().manual_seed(0))
    assert modes[-1] is True
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_objective_seeded_by_generator(train_set):
    model = lenet().train()
    x, y = train_set.subset(range(16)).tensors()
    for objective in (PGDAT(0.1, steps=2), TRADES(0.1, steps=2), MART(0.1, steps=2), FGSMRS(0.1)):
        a = objective_loss(objective, model, x, y)
        assert a == objective_loss(objective, model, x, y)


def test_params_describe_the_objective():
    assert TRADES(0.3, steps=40, alpha=0.01, beta=1.0).params() == {
        "name": "trades", "eps": 0.3, "norm": "linf", "steps": 40, "alpha": 0.01, "beta": 1.0}
    assert FGSMRS(0.3).step_size == pytest.approx(0.375)
    assert PGDAT(0.3, steps=10).step_size == pytest.approx(0.075)
    json.dumps(MART(8 / 255).params())


def test_mixed_at_weighs_the_clean_and_the_adversarial_cross_entropy(train_set):
    """(1 - w) CE(f(x'), y) + w CE(f(x), y) on PGD-AT's examples, which stay in the eps-ball."""
    model = lenet().train()
    x, y = train_set.subset(range(16)).tensors()
    mixed = MixedPGDAT(0.1, steps=3, clean_weight=0.25)
    x_adv = mixed.craft(model, x, y, torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(x_adv, x)
    with torch.no_grad():
        loss, stats = mixed.loss_on(model, x, y, x_adv)
        adversarial, clean = F.cross_entropy(model(x_adv), y), F.cross_entropy(model(x), y)
    assert float(clean) < float(adversarial)
    assert float(loss) == pytest.approx(float(0.75 * adversarial + 0.25 * clean), rel=1e-6)
    assert float(stats["clean_loss"]) == pytest.approx(float(clean), rel=1e-6)
    assert mixed.params() == {"name": "mixed-at", "eps": 0.1, "norm": "linf", "steps": 3, "alpha": None,
                              "random_start": True, "clean_weight": 0.25}


# --------------------------------------------------------------------------------- Trainer
def small_cnn(seed: int = 0):
    torch.manual_seed(seed)
    return make_classifier("small-cnn", "mnist")  # has dropout: the global RNG state matters


def resumable_trainer(model, out_dir, callback=None, save_every=1) -> Trainer:
    return Trainer(model, TRADES(0.1, steps=2), optimizer=OptimizerSpec("sgd", lr=0.05), epochs=2, batch_size=16,
                   seed=3, out_dir=out_dir, architecture="small-cnn", dataset="mnist", save_every=save_every,
                   progress=False, callback=callback)


@pytest.mark.parametrize("save_every, interrupt_at", [(1, 4), (None, 5)])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, save_every, interrupt_at):
    """Mid-epoch (resume state of every step) and at the end of an epoch (default: the
    interrupted epoch's steps are redone)."""
    data = patches(40, 2)  # 3 steps per epoch (16, 16, 8)
    reference = small_cnn()
    full = resumable_trainer(reference, tmp_path / "full", save_every=save_every).fit(data)

    def interrupt(step: int) -> None:
        if step == interrupt_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resumable_trainer(small_cnn(), tmp_path / "cut", interrupt, save_every).fit(data)
    assert sorted(p.name for p in (tmp_path / "cut").iterdir() if p.name.startswith("resume")) == [
        "resume.json", "resume.safetensors"]  # no pickle anywhere
    torch.manual_seed(999)  # the resumed process's global RNG is restored from the resume state
    resumed_model = small_cnn(seed=7)  # its weights too
    resumed = resumable_trainer(resumed_model, tmp_path / "cut", save_every=save_every).fit(data, resume=True)
    for (name, a), b in zip(reference.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed["steps"] == full["steps"] == 6
    assert [r["loss"] for r in resumed["epochs"]] == [r["loss"] for r in full["epochs"]]
    again = resumable_trainer(resumed_model, tmp_path / "cut", save_every=save_every).fit(data, resume=True)
    assert again["steps"] == 6 and again["epochs"] == resumed["epochs"]  # a finished run stays finished


def test_resume_refuses_another_recipe(tmp_path):
    data = patches(20, 2)
    trainer = Trainer(lenet(), Standard(), epochs=1, batch_size=16, out_dir=tmp_path, architecture="lenet",
                      dataset="mnist", progress=False)
    trainer.fit(data)
    model = lenet(seed=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    other = Trainer(model, Standard(), epochs=2, batch_size=16, out_dir=tmp_path, architecture="lenet",
                    dataset="mnist", progress=False)
    with pytest.raises(ValueError, match="resume"):
        other.fit(data, resume=True)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # left untouched


def test_best_and_last_checkpoints_carry_the_recipe(tmp_path, train_set, eval_set):
    records = []
    trainer = Trainer(lenet(), PGDAT(0.1, steps=2), optimizer=OptimizerSpec("adam", lr=2e-3, weight_decay=0.0),
                      epochs=2, batch_size=32, eval_set=eval_set, out_dir=tmp_path, architecture="lenet",
                      dataset="mnist", progress=False, log=records.append)
    history = trainer.fit(train_set)
    assert len(history["epochs"]) == 2 and records == history["epochs"]
    for record in records:
        assert {"loss", "adv_accuracy", "clean_accuracy", "robust_accuracy", "points", "lr"} <= set(record)
        assert record["points"] == len(eval_set)
    expected = json.loads(json.dumps(trainer.recipe(train_set)))
    assert expected["eval_attack"]["name"] == "PGD" and expected["eval_attack"]["steps"] == 10
    for name in ("best", "last"):
        clf, meta = load_checkpoint(tmp_path / name)
        assert meta["recipe"] == expected
        assert meta["recipe"]["objective"]["name"] == "pgd-at"
    _, best = load_checkpoint(tmp_path / "best")
    assert best["metrics"]["epoch"] == history["best_epoch"]
    assert best["metrics"]["robust_accuracy"] == history["best_score"] == max(r["robust_accuracy"] for r in records)
    _, last = load_checkpoint(tmp_path / "last")
    assert last["metrics"]["epoch"] == 2
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    heldout = heldout_accuracy(load_checkpoint(tmp_path / "last")[0], eval_set, trainer.eval_attack)
    assert heldout["robust_accuracy"] == pytest.approx(last["metrics"]["robust_accuracy"])


def test_best_checkpoint_keeps_the_later_of_tied_epochs(tmp_path, train_set):
    robust = iter([0.40, 0.60, 0.60, 0.55])
    trainer = Trainer(lenet(), PGDAT(0.1, steps=1), optimizer=OptimizerSpec("sgd", lr=0.01), epochs=4,
                      batch_size=32, evaluator=lambda model: {"clean_accuracy": 0.9, "robust_accuracy": next(robust)},
                      out_dir=tmp_path, architecture="lenet", dataset="mnist", progress=False)
    history = trainer.fit(train_set)
    assert history["best_epoch"] == 3 and history["best_score"] == 0.60
    assert load_checkpoint(tmp_path / "best")[1]["metrics"]["epoch"] == 3


def test_guard_rolls_back_to_the_best_weights_on_a_collapse(tmp_path, train_set):
    robust = iter([0.40, 0.55, 0.05, 0.60])
    snapshots = []

    def fake_evaluation(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"clean_accuracy": 0.9, "robust_accuracy": next(robust)}

    model = lenet()
    trainer = Trainer(model, FGSMRS(0.1), optimizer=OptimizerSpec("sgd", lr=0.01), epochs=4, batch_size=32,
                      evaluator=fake_evaluation, out_dir=tmp_path, architecture="lenet", dataset="mnist",
                      progress=False)
    assert trainer.guard_drop == 0.2
    history = trainer.fit(train_set)
    assert len(history["epochs"]) == 3 and "catastrophic overfitting" in history["stopped"]
    assert history["epochs"][-1]["rolled_back_to_epoch"] == 2 and history["best_epoch"] == 2
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][name]), name
        assert not torch.equal(value, snapshots[2][name]), name
    clf, last = load_checkpoint(tmp_path / "last")
    assert last["metrics"]["rolled_back_from_epoch"] == 3 and last["metrics"]["epoch"] == 2
    for name, value in clf.state_dict().items():
        assert torch.equal(value, snapshots[1][name])


def test_without_attack_the_best_checkpoint_follows_clean_accuracy(tmp_path, train_set, eval_set):
    history = Trainer(lenet(), Standard(), optimizer=OptimizerSpec("adam", lr=2e-3), epochs=2, batch_size=32,
                      eval_set=eval_set, out_dir=tmp_path, architecture="lenet", dataset="mnist",
                      progress=False).fit(train_set)
    assert all("robust_accuracy" not in r and "clean_accuracy" in r for r in history["epochs"])
    _, best = load_checkpoint(tmp_path / "best")
    assert best["metrics"]["clean_accuracy"] == history["best_score"]


def test_guard_defaults(eval_set):
    guarded = Trainer(lenet(), FGSMRS(0.1), eval_set=eval_set, progress=False)
    assert guarded.guard_drop == 0.2
    assert type(guarded.eval_attack) is APGD and guarded.eval_attack.steps == 20 and guarded.eval_attack.loss == "ce"
    multi_step = Trainer(lenet(), PGDAT(0.1), eval_set=eval_set, progress=False)
    assert multi_step.guard_drop is None
    assert type(multi_step.eval_attack) is PGD and multi_step.eval_attack.steps == 10
    with pytest.warns(UserWarning, match="guard"):
        assert Trainer(lenet(), FGSMRS(0.1), progress=False).guard_drop is None
    assert Trainer(lenet(), Standard(), eval_set=eval_set, progress=False).eval_attack is None


def test_minutes_budget_stops_and_follows_the_clock(train_set):
    history = Trainer(lenet(), Standard(), epochs=None, minutes=0.002, batch_size=16, progress=False,
                      schedule="one-cycle").fit(train_set)
    assert history["steps"] >= 1 and history["wall_time_s"] < 30


def test_lr_schedules():
    assert lr_factor("cosine", 0.0) == 1.0 and lr_factor("cosine", 1.0) == pytest.approx(0.0)
    assert lr_factor("step", 0.6) == pytest.approx(0.1) and lr_factor("step", 0.8) == pytest.approx(0.01)
    assert lr_factor("one-cycle", 0.4) == 1.0 and lr_factor("one-cycle", 0.0) == 0.0
    assert lr_factor("constant", 0.7) == 1.0


def test_adamw_decays_the_weights_apart_from_the_adam_update():
    """With a zero loss gradient AdamW shrinks each weight by exactly lr * weight_decay per step
    (Loshchilov & Hutter 2019), while Adam's coupled decay is rescaled into a step of about lr."""
    weights = {}
    for name in ("adamw", "adam"):
        w = torch.nn.Parameter(torch.full((3,), 2.0))
        opt = OptimizerSpec(name, lr=0.1, weight_decay=0.01).build([w])
        for _ in range(3):
            opt.zero_grad()
            (w * 0.0).sum().backward()
            opt.step()
        weights[name] = w.detach()
    assert torch.allclose(weights["adamw"], torch.full((3,), 2.0 * (1 - 0.1 * 0.01) ** 3))
    assert torch.allclose(weights["adam"], torch.full((3,), 1.7), atol=0.01)


@pytest.mark.parametrize("make, match", [
    (lambda: PGDAT(0.0), "eps"),
    (lambda: PGDAT(-0.1), "eps"),
    (lambda: PGDAT(0.1, norm="l1"), "norm"),
    (lambda: PGDAT(0.1, steps=0), "steps"),
    (lambda: PGDAT(0.1, alpha=0.0), "alpha"),
    (lambda: PGDAT(0.1, random_start="yes"), "random_start"),
    *((lambda w=w: MixedPGDAT(0.1, clean_weight=w), "clean_weight") for w in (0, 1.0, -0.1, True, "0.1", math.nan)),
    (lambda: TRADES(0.1, beta=-1.0), "beta"),
    (lambda: MART(0.1, beta=float("nan")), "beta"),
    (lambda: OptimizerSpec("rmsprop"), "optimizer"),
    (lambda: OptimizerSpec("adamw", weight_decay=-0.01), "weight_decay"),
    (lambda: OptimizerSpec(lr=0.0), "lr"),
    (lambda: OptimizerSpec(momentum=1.0), "momentum"),
    (lambda: Trainer(torch.nn.Linear(2, 2), Standard()), "model"),
    (lambda: Trainer(lenet(), F.cross_entropy), "objective"),
    (lambda: Trainer(lenet(), Standard(), epochs=0), "epochs"),
    (lambda: Trainer(lenet(), Standard(), epochs=None), "epochs"),
    (lambda: Trainer(lenet(), Standard(), minutes=-1.0), "minutes"),
    (lambda: Trainer(lenet(), Standard(), batch_size=0), "batch_size"),
    (lambda: Trainer(lenet(), Standard(), seed=-1), "seed"),
    (lambda: Trainer(lenet(), Standard(), schedule="linear"), "schedule"),
    (lambda: Trainer(lenet(), Standard(), eval_attack=PGD(0.1)), "eval_attack"),
    (lambda: Trainer(lenet(), Standard(), guard_drop=0.1), "guard_drop"),
    (lambda: Trainer(lenet(), Standard(), out_dir="x"), "architecture"),
    (lambda: Trainer(lenet(), Standard(), save_every=2), "save_every"),
    (lambda: Trainer(lenet(), Standard(), optimizer="adam"), "optimizer"),
])
def test_bad_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_fit_arguments_are_refused(train_set):
    trainer = Trainer(lenet(), Standard(), progress=False)
    with pytest.raises(ValueError, match="train_set"):
        trainer.fit(torch.zeros(4, 1, 28, 28))
    with pytest.raises(ValueError, match="resume"):
        trainer.fit(train_set, resume=True)


class RecordingPGDAT(PGDAT):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._seen: list[float] = []

    def loss(self, model, x, y, *, generator=None):
        self._seen.append(self.eps)
        return super().loss(model, x, y, generator=generator)


def test_eps_warm_up_ramps_linearly_then_holds(train_set):
    objective = RecordingPGDAT(0.2, steps=1)
    trainer = Trainer(lenet(), objective, epochs=2, batch_size=32, eps_ramp_epochs=1.0, progress=False)
    trainer.fit(train_set)  # 3 steps per epoch
    assert objective._seen == pytest.approx([0.0, 0.2 / 3, 0.4 / 3, 0.2, 0.2, 0.2])
    assert objective.eps == 0.2
    with pytest.raises(ValueError, match="eps_ramp_epochs"):
        Trainer(lenet(), Standard(), eps_ramp_epochs=1.0)
    with pytest.raises(ValueError, match="eps_ramp_epochs"):
        Trainer(lenet(), objective, eps_ramp_epochs=-1.0)


@pytest.mark.parametrize("fast", [True, False])
def test_a_run_without_the_fast_path_also_crafts_without_the_attack_fast_path(train_set, fast):
    model = lenet()
    seen = []
    Trainer(model, PGDAT(0.1, steps=1), epochs=1, batch_size=48, progress=False, fast=fast,
            callback=lambda step: seen.append(model.fast)).fit(train_set)
    assert seen == [fast, fast] and model.fast  # the Classifier's own setting is back afterwards


def test_the_guards_heldout_attack_sees_the_masking_of_an_fgsm_trained_model(robust_mnist_cnn, mnist_test):
    """Single-step training can mask gradients partly: fixed-step PGD then overstates robust
    accuracy, and the guard and the choice of the best epoch would follow it. The held-out
    attack the Trainer picks for FGSM-RS (APGD-CE-20) must see through it. Measured on these 500
    points: PGD-10 63.2 %, APGD-CE-20 46.6 %, APGD-CE-100 36.8 %."""
    points = mnist_test.spread(500)
    trainer = Trainer(robust_mnist_cnn, FGSMRS(0.3), eval_set=points, progress=False)
    guard = heldout_accuracy(robust_mnist_cnn, points, trainer.eval_attack)["robust_accuracy"]
    pgd = heldout_accuracy(robust_mnist_cnn, points, PGD(0.3, steps=10, seed=0))["robust_accuracy"]
    assert guard < pgd - 0.1, (guard, pgd)
