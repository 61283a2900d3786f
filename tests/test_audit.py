"""The gradient-masking audit (parry.evaluate.audit): each check on tiny synthetic models, the
five MNIST models it must flag or pass, and ``parry audit`` on the command line.

Flagged: input quantisation (shattered gradients), logits x 1000 and defensive distillation
(saturated softmax, vanishing gradients), input noise (randomness). Passed: PGD training.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from parry import Classifier
from parry.cli import main
from parry.evaluate.audit import (BUDGETS, AuditContext, AuditReport, CheckResult, audit, check_adaptive_step,
                                  check_attack_order, check_convergence, check_eps_sweep, check_single_step, eps_ladder,
                                  train_surrogate)
from parry.zoo import make_classifier, save_checkpoint, train_classifier
from robust_model import cached



# ---------------------------------------------------------------------------------------------
# Model transformations that mask gradients (Athalye, Carlini & Wagner, ICML 2018)
# ---------------------------------------------------------------------------------------------

class Quantise(nn.Module):
    """Round every pixel to ``levels`` values in [0, 1]: zero gradients almost everywhere."""

    def __init__(self, levels: int = 4) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, x):
        return torch.round(x * (self.levels - 1)) / (self.levels - 1)


class ScaleLogits(nn.Module):
    def __init__(self, model: nn.Module, scale: float) -> None:
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(x) * self.scale


class InputNoise(nn.Module):
    """Fresh Gaussian noise on the input at every forward pass, in eval mode too."""

    def __init__(self, model: nn.Module, std: float = 0.3) -> None:
        super().__init__()
        self.model, self.std = model, std

    def forward(self, x):
        return self.model((x + self.std * torch.randn_like(x)).clamp(0, 1))


class Softmax(nn.Module):
    def __init__(self, model: nn.Module, log: bool = False) -> None:
        super().__init__()
        self.model, self.log = model, log

    def forward(self, x):
        z = self.model(x)
        return F.log_softmax(z, dim=1) if self.log else F.softmax(z, dim=1)


def mnist_classifier(module: nn.Module) -> Classifier:
    return Classifier(module, num_classes=10, input_shape=(1, 28, 28))


# ---------------------------------------------------------------------------------------------
# Defensive distillation (Papernot et al., IEEE S&P 2016), cached like tests/robust_model.py
# ---------------------------------------------------------------------------------------------

DISTILL = {"architecture": "lenet", "temperature": 100.0, "train_points": 60000, "epochs": 1, "optimizer": "adam",
           "lr": 1e-3, "batch_size": 128, "seed": 0, "version": 1}


def _train_at_temperature(train_set, soft_targets_of=None):
    """One LeNet trained on logits / T: on hard labels, or on a teacher's soft labels at T."""
    T = DISTILL["temperature"]
    clf = make_classifier("lenet", "mnist")
    opt = torch.optim.Adam(clf.parameters(), lr=DISTILL["lr"])
    for epoch in range(DISTILL["epochs"]):
        for x, y in train_set.batches(DISTILL["batch_size"], shuffle=True, seed=epoch):
            clf.train()
            log_p = F.log_softmax(clf(x) / T, dim=1)
            if soft_targets_of is None:
                loss = F.nll_loss(log_p, y)
            else:
                with torch.no_grad():
                    soft = F.softmax(soft_targets_of(x) / T, dim=1)
                loss = -(soft * log_p).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return clf.eval()


def distilled_lenet(train_set):
    """The student of defensive distillation at T = 100, deployed at T = 1 (cached on disk)."""
    def build():
        torch.manual_seed(DISTILL["seed"])
        subset = train_set.spread(DISTILL["train_points"])
        teacher = _train_at_temperature(subset)
        return _train_at_temperature(subset, soft_targets_of=teacher)

    return cached("lenet-distilled", DISTILL, build)


# ---------------------------------------------------------------------------------------------
# Checks on tiny synthetic models (8x8 single-channel "images", 3 classes)
# ---------------------------------------------------------------------------------------------

def _linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


def _toy_points(model: nn.Module, n: int = 64):
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return x, y


def _toy(module: nn.Module) -> Classifier:
    return Classifier(module, num_classes=3, input_shape=(1, 8, 8))


def _cheap_checks(module: nn.Module, labeller: nn.Module | None = None):
    x, y = _toy_points(labeller or module)
    return audit(_toy(module), x, y, eps=0.1, checks=("determinism", "gradients", "logits"))


