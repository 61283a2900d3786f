"""Training objectives beyond adversarial training: input-gradient and Jacobian regularisation,
defensive distillation, ARD, HAT and ensemble adversarial training.

Tiny synthetic 28x28 problems (a bright patch whose position is the class), a few optimiser
steps, on the CPU.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from parry.classifier import Classifier
from parry.defenses.training import (ARD, HAT, TRADES, DefensiveDistillation, EnsembleAT, GradientRegularization,
                                     JacobianRegularization, KnowledgeDistillationAT, OptimizerSpec, PGDAT, Standard,
                                     Trainer, input_gradient_penalty)
from parry.defenses.training.jacobian_reg import jacobian_frobenius_sq
from parry.defenses.training.lipschitz_margin import LipschitzMargin
from parry.zoo import make_classifier

from synthetic import patches


def lenet(seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    return make_classifier("lenet", "mnist")


def fit(model: Classifier, objective, x, y, steps: int, lr: float = 2e-3, seed: int = 0) -> Classifier:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss, stats = objective.loss(model, x, y, generator=g)
        assert loss.requires_grad and all(not v.requires_grad for v in stats.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.fixture(scope="module")
def data():
    return patches(64, 0).tensors()


@pytest.fixture(scope="module")
def teacher(data):
    """A LeNet trained briefly with cross-entropy (the distillation teacher)."""
    x, y = data
    model = fit(lenet(seed=11), Standard(), x, y, steps=25).eval()
    model.zero_grad(set_to_none=True)
    return model


def objective_loss(objective, model, x, y) -> float:
    return float(objective.loss(model, x, y, generator=torch.Generator().manual_seed(123))[0].detach())


def objectives(teacher, statics):
    return {
        "gradient-reg": GradientRegularization(1.0),
        "jacobian-reg": JacobianRegularization(0.01, nproj=1),
        "distillation-stage1": DefensiveDistillation(None, temperature=2.0),
        "ard": ARD(teacher, 0.1, steps=3, temperature=2.0, weight=0.5),
        "hat": HAT(teacher, 0.1, steps=3),
        "kd-at": KnowledgeDistillationAT([teacher, statics[0]], 0.1, steps=3),
        "ensemble-at": EnsembleAT(statics, 0.1, attack="fgsm-rs"),
        "lipschitz-margin": LipschitzMargin(0.5, temperature=10.0),
    }


@pytest.mark.parametrize("name", ["gradient-reg", "jacobian-reg", "distillation-stage1", "ard", "hat", "kd-at",
                                  "ensemble-at", "lipschitz-margin"])
def test_each_objective_lowers_its_training_loss(name, data, teacher):
    objective = objectives(teacher, [lenet(seed=21), lenet(seed=22)])[name]
    x, y = data
    model = lenet().train()
    before = objective_loss(objective, model, x, y)
    fit(model, objective, x, y, steps=15)
    after = objective_loss(objective, model, x, y)
    assert after < 0.8 * before, (name, before, after)
    json.dumps(objective.params())


def test_distillation_student_matches_the_teachers_soft_labels(data, teacher):
    x, y = data
    held_out = patches(32, 5).tensors()[0]
    t = 4.0
    objective = DefensiveDistillation(teacher, temperature=t, teacher_id="lenet-ce")
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}

    def kl(student) -> float:
        with torch.no_grad():
            target = F.softmax(teacher(held_out) / t, dim=1)
            return float(F.kl_div(F.log_softmax(student.eval()(held_out) / t, dim=1), target,
                                  reduction="batchmean"))

    student = lenet(seed=3)
    before_loss, before_kl = objective_loss(objective, student.train(), x, y), kl(student)
    fit(student, objective, x, y, steps=30)
    assert objective_loss(objective, student.train(), x, y) < before_loss
    assert kl(student) < 0.3 * before_kl, (before_kl, kl(student))
    # the teacher is frozen: no gradient, unchanged weights, its mode left as it was
    assert all(p.grad is None for p in teacher.parameters()) and not teacher.training
    assert all(torch.equal(v, frozen[k]) for k, v in teacher.state_dict().items())
    assert objective.params() == {"name": "distillation", "temperature": 4.0, "teacher": "lenet-ce"}


def test_gradient_penalty_is_differentiable_in_the_parameters(data):
    x, y = data
    model = lenet().train()
    _, penalty = input_gradient_penalty(model, x[:8], y[:8])
    penalty.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # gradcheck of the penalty as a function of a weight (smooth toy network, float64)
    torch.manual_seed(0)
    toy = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))).double()
    xs, ys = torch.rand(4, 1, 2, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    weight = toy.model[1].weight.detach().clone().requires_grad_(True)

    def penalty_of(w):
        def forward(inp):
            return torch.func.functional_call(toy, {"model.1.weight": w}, (inp,))
        return input_gradient_penalty(forward, xs, ys)[1]

    assert torch.autograd.gradcheck(penalty_of, (weight,))


def margin_gradient_norm(model: Classifier, x, y) -> tuple[float, float]:
    """Mean L2 norm of the input gradient of the logit margin ``z_y - max_{j != y} z_j``, and the
    held-out accuracy."""
    x = x.clone().requires_grad_(True)
    logits = model.eval()(x)
    margin = logits.gather(1, y[:, None]).squeeze(1) - logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    grad, = torch.autograd.grad(margin.sum(), x)
    return float(grad.flatten(1).norm(dim=1).mean()), float((logits.detach().argmax(dim=1) == y).float().mean())


def test_gradient_regularisation_lowers_the_input_gradient_norm(data):
    """Same seed, same steps, same held-out points. The input gradient compared is the logit
    margin's (a local Lipschitz quantity): plain training shrinks the *cross-entropy's* input
    gradient towards 0 just by saturating the softmax (measured: ~1e-9 after 40 steps here),
    so that one says nothing about smoothness."""
    x, y = data
    held_out = patches(32, 7).tensors()
    plain = fit(lenet(), Standard(), x, y, steps=20)
    regularised = fit(lenet(), GradientRegularization(10.0), x, y, steps=20)
    (plain_norm, plain_acc), (reg_norm, reg_acc) = (margin_gradient_norm(m, *held_out) for m in (plain, regularised))
    assert reg_norm < 0.6 * plain_norm, (plain_norm, reg_norm)
    assert reg_acc >= plain_acc - 0.05  # not by giving up the task


def test_jacobian_estimate_matches_the_frobenius_norm():
    torch.manual_seed(0)
    linear = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(8, 4)))
    x = torch.rand(16, 1, 2, 4).requires_grad_(True)
    exact = float(linear.model[1].weight.detach().pow(2).sum())  # J = W for every sample
    estimate = float(jacobian_frobenius_sq(linear(x), x, 300, torch.Generator().manual_seed(0), create_graph=False))
    assert estimate == pytest.approx(exact, rel=0.1)


def test_ard_crafts_within_eps_and_raises_the_kl(data, teacher):
    x, y = data
    x, y = x[:16], y[:16]
    objective = ARD(teacher, 0.1, steps=5, temperature=2.0)
    student = lenet(seed=4).train()
    with torch.no_grad():
        probs = F.softmax(teacher(x) / 2.0, dim=1)
    x_adv = objective.craft(student, x, probs, torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert student.training and all(p.grad is None for p in student.parameters())

    def kl(inputs) -> float:
        with torch.no_grad():
            return float(F.kl_div(F.log_softmax(student.eval()(inputs) / 2.0, dim=1), probs, reduction="sum"))

    assert kl(x_adv) > kl(x)
    assert objective.params()["teacher"] == "LeNet" and objective.params()["temperature"] == 2.0


def test_hat_is_trades_plus_the_cross_entropy_of_helper_examples(data, teacher):
    """The helper examples lie at x + 2 (x' - x) within the bounds, labelled by the helper's
    prediction at x'; with them, HAT's loss is TRADES' plus gamma times their cross-entropy."""
    x, y = data
    x, y = x[:16], y[:16]
    model = lenet(seed=5).train()
    hat = HAT(teacher, 0.1, steps=3, beta=2.5, gamma=0.5, teacher_id="lenet-ce")
    x_adv = hat.craft(model, x, y, torch.Generator().manual_seed(0))
    helper = hat.helper_examples(model, x, x_adv)
    far = x + 2 * (x_adv - x)
    assert torch.equal(helper, far.clamp(0, 1)) and (helper - x).abs().max() > 0.1 + 1e-3  # beyond the eps-ball
    with torch.no_grad():
        loss, stats = hat.loss_on(model, x, y, x_adv)
        trades, _ = TRADES(0.1, steps=3, beta=2.5).loss_on(model, x, y, x_adv)
        helper_ce = F.cross_entropy(model(helper), teacher(x_adv).argmax(dim=1))
    assert float(loss) == pytest.approx(float(trades + 0.5 * helper_ce), rel=1e-5)
    assert float(stats["helper_loss"]) == pytest.approx(float(helper_ce), rel=1e-5)
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    assert hat.params() == {"name": "hat", "eps": 0.1, "norm": "linf", "steps": 3, "alpha": None, "beta": 2.5,
                            "gamma": 0.5, "h": 2.0, "teacher": "lenet-ce"}
    with pytest.raises(ValueError, match="teacher"):
        HAT(model, 0.1).loss(model, x, y)


def test_kd_at_mixes_the_cross_entropy_with_the_teachers_softened_predictions(data, teacher):
    """On PGD examples within the eps-ball, the loss is (1 - sum w) CE + sum_i w_i T^2 KL(t_i || s)
    at temperature T, with each teacher's logits taken at x'; without weight it is PGD-AT's."""
    x, y = data
    x, y = x[:16], y[:16]
    model, standard = lenet(seed=5).train(), lenet(seed=6).eval()
    kd = KnowledgeDistillationAT([teacher, standard], 0.1, steps=3, temperature=2.0, weights=(0.6, 0.1),
                                 teacher_id=["robust", "standard"])
    x_adv = kd.craft(model, x, y, torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        loss, stats = kd.loss_on(model, x, y, x_adv)
        logits = model(x_adv)
        by_hand = 0.3 * F.cross_entropy(logits, y)
        for weight, t in ((0.6, teacher), (0.1, standard)):
            by_hand += weight * 4 * F.kl_div(F.log_softmax(logits / 2, dim=1), F.softmax(t(x_adv) / 2, dim=1),
                                             reduction="batchmean")
        plain, _ = PGDAT(0.1, steps=3).loss_on(model, x, y, x_adv)
        unweighted, _ = KnowledgeDistillationAT([teacher, standard], 0.1, steps=3, weights=(0, 0)).loss_on(
            model, x, y, x_adv)
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-5) and float(stats["kl_0"]) > 0
    assert float(unweighted) == pytest.approx(float(plain), rel=1e-6)
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    assert kd.params() == {"name": "kd-at", "eps": 0.1, "norm": "linf", "steps": 3, "alpha": None,
                           "random_start": True, "weights": [0.6, 0.1], "temperature": 2.0,
                           "teacher": ["robust", "standard"]}
    with pytest.raises(ValueError, match="teacher"):
        KnowledgeDistillationAT(model, 0.1, weights=(0.5,)).loss(model, x, y)


class CountingSource(Classifier):
    """A static model that records each batch it sees."""

    def __init__(self, seed: int) -> None:
        base = lenet(seed)
        super().__init__(base.model, num_classes=10, mean=0.1307, std=0.3081, input_shape=(1, 28, 28))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x)


