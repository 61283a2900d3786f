"""Tables from the results store: they agree with parry.metrics on the same AttackResults, curves
never rise with eps, the worst case is at most every attack, transfers match a direct computation,
cross-data-set tables pair recipes and transfer across data sets; plus `parry runs`."""

import math

import pytest
import torch
from click.testing import CliRunner
from conftest import load_test_data

from parry import metrics
from parry.attacks.blackbox.transfer import transfer_matrix as direct_transfer_matrix
from parry.attacks.registry import make_attack
from parry.cli import main
from parry.evaluate import (EvalPoints, GridAttack, ModelSpec, OutcomeBatch, ResultsStore, ThreatSpec, UnitKey,
                            UnitRecord, accuracy_table, cross_dataset_transfer, matrix_to_markdown, norm_table,
                            recipe_generalisation, robustness_curves, run_grid, run_transfers, to_markdown,
                            transfer_matrix, transfer_table, worst_case_table)
from parry.evaluate.environment import environment
from parry.evaluate.specs import attack_params
from parry.evaluate.tables import TOL
from parry.metrics import predict
from test_runner import linear_model

EPS = (0.02, 0.05, 0.1)


@pytest.fixture(scope="module")
def model(mnist_train):
    return ModelSpec("lin", linear_model(mnist_train, 0), "mnist")


@pytest.fixture(scope="module")
def points(mnist_test):
    return EvalPoints.spread(mnist_test, 60)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, model, points):
    """AttackResults computed directly, and a store holding exactly them."""
    clf, x, y = model.classifier, points.x, points.y
    results = {("fgsm", eps): make_attack("fgsm", eps)(clf, x, y) for eps in EPS}
    results.update({("pgd", eps): make_attack("pgd", eps, steps=5, seed=0)(clf, x, y) for eps in EPS})
    results["deepfool", None] = make_attack("deepfool", None, "linf", steps=20)(clf, x, y)
    store = ResultsStore(tmp_path_factory.mktemp("tables") / "r.sqlite")
    mid, pid = store.add_model(**model.record()), store.add_point_set(points)
    run, _ = store.start_run("grid", {"test": "tables"}, 0, environment(), len(results))
    for (name, eps), res in results.items():
        key = UnitKey(mid, mid, store.add_attack(name, attack_params(res.params)), store.add_threat("linf", eps),
                      pid, 0)
        store.record_units(run, [UnitRecord(key, 0, OutcomeBatch.from_result(res), res.time_s, res.queries)])
    yield store, results
    store.close()


def _frac(mask):
    return int(mask.sum()) / mask.numel()


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-6, abs=1e-9)


def test_accuracy_and_norm_tables_agree_with_metrics(recorded):
    store, results = recorded
    table = {(r["attack"], r["eps"]): r for r in accuracy_table(store)}
    assert set(table) == {k for k in results if k[1] is not None}
    for key, row in table.items():
        expected = metrics.summarize(results[key])
        for name in ("clean_accuracy", "clean_accuracy_ci95", "robust_accuracy", "robust_accuracy_ci95", "n"):
            assert row[name] == expected[name], (key, name)
        assert _same(row["attack_success_rate"], expected["attack_success_rate"])
        assert row["robust_error_rate"] == pytest.approx(1 - expected["robust_accuracy"])
        assert row["norm"] == "linf" and row["points"] == "spread 60 of mnist test" and row["seed"] == 0
    [row] = norm_table(store)
    expected = metrics.norm_summary(results["deepfool", None])
    assert row["attack"] == "deepfool" and row["eps"] is None
    assert _same(row["attack_success_rate"], metrics.attack_success_rate(results["deepfool", None]))
    for norm in ("l2", "linf"):
        assert _same(row[f"{norm}_mean"], expected[norm]["mean"])
        assert _same(row[f"{norm}_median"], expected[norm]["median"])


def test_worst_case_is_the_per_point_minimum_and_at_most_every_attack(recorded):
    store, results = recorded
    wc = {r["eps"]: r for r in worst_case_table(store)}
    assert sorted(wc) == list(EPS)
    deepfool = results["deepfool", None]
    accuracy = {(r["attack"], r["eps"]): r["robust_accuracy"] for r in accuracy_table(store)}
    for eps, row in wc.items():
        fixed = [results[a, e] for a in ("fgsm", "pgd") for e in EPS if e <= eps]
        robust = metrics.worst_case_robust(fixed) & deepfool.clean_correct
        robust &= ~(~deepfool.robust & (deepfool.norms["linf"].double() <= eps * (1 + TOL) + TOL))
        assert row["robust_accuracy"] == _frac(robust), eps
        assert row["robust_accuracy"] <= row["strongest_attack_accuracy"]
        assert all(row["robust_accuracy"] <= accuracy[a, eps] for a in ("fgsm", "pgd"))
        assert row["robust_accuracy"] <= metrics.worst_case_accuracy([results["fgsm", eps], results["pgd", eps]])
        lo, hi = row["robust_accuracy_ci95"]
        assert lo <= row["robust_accuracy"] <= hi


def test_robustness_curves_never_rise_and_min_norm_curves_follow_the_norms(recorded):
    store, results = recorded
    rows = robustness_curves(store, eps_values=(0.0, 0.2, 0.3))
    deepfool = results["deepfool", None]
    for basis in ("min-norm", "worst case"):
        curve = [(r["eps"], r["robust_accuracy"]) for r in rows if r["basis"] == basis]
        assert [e for e, _ in curve] == sorted({0.0, 0.2, 0.3, *EPS})
        values = [v for _, v in curve]
        assert all(b <= a for a, b in zip(values, values[1:])), (basis, curve)
    for r in rows:
        if r["basis"] == "min-norm":
            broken = ~deepfool.robust & (deepfool.norms["linf"].double() <= r["eps"] * (1 + TOL) + TOL)
            assert r["robust_accuracy"] == _frac(deepfool.clean_correct & ~broken)
    worst = {r["eps"]: r["robust_accuracy"] for r in rows if r["basis"] == "worst case"}
    assert worst[0.0] == _frac(deepfool.clean_correct)
    assert all(worst[r["eps"]] <= r["robust_accuracy"] for r in rows)
    fixed = {(r["attack"], r["eps"]) for r in rows if r["basis"] == "fixed"}
    assert fixed == {k for k in results if k[1] is not None}