def test_a_linear_model_passes_determinism_gradients_and_logits():
    report = _cheap_checks(_linear())
    assert [c.name for c in report.checks] == ["determinism", "gradients", "logits"]
    assert [c.verdict for c in report.checks] == ["pass"] * 3 and report.verdict == "pass"
    assert report.check("gradients").numbers["zero_fraction_margin"] == 0.0
    assert report.clean_accuracy == 1.0 and report.n == 64 and report.num_classes == 3


def test_softmax_outputs_fail_the_logits_check_and_log_softmax_warns():
    linear = _linear()
    probs = _cheap_checks(Softmax(linear), linear).check("logits")
    assert probs.verdict == "fail" and probs.numbers["probabilities"] and "softmax" in probs.reason
    logp = _cheap_checks(Softmax(linear, log=True), linear).check("logits")
    assert logp.verdict == "warn" and logp.numbers["log_probabilities"] and not logp.numbers["probabilities"]


def test_huge_logits_saturate_the_softmax_and_zero_the_cross_entropy_gradient():
    linear = _linear()
    report = _cheap_checks(ScaleLogits(linear, 1000.0), linear)
    assert report.check("logits").verdict == "fail" and report.check("logits").numbers["saturated_fraction"] > 0.5
    grads = report.check("gradients")
    assert grads.verdict == "fail" and grads.numbers["zero_fraction_ce"] > 0.5
    assert grads.numbers["zero_fraction_margin"] == 0.0 and "saturated" in grads.reason


def test_a_step_function_has_shattered_gradients():
    linear = _linear()
    report = _cheap_checks(nn.Sequential(Quantise(2), linear), linear)
    grads = report.check("gradients")
    assert grads.verdict == "fail" and grads.numbers["zero_fraction_margin"] == 1.0 and "BPDA" in grads.reason
    assert report.check("determinism").verdict == "pass" and report.verdict == "fail"


def test_a_randomised_model_fails_determinism_with_eot_advice():
    linear = _linear()
    det = _cheap_checks(InputNoise(linear, std=0.1), linear).check("determinism")
    assert det.verdict == "fail" and "EOT" in det.reason and det.numbers["relative_diff"] > 1e-4


def test_the_full_audit_of_a_linear_model_passes_and_runs_every_check():
    linear = _linear()
    x, y = _toy_points(linear)
    seen = []
    report = audit(_toy(linear), x, y, eps=0.5, surrogate=_toy(_linear(1)), progress=seen.append)
    assert [c.name for c in seen] == [c.name for c in report.checks] == [
        "determinism", "gradients", "logits", "single_step", "eps_sweep", "convergence", "adaptive_step",
        "attack_order"]
    assert report.verdict == "pass", report.table()
    assert report.check("eps_sweep").numbers["accuracy_at_max_radius"] <= 1 / 3
    json.dumps(report.to_dict())  # serialisable


class StubContext:
    """Preset robustness masks (point i robust iff i < accuracy * n) in place of attack runs."""

    def __init__(self, n: int = 100, *, eps: float = 0.3, num_classes: int = 10, curve: dict | None = None,
                 **accuracies: float | None) -> None:
        self.n, self.eps, self.chance, self.max_radius = n, eps, 1 / num_classes, 1.0
        self.slack, self.budget = max(0.02, 2 / n), BUDGETS["ci"]
        self.acc = {"clean": 1.0, "fgsm": 0.5, "pgd": 0.4, "strong": 0.4, "apgd": 0.4, "square": 0.6, "transfer": 0.7,
                    "noise": 0.9, **accuracies}
        self.curve = curve or {}

    def _mask(self, acc):
        return None if acc is None else torch.arange(self.n) < round(acc * self.n)

    def clean_correct(self):
        return self._mask(self.acc["clean"])

    def fgsm(self):
        return self._mask(self.acc["fgsm"])

    def pgd(self, eps=None, steps=None, restarts=1):
        return self._mask(self.acc["pgd"] if eps is None or eps == self.eps else self.curve[eps])

    def strong_pgd(self):
        return self._mask(self.acc["strong"])

    def apgd(self):
        return self._mask(self.acc["apgd"])

    def whitebox(self):
        return self.fgsm() & self.pgd() & self.strong_pgd() & self.apgd()

    def square(self):
        return self._mask(self.acc["square"])

    def transfer(self):
        return self._mask(self.acc["transfer"])

    def noise(self):
        return self._mask(self.acc["noise"])