def test_hat_runs_its_helper_once_per_crafted_batch(data):
    """AWP evaluates the loss twice on the same crafted examples: the helper runs once; a new
    batch, or the same one changed in place, runs it again, and the loss is the same either way."""
    x, y = data
    x, y = x[:16], y[:16]
    helper = CountingSource(23)
    hat = HAT(helper, 0.1, steps=2)
    model = lenet(seed=5).train()
    x_adv = hat.craft(model, x, y, torch.Generator().manual_seed(0))
    with torch.no_grad():
        first, _ = hat.loss_on(model, x, y, x_adv)
        again, _ = hat.loss_on(model, x, y, x_adv)
        assert helper.calls == 1 and torch.equal(first, again)
        copied, _ = hat.loss_on(model, x, y, x_adv.clone())
        assert helper.calls == 2 and torch.equal(first, copied)
        x_adv.copy_(x)
        at_x, _ = hat.loss_on(model, x, y, x_adv)
        assert helper.calls == 3
        fresh, _ = HAT(helper, 0.1, steps=2).loss_on(model, x, y, x)
    assert torch.equal(at_x, fresh)


def test_ensemble_at_uses_the_static_models_in_turn(data):
    x, y = data
    x, y = x[:16], y[:16]
    statics = [CountingSource(21), CountingSource(22)]
    objective = EnsembleAT(statics, 0.1, static_ids=["a", "b"])
    model = lenet().train()
    used = []
    for step in range(6):
        counts = [s.calls for s in statics]
        warm = objective.with_eps(0.05) if step == 1 else objective  # the warm-up's copies share the cycle
        warm.loss(model, x, y, generator=torch.Generator().manual_seed(step))
        used.append([s.calls - c for s, c in zip(statics, counts)].index(1) + 1
                    if any(s.calls != c for s, c in zip(statics, counts)) else 0)
    assert used == [0, 1, 2, 0, 1, 2]
    assert objective.params() == {"name": "ensemble-at", "eps": 0.1, "norm": "linf", "steps": 1, "alpha": None,
                                  "attack": "fgsm", "clean_weight": 0.5, "static_models": ["a", "b"]}
    with pytest.raises(ValueError, match="static_models"):
        EnsembleAT([model], 0.1).loss(model, x, y)


