"""Training recipes (parry.defenses.training.recipes) and the Trainer's fast path."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from parry.defenses.training import PGDAT, OptimizerSpec, Trainer
from parry.defenses.training.augment import RandomCrop
from parry.defenses.training.fast import FastPath, bf16_supported
from parry.defenses.training.recipes import RECIPES, RecipeTrainer, build, get_recipe, split_heldout
from parry.zoo import make_classifier

from synthetic import patches


DEFENCES = ("standard", "pgd-at", "pgd-at-ema", "trades", "mart", "fgsm-rs", "gradient-reg", "gradient-reg-lipschitz", "lipschitz",
            "distillation-teacher", "distillation", "ard", "pgd-at-lenet")


def test_catalogue_has_the_documented_recipes():
    extra = {"mnist-lipschitz-r158", "cifar10-jpeg-standard", "cifar10-jpeg-pgd-at", "cifar10-jpeg-pgd7-at",
             "fashion-pgd-at-ema-madry", "fashion-pgd-at-ema-madry-crop", "fashion-pgd-at-ema-madry-awp",
             "fashion-pgd-at-ema-madry-awp-flip", "fashion-pgd5-at-ema-madry-awp-flip",
             "fashion-pgd5-at-ema-madry15-awp-flip", "fashion-pgd5-at-ema-madry-awp2-flip",
             "fashion-kd-at-ema-madry-awp-flip", "fashion-mixed20-at-ema-madry-awp-flip",
             "fashion-pgd-at-ema-madry-awp-sgd", "fashion-pgd5-at-ema-madry-awp-sgd-flip",
             "fashion-pgd5-at-ema-madry-awp-adamw-flip", "fashion-trades5-ema-madry-awp-flip",
             "fashion-pgd-at-ema-madry-awp-silu", "fashion-hat-madry", "fashion-hat-madry-flip",
             "fashion-hat-madry-awp-sgd"}
    assert {f"{p}-{d}" for p in ("mnist", "fashion") for d in DEFENCES} | extra == set(RECIPES)
    pgd = RECIPES["mnist-pgd-at"]
    assert pgd.objective_params == {"eps": 0.3, "steps": 10} and pgd.eps_ramp_epochs > 0
    assert pgd.optimizer["name"] == "adam" and pgd.architecture == "small-cnn"
    assert RECIPES["fashion-pgd-at"].objective_params["eps"] == 0.1
    ema = {k: v for k, v in RECIPES["mnist-pgd-at-ema"].params().items() if k not in ("name", "description")}
    assert ema == {**{k: v for k, v in pgd.params().items() if k not in ("name", "description")}, "ema_decay": 0.999}
    assert RECIPES["mnist-lipschitz-r158"].objective_params["radius"] == 1.58
    for prefix in ("mnist", "fashion"):
        lenet, ard = RECIPES[f"{prefix}-pgd-at-lenet"], RECIPES[f"{prefix}-ard"]
        assert lenet.architecture == ard.architecture == "lenet" and lenet.objective_params == ard.objective_params
        assert dataclasses.replace(lenet, name=f"{prefix}-pgd-at", architecture="small-cnn",
                                   description=RECIPES[f"{prefix}-pgd-at"].description) == RECIPES[f"{prefix}-pgd-at"]
    madry = RECIPES["fashion-pgd-at-ema-madry"]
    assert madry.architecture == "madry-mnist"
    assert dataclasses.replace(madry, name="fashion-pgd-at-ema", architecture="small-cnn",
                               description=RECIPES["fashion-pgd-at-ema"].description) == RECIPES["fashion-pgd-at-ema"]
    crop = RECIPES["fashion-pgd-at-ema-madry-crop"]
    assert dataclasses.replace(crop, name=madry.name, description=madry.description, augment=None) == madry
    awp = RECIPES["fashion-pgd-at-ema-madry-awp"]
    assert dataclasses.replace(awp, name=madry.name, description=madry.description, awp=None) == madry
    assert awp.awp == {"gamma": 5e-3, "start_epoch": 2} and awp.eps_ramp_epochs == 2
    flip = RECIPES["fashion-pgd-at-ema-madry-awp-flip"]
    assert dataclasses.replace(flip, name=awp.name, description=awp.description, augment=None) == awp
    assert flip.make_augment() == RandomCrop(padding=0, flip=True)
    pgd5 = RECIPES["fashion-pgd5-at-ema-madry-awp-flip"]
    assert pgd5.objective_params == {"eps": 0.1, "steps": 5} and pgd5.make_objective().step_size == pytest.approx(0.05)
    assert dataclasses.replace(pgd5, name=flip.name, description=flip.description, epochs=flip.epochs,
                               objective_params=flip.objective_params) == flip
    wide = RECIPES["fashion-pgd5-at-ema-madry15-awp-flip"]
    assert wide.arch_kwargs == {"width": 1.5}
    assert dataclasses.replace(wide, name=pgd5.name, description=pgd5.description, arch_kwargs={}) == pgd5
    awp2 = RECIPES["fashion-pgd5-at-ema-madry-awp2-flip"]
    assert awp2.awp == {"gamma": 1e-2, "start_epoch": 2} and awp2.minutes == 30
    assert dataclasses.replace(awp2, name=pgd5.name, description=pgd5.description, awp=pgd5.awp, minutes=60.0) == pgd5
    kd = RECIPES["fashion-kd-at-ema-madry-awp-flip"]
    assert kd.teacher == (awp2.name, "fashion-standard") and kd.minutes + awp2.minutes <= 58  # fashion-standard: 2
    assert kd.objective_params == {"eps": 0.1, "steps": 5, "temperature": 2.0, "weights": (0.6, 0.1)}
    assert dataclasses.replace(kd, name=pgd5.name, description=pgd5.description, objective="pgd-at", teacher=None,
                               objective_params=pgd5.objective_params, minutes=60.0) == pgd5
    mixed = RECIPES["fashion-mixed20-at-ema-madry-awp-flip"]
    assert mixed.objective == "mixed-at" and mixed.objective_params == {**pgd5.objective_params, "clean_weight": 0.2}
    assert dataclasses.replace(mixed, name=pgd5.name, description=pgd5.description, objective="pgd-at",
                               objective_params=pgd5.objective_params) == pgd5
    sgd = RECIPES["fashion-pgd-at-ema-madry-awp-sgd"]
    assert sgd.optimizer == {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    assert dataclasses.replace(sgd, name=awp.name, description=awp.description, optimizer=awp.optimizer,
                               schedule=awp.schedule) == awp
    sgd_flip = RECIPES["fashion-pgd5-at-ema-madry-awp-sgd-flip"]
    assert dataclasses.replace(sgd_flip, name=pgd5.name, description=pgd5.description, optimizer=pgd5.optimizer,
                               schedule=pgd5.schedule) == pgd5
    assert (sgd_flip.optimizer, sgd_flip.schedule) == (sgd.optimizer, sgd.schedule)
    adamw = RECIPES["fashion-pgd5-at-ema-madry-awp-adamw-flip"]
    assert adamw.optimizer == {"name": "adamw", "lr": 1e-3, "weight_decay": 0.025}
    shrink_per_step = {r.name: r.optimizer["lr"] * r.optimizer["weight_decay"] for r in (adamw, sgd)}
    assert shrink_per_step[adamw.name] == pytest.approx(shrink_per_step[sgd.name])
    assert dataclasses.replace(adamw, name=pgd5.name, description=pgd5.description, optimizer=pgd5.optimizer) == pgd5
    trades = RECIPES["fashion-trades5-ema-madry-awp-flip"]
    trades_objective = trades.make_objective()
    assert trades_objective.beta == 3.0 and trades_objective.step_size == pytest.approx(0.05)
    assert dataclasses.replace(trades, name=pgd5.name, description=pgd5.description, objective="pgd-at",
                               objective_params=pgd5.objective_params) == pgd5
    silu = RECIPES["fashion-pgd-at-ema-madry-awp-silu"]
    assert dataclasses.replace(silu, name=awp.name, description=awp.description, arch_kwargs={}) == awp
    assert silu.arch_kwargs == {"activation": "silu"}
    hat = RECIPES["fashion-hat-madry"]
    assert hat.objective == "hat" and hat.teacher == "fashion-standard" and hat.objective_params["gamma"] == 0.5
    assert dataclasses.replace(hat, name=madry.name, description=madry.description, objective=madry.objective,
                               objective_params=madry.objective_params, teacher=None) == madry
    hat_flip = RECIPES["fashion-hat-madry-flip"]
    assert dataclasses.replace(hat_flip, name=hat.name, description=hat.description, augment=None) == hat
    assert hat_flip.augment == flip.augment
    hat_sgd = RECIPES["fashion-hat-madry-awp-sgd"]
    assert dataclasses.replace(hat_sgd, name=hat.name, description=hat.description, awp=None, optimizer=hat.optimizer,
                               schedule=hat.schedule) == hat
    assert (hat_sgd.awp, hat_sgd.optimizer, hat_sgd.schedule) == (sgd.awp, sgd.optimizer, sgd.schedule)
    cifar = RECIPES["cifar10-jpeg-pgd-at"]
    assert cifar.objective_params["eps"] == pytest.approx(8 / 255) and cifar.minutes == 120
    assert cifar.augment == RECIPES["cifar10-jpeg-standard"].augment == {"padding": 4, "flip": True}
    pgd7 = RECIPES["cifar10-jpeg-pgd7-at"]
    assert pgd7.objective_params == {**cifar.objective_params, "steps": 7} and pgd7.minutes == cifar.minutes
    assert dataclasses.replace(pgd7, name=cifar.name, description=cifar.description, epochs=cifar.epochs,
                               objective_params=cifar.objective_params) == cifar
    for recipe in RECIPES.values():
        teacher = teacher_id = None
        if recipe.teacher is not None:
            assert all(t in RECIPES and RECIPES[t].dataset == recipe.dataset for t in recipe.teachers)
            teacher = tuple(build(RECIPES[t])[0] for t in recipe.teachers)
            teacher_id = tuple(f"teacher {i}" for i in range(len(teacher)))
            if isinstance(recipe.teacher, str):
                teacher, teacher_id = teacher[0], teacher_id[0]
            with pytest.raises(ValueError, match="needs"):
                build(recipe)
        classifier, objective, kwargs = build(recipe, teacher, teacher_id)
        assert objective.params()["name"] == recipe.objective and kwargs["dataset"] == recipe.dataset
        if teacher is not None:
            assert objective.params()["teacher"] == (list(teacher_id) if isinstance(teacher, tuple) else teacher_id)
        Trainer(classifier, objective, guard_drop=None, **kwargs)  # the kwargs are the Trainer's
    for prefix, eps in (("mnist", 0.3), ("fashion", 0.1)):  # the side by side shares one threat model
        assert {RECIPES[f"{prefix}-{d}"].objective_params.get("eps", eps) for d in DEFENCES} == {eps}


def test_get_recipe_overrides_and_refuses():
    r = get_recipe("mnist-pgd-at", epochs=1, minutes=None, fast=False)
    assert (r.epochs, r.minutes, r.fast, r.name) == (1, None, False, "mnist-pgd-at")
    with pytest.raises(ValueError, match="unknown name 'nope'"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="unknown field"):
        get_recipe("mnist-pgd-at", lr=1)
    with pytest.raises(ValueError, match="objective_params"):
        get_recipe("mnist-pgd-at", objective_params={"eps": 0.3, "beta": 2})
    with pytest.raises(ValueError, match="eps_ramp_epochs"):
        get_recipe("mnist-standard", eps_ramp_epochs=1.0)
    with pytest.raises(ValueError, match="epochs"):
        get_recipe("mnist-standard", epochs=None, minutes=None)
    with pytest.raises(ValueError, match="takes no teacher"):
        get_recipe("mnist-pgd-at", teacher="mnist-standard")
    with pytest.raises(ValueError, match="needs a teacher"):
        get_recipe("mnist-ard", teacher=None)
    with pytest.raises(ValueError, match="expected a recipe name, got"):
        get_recipe("mnist-ard", teacher=("mnist-pgd-at", "mnist-standard"))  # ARD distils one teacher
    kd = get_recipe("fashion-kd-at-ema-madry-awp-flip", teacher="fashion-standard")  # one teacher is fine
    assert kd.teachers == ("fashion-standard",)
    for bad in ((), ("fashion-standard", ""), ("fashion-standard", 3)):
        with pytest.raises(ValueError, match="or a tuple of them"):
            get_recipe("fashion-kd-at-ema-madry-awp-flip", teacher=bad)
    stage1 = get_recipe("mnist-distillation", teacher=None)  # distillation without a teacher is stage 1
    with pytest.raises(ValueError, match="takes no teacher"):
        build(stage1, build(stage1)[0])


def test_heldout_split_is_seeded_and_disjoint():
    data = patches(50, 0)
    train, held = split_heldout(data, 10, seed=3)
    again, held_again = split_heldout(data, 10, seed=3)
    assert len(train) == 40 and len(held) == 10 and torch.equal(held.images, held_again.images)
    with pytest.raises(ValueError, match="eval_points"):
        split_heldout(data, 49, seed=0)


def test_recipe_trainer_writes_the_recipe():
    recipe = get_recipe("mnist-standard", epochs=1)
    classifier, objective, kwargs = build(recipe)
    run = RecipeTrainer(classifier, objective, recipe=recipe, progress=False, **kwargs).recipe(patches(8, 0))
    assert run["recipe"]["name"] == "mnist-standard" and run["fast"]["channels_last"] is True
    assert run["fast"]["autocast"] == ("bfloat16" if bf16_supported("cpu") else None)


def test_fast_path_choice():
    assert FastPath.choose(False, "cpu") == FastPath()
    assert FastPath.choose(True, "cpu").channels_last
    with pytest.raises(ValueError, match="fast"):
        FastPath.choose("yes", "cpu")  # type: ignore[arg-type]


def fit(fast: bool) -> tuple[list[float], torch.nn.Module]:
    torch.manual_seed(0)
    model = make_classifier("lenet", "mnist")
    trainer = Trainer(model, PGDAT(0.1, steps=2), epochs=8, batch_size=32, seed=1, progress=False, fast=fast,
                      schedule="constant", optimizer=OptimizerSpec("adam", lr=3e-3, weight_decay=0.0))
    history = trainer.fit(patches(96, 0))
    return [r["loss"] for r in history["epochs"]], model


def test_fast_path_on_and_off_both_train_and_agree():
    slow_losses, slow = fit(False)
    fast_losses, fast = fit(True)
    assert slow_losses[-1] < 0.8 * slow_losses[0] and fast_losses[-1] < 0.8 * fast_losses[0]
    # bf16 and another summation order make two trajectories of a small, noisy problem drift apart
    assert fast_losses == pytest.approx(slow_losses, rel=0.25, abs=0.05)
    # the weights come back in the ordinary layout
    assert all(p.is_contiguous() for p in fast.parameters())
    x = patches(40, 5).tensors()[0]
    with torch.no_grad():
        agree = (fast.eval()(x).argmax(1) == slow.eval()(x).argmax(1)).float().mean()
    assert agree >= 0.9