@pytest.mark.parametrize("fgsm, pgd, verdict", [(0.5, 0.4, "pass"), (0.40, 0.41, "pass"), (0.4, 0.5, "fail")])
def test_single_step_thresholds(fgsm, pgd, verdict):
    result = check_single_step(StubContext(fgsm=fgsm, pgd=pgd))
    assert result.verdict == verdict and result.numbers["fgsm_accuracy"] == pytest.approx(fgsm)


@pytest.mark.parametrize("strong, verdict", [(0.77, "pass"), (0.73, "warn"), (0.6, "fail")])
def test_convergence_thresholds(strong, verdict):
    result = check_convergence(StubContext(pgd=0.8, strong=strong))
    assert result.verdict == verdict and result.numbers["drop"] == pytest.approx(0.8 - strong)


@pytest.mark.parametrize("apgd, verdict", [(0.77, "pass"), (0.73, "warn"), (0.68, "fail")])
def test_adaptive_step_thresholds(apgd, verdict):
    """An FGSM-trained model can hold against PGD with more steps and restarts but not against
    APGD's adaptive step (MNIST FGSM-RS SmallCNN, docs/results.md: PGD-40 91.9 %, APGD-CE 80.1 %)."""
    result = check_adaptive_step(StubContext(strong=0.8, apgd=apgd))
    assert result.verdict == verdict, result.reason
    assert result.numbers["drop"] == pytest.approx(0.8 - apgd) and "APGD-CE-50" in result.reason


@pytest.mark.parametrize("curve, verdict", [
    ({0.075: 0.9, 0.15: 0.7, 0.6: 0.1, 1.0: 0.0}, "pass"),
    ({0.075: 0.9, 0.15: 0.7, 0.6: 0.2, 1.0: 0.15}, "warn"),       # above chance, within the margin
    ({0.075: 0.9, 0.15: 0.7, 0.6: 0.6, 1.0: 0.5}, "fail"),        # far from chance at the whole box
    ({0.075: 0.3, 0.15: 0.7, 0.6: 0.1, 1.0: 0.0}, "fail"),        # not monotone
])
def test_eps_sweep_thresholds(curve, verdict):
    result = check_eps_sweep(StubContext(pgd=0.4, curve=curve))
    assert result.verdict == verdict, result.reason
    assert [e for e, _ in result.numbers["curve"]] == [0.0, 0.075, 0.15, 0.3, 0.6, 1.0]


def test_attack_order_thresholds():
    assert check_attack_order(StubContext()).verdict == "pass"
    skipped = check_attack_order(StubContext(transfer=None))
    assert skipped.verdict == "pass" and "transfer not run" in skipped.reason
    assert skipped.numbers["transfer_accuracy"] is None
    beaten = check_attack_order(StubContext(square=0.2))
    assert beaten.verdict == "fail" and "square 20.0 %" in beaten.reason
    assert check_attack_order(StubContext(noise=0.37)).verdict == "fail"
    assert check_attack_order(StubContext(transfer=0.39)).verdict == "pass"  # within the slack


def test_report_verdicts_reasons_and_table():
    def report(*verdicts):
        checks = [CheckResult(f"c{i}", v, f"reason {i}", {"x": i}) for i, v in enumerate(verdicts)]
        return AuditReport(checks, norm="linf", eps=0.3, n=10, seed=0, budget="ci", clean_accuracy=1.0,
                           num_classes=10)

    assert report("pass", "pass").verdict == "pass" and report("pass", "pass").reason == "all 2 checks passed"
    assert report("pass", "warn").verdict == "suspicious"
    mixed = report("warn", "fail", "pass", "fail")
    assert mixed.verdict == "fail" and mixed.reason == "failed: c1, c3; warned: c0"
    assert mixed.summary().startswith("fail: ")
    assert "| c1 | fail | reason 1 |" in mixed.table() and "overall: **fail**" in mixed.table()
    assert json.loads(json.dumps(mixed.to_dict()))["checks"][1]["numbers"] == {"x": 1}
    with pytest.raises(KeyError, match="c9"):
        mixed.check("c9")
    with pytest.raises(ValueError, match="verdict"):
        CheckResult("bad", "ok", "")