def test_transfer_matrix_matches_a_direct_computation(tmp_path, mnist_train, model, points):
    other = ModelSpec("lin-b", linear_model(mnist_train, 1, steps=40), "mnist")
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_transfers([model, other], [model, other], ["fgsm"], [ThreatSpec("linf", (0.05,))], points, store,
                      batch_size=25, progress=False)
        sources, targets, matrix = transfer_matrix(store)
        assert len(transfer_table(store)) == 4 and cross_dataset_transfer(store) == []
    names, expected = direct_transfer_matrix({"lin": model.classifier, "lin-b": other.classifier},
                                             make_attack("fgsm", 0.05), points.x, points.y)
    assert sources == targets == names
    assert torch.allclose(matrix, expected, atol=1e-6)
    text = matrix_to_markdown(sources, targets, matrix)
    assert text.splitlines()[0] == "| source \\ target | lin | lin-b |" and len(text.splitlines()) == 4


def test_cross_dataset_tables(tmp_path, mnist_train, mnist_test, data_root, mirror_url):
    fashion_train = load_test_data("fashion-mnist", "train", data_root, mirror_url)
    fashion_test = load_test_data("fashion-mnist", "test", data_root, mirror_url)
    recipe = lambda ds, steps=100: {"arch": "linear", "dataset": ds, "optimizer": "adam", "steps": steps}  # noqa: E731
    models = [ModelSpec("mnist-lin", linear_model(mnist_train, 0), "mnist", recipe=recipe("mnist")),
              ModelSpec("fashion-lin", linear_model(fashion_train, 0), "fashion-mnist",
                        recipe=recipe("fashion-mnist")),
              ModelSpec("fashion-short", linear_model(fashion_train, 0, steps=30), "fashion-mnist",
                        recipe=recipe("fashion-mnist", 30))]
    pts = [EvalPoints.spread(mnist_test, 30), EvalPoints.spread(fashion_test, 30)]
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_grid(models, ["fgsm", GridAttack("pgd", {"steps": 5})], [ThreatSpec("linf", (0.05,))], pts, store,
                 batch_size=30, progress=False)
        run_transfers(models[:2], models[:2], ["fgsm"], [ThreatSpec("linf", (0.05,))], pts, store, batch_size=30,
                      progress=False)
        generalisation = recipe_generalisation(store)
        worst = {(r["model"], r["eps"]): r["robust_accuracy"] for r in worst_case_table(store)}
        cross = cross_dataset_transfer(store)
    assert {r["model"] for r in generalisation} == {"mnist-lin", "fashion-lin"}  # the 30-step recipe is unpaired
    assert len({r["recipe"] for r in generalisation}) == 1
    for r in generalisation:
        assert r["robust_accuracy"] == worst[r["model"], r["eps"]] and r["clean_accuracy"] > 0.5
    assert {(r["source"], r["target"]) for r in cross} == {("mnist-lin", "fashion-lin"), ("fashion-lin", "mnist-lin")}
    # MNIST model -> Fashion-MNIST model: crafted on Fashion-MNIST points against the source's own predictions
    src, tgt = models[0].classifier, models[1].classifier
    x, y = pts[1].x, pts[1].y
    adv = make_attack("fgsm", 0.05).generate(src, x, predict(src, x))
    row = next(r for r in cross if r["source"] == "mnist-lin")
    correct = predict(tgt, x) == y
    assert row["n_correct"] == int(correct.sum()) and row["target_dataset"] == "fashion-mnist"
    assert row["success_rate"] == int((correct & (predict(tgt, adv) != y)).sum()) / int(correct.sum())


def test_markdown_and_the_runs_command(recorded):
    store, _ = recorded
    text = to_markdown(accuracy_table(store), ["attack", "eps", "n", "robust_accuracy", "robust_accuracy_ci95"])
    header, rule, first = text.splitlines()[:3]
    assert header == "| attack | eps | n | robust accuracy % | 95% CI |" and rule == "|---|---|---|---|---|"
    assert first.startswith("| fgsm | 0.02 | 60 | ")
    assert "min-norm" in to_markdown(norm_table(store))
    with pytest.raises(ValueError, match="columns"):
        to_markdown(accuracy_table(store), ["nope"])
    runner = CliRunner()
    listed = runner.invoke(main, ["runs", "ls", "--store", str(store.path)])
    assert listed.exit_code == 0 and "| 1 | grid | running |" in listed.output
    shown = runner.invoke(main, ["runs", "show", "1", "--store", str(store.path)])
    assert shown.exit_code == 0, shown.output
    assert "## accuracy" in shown.output and "## minimum-norm perturbations" in shown.output
    assert "| 1 | lin | mnist | pgd | linf | 0.1 | spread 60 of mnist test | 60 |" in shown.output
    missing = runner.invoke(main, ["runs", "show", "99", "--store", str(store.path)])
    assert missing.exit_code != 0 and "no run 99" in missing.output
    absent = runner.invoke(main, ["runs", "ls", "--store", str(store.path.parent / "absent.sqlite")])
    assert absent.exit_code != 0 and "no results store" in absent.output
