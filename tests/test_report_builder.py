"""The report built from a results store: every number equals the store's tables, the headline is
AutoAttack-standard where stored (else a labelled worst case), the gallery is recomputed from the
checkpoint the store recorded (or skipped with a note), and the leaderboard is sorted."""

from __future__ import annotations

import math
import re
import shutil

import pytest
import torch
from torch import nn

from parry import Classifier
from parry.evaluate import (EvalPoints, GridAttack, ModelSpec, ResultsStore, ThreatSpec, accuracy_table,
                            build_report, leaderboard_rows, robustness_curves, run_grid, run_transfers,
                            transfer_matrix, worst_case_table, write_store_report)
from parry.evaluate.report_rows import FALLBACK, HEADLINE
from parry.zoo import save_checkpoint


def linear_model(train) -> Classifier:
    """Logistic regression on 2,000 spread training images (~85 % clean, not robust), built in memory."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x, y = train.spread(2000).tensors()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return Classifier(net.eval(), num_classes=10, input_shape=(1, 28, 28))


@pytest.fixture(scope="module")
def stored(tmp_path_factory, robust_mnist_cnn, mnist_train, mnist_test):
    """A store with a grid of two models (the LeNet from a checkpoint, a linear model from memory), an
    AutoAttack-standard run of the linear model at 0.3, and transfers between the two."""
    root = tmp_path_factory.mktemp("report-store")
    ckpt = save_checkpoint(root / "ckpt" / "lenet", robust_mnist_cnn, architecture="lenet", arch_kwargs={},
                           dataset="mnist", recipe={}, metrics={})
    models = [ModelSpec.from_checkpoint(ckpt), ModelSpec("linear", linear_model(mnist_train), "mnist")]
    points = EvalPoints.spread(mnist_test, 24)
    path = root / "results.sqlite"
    linf = [ThreatSpec("linf", (0.1, 0.3))]
    with ResultsStore(path) as store:
        run_grid(models, ["fgsm", GridAttack("pgd", {"steps": 5}), GridAttack("deepfool", {"steps": 10})], linf,
                 points, store, batch_size=24, progress=False)
        run_grid(models[1:], ["autoattack-standard"], [ThreatSpec("linf", (0.3,))], points, store, batch_size=24,
                 progress=False)
        run_transfers(models, models, [GridAttack("pgd", {"steps": 5})], [ThreatSpec("linf", (0.3,))], points,
                      store, batch_size=24, progress=False)
    return {"path": path, "ckpt_dir": root / "ckpt", "mnist_test": mnist_test}


@pytest.fixture(scope="module")
def report(stored):
    with ResultsStore(stored["path"], create=False) as store:
        return build_report(store, data=lambda name, split: stored["mnist_test"])


def _store(stored) -> ResultsStore:
    return ResultsStore(stored["path"], create=False)


def test_model_rows_are_the_headline_from_the_tables(stored, report):
    with _store(stored) as store:
        worst = {(r["model"], r["eps"]): r for r in worst_case_table(store)}
        acc = accuracy_table(store)
    rows = {(m.name, m.eps): m for m in report.models}
    assert sorted(rows) == sorted(worst) == [("lenet", 0.1), ("lenet", 0.3), ("linear", 0.1), ("linear", 0.3)]
    [aa] = [r for r in acc if r["attack"] == HEADLINE and r["kind"] == "ensemble"]
    headline = rows["linear", 0.3]
    assert headline.ensemble == HEADLINE and headline.notes.startswith("points:")
    assert (headline.robust_accuracy, headline.clean_accuracy) == (aa["robust_accuracy"], aa["clean_accuracy"])
    for key in (("lenet", 0.1), ("lenet", 0.3), ("linear", 0.1)):
        row, wc = rows[key], worst[key]
        assert row.ensemble == FALLBACK and "not a headline number" in row.notes
        assert (row.robust_accuracy, row.clean_accuracy, row.n) == (wc["robust_accuracy"], wc["clean_accuracy"], 24)
        assert wc["strongest_attack"] in row.notes
    assert rows["lenet", 0.3].checkpoint_sha256 == worst["lenet", 0.3]["model_sha256"]
    assert rows["linear", 0.3].checkpoint_sha256 is None and "no checkpoint file" in rows["linear", 0.3].notes
    assert all(m.seed == 0 and m.norm == "linf" for m in report.models)


def test_attack_rows_curves_and_transfers_equal_the_tables(stored, report):
    with _store(stored) as store:
        acc = accuracy_table(store)
        curves = robustness_curves(store)
        sources, targets, matrix = transfer_matrix(store, attack="pgd", norm="linf", eps=0.3)
    fixed = {(a.model, a.attack, a.eps): a for a in report.attacks if "(min-norm)" not in a.attack}
    assert len(fixed) == len(acc)
    for r in acc:
        a = fixed[r["model"], r["attack"], r["eps"]]
        assert (a.robust_accuracy, a.n) == (r["robust_accuracy"], r["n"])
        assert a.success_rate == r["attack_success_rate"] or math.isnan(a.success_rate)
        assert set(a.median_norms) == {"l2", "linf"}
    assert any(a.attack.startswith(f"{HEADLINE}/") and a.params.startswith("cumulative") for a in report.attacks)
    deepfool = [a for a in report.attacks if a.attack == "deepfool (min-norm)"]
    assert sorted((a.model, a.eps) for a in deepfool) == [("lenet", 0.1), ("lenet", 0.3), ("linear", 0.1),
                                                           ("linear", 0.3)]
    drawn = {(c.model, c.attack): dict(c.points) for c in report.curves}
    assert not any("/" in attack for _, attack in drawn)       # AutoAttack stages are left out of the figure
    for r in curves:
        if "/" in r["attack"]:
            continue
        label = r["attack"] + (" (min-norm)" if r["basis"] == "min-norm" else "")
        assert drawn[r["model"], label][r["eps"]] == r["robust_accuracy"]
    t = report.transfer
    assert (t.sources, t.targets, t.attack, t.eps) == (tuple(sources), tuple(targets), "pgd", 0.3)
    assert (torch.tensor(t.success_rate, dtype=torch.float32) == matrix).all()
    assert report.provenance.ensemble == HEADLINE and "apgd-t" in report.provenance.ensemble_params
    assert report.provenance.versions["torch"] == torch.__version__
    assert "only the gallery images" in report.provenance.settings["recomputed"]


def test_gallery_is_recomputed_from_the_recorded_checkpoint(report, stored):
    g = report.gallery
    assert g is not None and len(g) == 8
    assert "Recomputed for this page" in g.caption and "lenet" in g.caption and "eps 0.3" in g.caption
    assert float(abs(torch.tensor(g.adversarial) - torch.tensor(g.clean)).max()) <= 0.3 + 1e-6
    assert any(a != y for a, y in zip(g.adv_pred, g.labels))
    x, y = stored["mnist_test"].tensors()
    test_index = [int(i) for i in re.search(r"test indices ([\d, ]+)\)", g.caption).group(1).split(", ")]
    assert torch.equal(torch.tensor(g.clean), x[test_index]) and list(g.labels) == y[test_index].tolist()


def test_gallery_is_skipped_with_a_note_without_a_checkpoint(stored):
    data = lambda name, split: stored["mnist_test"]  # noqa: E731
    with _store(stored) as store:
        memory = build_report(store, gallery_model="linear", data=data)
        assert memory.gallery is None and "evaluated from memory" in memory.provenance.settings["gallery"]
        moved = stored["ckpt_dir"].with_name("moved")
        shutil.move(stored["ckpt_dir"], moved)
        try:
            missing = build_report(store, data=data)
        finally:
            shutil.move(moved, stored["ckpt_dir"])
        assert missing.gallery is None and "is missing" in missing.provenance.settings["gallery"]
        assert [m.robust_accuracy for m in missing.models] == [m.robust_accuracy for m in memory.models]
        with pytest.raises(ValueError, match="gallery_model"):
            build_report(store, gallery_model="nope", data=data)


def test_leaderboard_is_sorted_and_written(stored, tmp_path):
    with _store(stored) as store:
        rows = leaderboard_rows(store)
        paths, data = write_store_report(store, tmp_path / "report", runs=[1], models=["lenet"], gallery_points=0)
        with pytest.raises(ValueError, match="run_id"):
            build_report(store, runs=[99])
        with pytest.raises(ValueError, match="models"):
            build_report(store, models=["nope"])
    keys = [(r.dataset, r.norm, r.eps, r.ensemble != "autoattack-standard", -r.robust_accuracy, -r.clean_accuracy,
             r.name) for r in rows]
    assert keys == sorted(keys) and len(rows) == 4
    assert [r.name for r in rows if r.eps == 0.1] == ["lenet", "linear"]   # the robust LeNet ranks first
    # at 0.3 only the linear model has the AutoAttack headline: a worst case of FGSM/PGD/DeepFool
    # never outranks it, however high
    assert [r.name for r in rows if r.eps == 0.3] == ["linear", "lenet"]
    assert [m.name for m in data.models] == ["lenet", "lenet"] and data.gallery is None and data.transfer is None
    board = paths.leaderboard.read_text()
    assert board.index("lenet") < board.index("linear")                       # every model of the store
    html = paths.index.read_text()
    assert 'id="model-table"' in html and 'id="attack-table"' in html and 'id="curve-table"' in html
    assert "linear" not in html.split('id="provenance"')[0]
    assert paths.summary.read_text().startswith("# Robustness report: lenet")