def test_eps_ladder_ends_at_the_diameter_of_the_box():
    linear = _linear()
    x, y = _toy_points(linear)
    ctx = AuditContext(_toy(linear), x, y, norm="linf", eps=0.3, seed=0, budget=BUDGETS["ci"], batch_size=500,
                       surrogate=None, num_classes=3)
    assert eps_ladder(ctx) == [0.075, 0.15, 0.3, 0.6, 1.0]
    ctx = AuditContext(_toy(linear), x, y, norm="l2", eps=2.0, seed=0, budget=BUDGETS["ci"], batch_size=500,
                       surrogate=None, num_classes=3)
    assert eps_ladder(ctx) == [0.5, 1.0, 2.0, 4.0, 8.0]  # 8 = sqrt(64): the L2 diameter of [0, 1]^64


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": 0.0}, "eps"), ({"eps": -1.0}, "eps"), ({"eps": float("inf")}, "eps"), ({"eps": True}, "eps"),
    ({"eps": 0.3, "norm": "l0"}, "norm"), ({"eps": 0.3, "budget": "huge"}, "budget"),
    ({"eps": 0.3, "checks": ("nope",)}, "checks"), ({"eps": 0.3, "checks": ()}, "checks"),
    ({"eps": 0.3, "seed": -1}, "seed"), ({"eps": 0.3, "batch_size": 0}, "batch_size"),
    ({"eps": 0.3, "surrogate": "model"}, "surrogate"), ({"eps": 0.3, "progress": 3}, "progress"),
])
def test_audit_rejects_bad_arguments(kwargs, match):
    linear = _linear()
    x, y = _toy_points(linear)
    with pytest.raises(ValueError, match=match):
        audit(_toy(linear), x, y, **kwargs)


def test_audit_rejects_bad_points():
    linear = _linear()
    x, y = _toy_points(linear)
    with pytest.raises(ValueError, match="y"):
        audit(_toy(linear), x, torch.full_like(y, 3), eps=0.3)
    with pytest.raises(ValueError, match="x"):
        audit(_toy(linear), x * 2 + 0.5, y, eps=0.3)


# ---------------------------------------------------------------------------------------------
# Five MNIST models: four masked ones the audit must flag, one PGD-trained model it must pass
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain_lenet(mnist_train):
    """An undefended LeNet: one Adam epoch on 12,000 spread training images (a few seconds)."""
    torch.manual_seed(0)
    clf = make_classifier("lenet", "mnist")
    train_classifier(clf, mnist_train.spread(12000), epochs=1, optimizer="adam", lr=1e-3, seed=0, progress=False)
    return clf


@pytest.fixture(scope="module")
def surrogate(mnist_train):
    """The audit's own quick surrogate, trained on other images than plain_lenet's."""
    return train_surrogate(mnist_train.subset(range(1, 60000, 5)), (1, 28, 28), 10, steps=300, seed=1)


@pytest.fixture(scope="module")
def audit_points(mnist_test):
    return mnist_test.spread(100).tensors()


MASKED = {  # name -> (build the model from the plain LeNet, checks that must fail)
    "quantised": (lambda m: mnist_classifier(nn.Sequential(Quantise(4), m)), {"gradients", "attack_order"}),
    "logits-x1000": (lambda m: mnist_classifier(ScaleLogits(m, 1000.0)), {"logits", "gradients"}),
    "randomised": (lambda m: mnist_classifier(InputNoise(m, std=0.3)), {"determinism"}),
}


@pytest.mark.parametrize("name", list(MASKED))
def test_the_audit_flags_a_masked_model(name, plain_lenet, surrogate, audit_points):
    build, must_fail = MASKED[name]
    x, y = audit_points
    report = audit(build(plain_lenet), x, y, eps=0.3, seed=0, surrogate=surrogate)
    assert report.verdict == "fail" and must_fail <= set(report.failed), report.table()


def test_the_audit_flags_defensive_distillation(mnist_train, surrogate, audit_points):
    x, y = audit_points
    report = audit(distilled_lenet(mnist_train), x, y, eps=0.3, seed=0, surrogate=surrogate)
    assert report.verdict == "fail" and {"logits", "gradients"} <= set(report.failed), report.table()
    assert report.check("logits").numbers["median_top2_gap"] > 69  # deployed at T = 1: huge logits