def test_ensemble_at_resumes_its_round_robin(tmp_path):
    """Interrupted after 4 steps (one step into the second cycle of three sources) and resumed,
    the run ends with the weights of an uninterrupted one: the cycle's position is in the
    resume state."""
    data = patches(48, 2)  # 3 steps of 16 per epoch, 6 in all

    def run(out_dir, callback=None, resume=False):
        statics = [lenet(21), lenet(22)]
        model = lenet(seed=0)
        trainer = Trainer(model, EnsembleAT(statics, 0.1), optimizer=OptimizerSpec("sgd", lr=0.05), epochs=2,
                          batch_size=16, seed=3, out_dir=out_dir, architecture="lenet", dataset="mnist",
                          save_every=1, progress=False, callback=callback)
        trainer.fit(data, resume=resume)
        return model, trainer.objective

    reference, objective = run(tmp_path / "full")
    assert objective.position == 0  # 6 steps: two full cycles

    def interrupt(step):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", interrupt)
    assert json.loads((tmp_path / "cut" / "resume.json").read_text())["meta"]["objective_state"] == {"position": 1}
    resumed, _ = run(tmp_path / "cut", resume=True)
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="position"):
        EnsembleAT([lenet(21)], 0.1).load_state({"position": 2})
    with pytest.raises(ValueError, match="no training state"):
        GradientRegularization(1.0).load_state({"position": 1})


def test_new_objectives_run_in_the_trainer(data, teacher):
    train = patches(32, 3)
    history = Trainer(lenet(), ARD(teacher, 0.1, steps=1), optimizer=OptimizerSpec("adam", lr=1e-3), epochs=1,
                      batch_size=16, eps_ramp_epochs=0.5, progress=False).fit(train)
    assert history["steps"] == 2 and "kl" in history["epochs"][0]


@pytest.mark.parametrize("make, match", [
    (lambda t: GradientRegularization(-1.0), "lam"),
    (lambda t: LipschitzMargin(-1.0), "radius"),
    (lambda t: LipschitzMargin(1.0, temperature=0.0), "temperature"),
    (lambda t: GradientRegularization(float("inf")), "lam"),
    (lambda t: JacobianRegularization(float("nan")), "lam"),
    (lambda t: JacobianRegularization(0.1, nproj=0), "nproj"),
    (lambda t: DefensiveDistillation(nn.Linear(2, 2)), "teacher"),
    (lambda t: DefensiveDistillation(t, temperature=0.0), "temperature"),
    (lambda t: DefensiveDistillation(t, teacher_id=3), "teacher_id"),
    (lambda t: ARD(t, 0.0), "eps"),
    (lambda t: ARD(t, 0.1, weight=1.5), "weight"),
    (lambda t: ARD(t, 0.1, temperature=-2.0), "temperature"),
    (lambda t: ARD(None, 0.1), "teacher"),
    (lambda t: HAT(None, 0.1), "teacher"),
    (lambda t: HAT(t, 0.1, h=1.0), "h"),
    (lambda t: HAT(t, 0.1, gamma=-1.0), "gamma"),
    (lambda t: HAT(t, 0.1, beta=float("nan")), "beta"),
    (lambda t: HAT(t, 0.1, teacher_id=3), "teacher_id"),
    (lambda t: KnowledgeDistillationAT([], 0.1), "teacher"),
    (lambda t: KnowledgeDistillationAT([t, None], 0.1), "teacher"),
    (lambda t: KnowledgeDistillationAT([t, t], 0.1, weights=(0.5,)), "weights"),
    (lambda t: KnowledgeDistillationAT([t, t], 0.1, weights=(0.6, 0.5)), "weights"),
    (lambda t: KnowledgeDistillationAT(t, 0.1, weights=(-0.1,)), "weights"),
    (lambda t: KnowledgeDistillationAT(t, 0.1, weights="0.5"), "weights"),
    (lambda t: KnowledgeDistillationAT(t, 0.1, weights=(0.5,), temperature=0.0), "temperature"),
    (lambda t: KnowledgeDistillationAT([t, t], 0.1, teacher_id=["a"]), "teacher_id"),
    (lambda t: KnowledgeDistillationAT(t, -0.1, weights=(0.5,)), "eps"),
    (lambda t: EnsembleAT([], 0.1), "static_models"),
    (lambda t: EnsembleAT(t, 0.1), "static_models"),
    (lambda t: EnsembleAT([t, "x"], 0.1), "static_models"),
    (lambda t: EnsembleAT([t], 0.1, attack="pgd"), "attack"),
    (lambda t: EnsembleAT([t], 0.1, clean_weight=1.0), "clean_weight"),
    (lambda t: EnsembleAT([t], 0.1, static_ids=["a", "b"]), "static_ids"),
    (lambda t: EnsembleAT([t], -0.1), "eps"),
    (lambda t: EnsembleAT([t], 0.1, alpha=0.05), "alpha"),
])
def test_bad_arguments_are_refused(make, match, teacher):
    with pytest.raises(ValueError, match=match):
        make(teacher)


def test_teacher_must_differ_from_the_student_and_share_its_classes(data, teacher):
    x, y = data
    with pytest.raises(ValueError, match="teacher"):
        DefensiveDistillation(teacher).loss(teacher, x[:4], y[:4])
    three = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(784, 3)), num_classes=3)
    with pytest.raises(ValueError, match="teacher"):
        DefensiveDistillation(three).loss(lenet(), x[:4], y[:4])
    with pytest.raises(ValueError, match="teacher"):
        ARD(three, 0.1, steps=1).loss(lenet(), x[:4], y[:4])