def test_the_audit_passes_a_pgd_trained_model_and_an_undefended_one(pgd_mnist_cnn, plain_lenet, surrogate,
                                                                     audit_points):
    x, y = audit_points
    robust = audit(pgd_mnist_cnn, x, y, eps=0.3, seed=0, surrogate=surrogate)
    assert robust.verdict == "pass", robust.table()
    assert robust.check("attack_order").numbers["whitebox_accuracy"] > 0.6  # robust, and honestly so
    assert robust.check("eps_sweep").numbers["accuracy_at_max_radius"] <= 0.1
    plain = audit(plain_lenet, x, y, eps=0.3, seed=0, surrogate=surrogate)
    assert plain.verdict == "pass", plain.table()


def test_the_audit_catches_fixed_step_pgd_overstating_an_fgsm_trained_model(robust_mnist_cnn, surrogate,
                                                                              audit_points):
    """The FGSM-RS LeNet holds against more PGD steps and restarts but not against APGD-CE
    (measured: PGD-10 60 %, PGD-40 x 2 55 %, APGD-CE-50 35 % on these 100 points)."""
    x, y = audit_points
    report = audit(robust_mnist_cnn, x, y, eps=0.3, seed=0, surrogate=surrogate,
                   checks=("convergence", "adaptive_step"))
    step = report.check("adaptive_step")
    assert step.verdict == "fail" and report.verdict == "fail", report.table()
    assert step.numbers["apgd_accuracy"] < step.numbers["strong_pgd_accuracy"] - 0.1


def test_the_audit_trains_its_own_surrogate_from_a_training_set(plain_lenet, mnist_train, audit_points):
    x, y = audit_points
    quantised = MASKED["quantised"][0](plain_lenet)
    budget = dataclasses.replace(BUDGETS["ci"], surrogate_steps=100)
    report = audit(quantised, x[:50], y[:50], eps=0.3, budget=budget, train_set=mnist_train.spread(6000),
                   checks=("attack_order",))
    transfer = report.check("attack_order").numbers["transfer_accuracy"]
    assert transfer is not None and transfer < 0.5 and report.verdict == "fail"


# ---------------------------------------------------------------------------------------------
# parry audit
# ---------------------------------------------------------------------------------------------

def test_cli_audit_prints_the_table_and_writes_json(tmp_path, pgd_mnist_cnn, plain_lenet, mnist_train, data_root,
                                                     mirror_url, monkeypatch):
    if mirror_url:
        monkeypatch.setenv("PARRY_OFFLINE", "1")
    model = save_checkpoint(tmp_path / "pgd", pgd_mnist_cnn, architecture="lenet", arch_kwargs={},
                            dataset="mnist", recipe={}, metrics={})
    sur = save_checkpoint(tmp_path / "plain", plain_lenet, architecture="lenet", arch_kwargs={},
                          dataset="mnist", recipe={}, metrics={})
    common = ["--device", "cpu", "--data-root", str(data_root), *(["--mirror", mirror_url] if mirror_url else [])]
    out = tmp_path / "audit.json"
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "--model", str(model), "--eps", "0.3", "-n", "60", "--surrogate", str(sur),
                                  "--out", str(out), *common])
    assert result.exit_code == 0, result.output
    assert "| determinism | pass |" in result.output and "overall: **pass**" in result.output
    report = json.loads(out.read_text())
    assert report["verdict"] == "pass" and report["n"] == 60 and report["threat"] == {"norm": "linf", "eps": 0.3}
    assert [c["name"] for c in report["checks"]][-1] == "attack_order" and report["budget"] == "ci"
    bad = runner.invoke(main, ["audit", "--model", str(model), "--eps", "-1", "--no-transfer", *common])
    assert bad.exit_code != 0 and "eps" in bad.output
    assert runner.invoke(main, ["audit", "--help"]).exit_code == 0
    # --strict turns the verdict into the exit status (for CI): a distilled model fails it
    distilled = save_checkpoint(tmp_path / "distilled", distilled_lenet(mnist_train), architecture="lenet",
                                arch_kwargs={}, dataset="mnist", recipe={}, metrics={})
    strict = runner.invoke(main, ["audit", "--model", str(distilled), "--eps", "0.3", "-n", "60", "--no-transfer",
                                  "--strict", *common])
    assert strict.exit_code == 1 and "overall: **fail**" in strict.output
