"""The benchmark runner: grid, resume, minimum-norm and AutoAttack storage, transfers, and a
real run killed with SIGKILL again and again that must end with exactly the rows of an
uninterrupted run."""

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from parry import Classifier
from parry.attacks.autoattack import autoattack
from parry.attacks.registry import make_attack
from parry.data import catalogue_name
from parry.evaluate import (EvalPoints, GridAttack, ModelSpec, ResultsStore, ThreatSpec, run_grid,
                            run_transfers)
from parry.metrics import predict

SRC = str(Path(__file__).resolve().parents[1] / "src")


def linear_model(train, seed, n=2000, steps=100):
    """Logistic regression on ``n`` spread training images: ~85 % clean on MNIST in a fraction of a second."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x, y = train.spread(n).tensors()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, above all on a busy machine
    try:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return Classifier(net.eval(), num_classes=10, input_shape=(1, 28, 28))


@pytest.fixture(scope="module")
def models(mnist_train):
    return [ModelSpec("lin-a", linear_model(mnist_train, 0), "mnist"),
            ModelSpec("lin-b", linear_model(mnist_train, 1, steps=60), "mnist")]


@pytest.fixture(scope="module")
def points(mnist_test):
    return EvalPoints.spread(mnist_test, 30)


ROW_SQL = ("SELECT run_id, model, source, attack, norm, eps, point, test_index, label, clean_correct, success, robust, "
           "clean_pred, adv_pred, l0, l1, l2, linf, queries FROM outcome_rows "
           "ORDER BY model, source, attack, norm, eps, point")


def rows(path, run_column=True):
    conn = sqlite3.connect(path)
    out = [r if run_column else r[1:] for r in conn.execute(ROW_SQL)]
    conn.close()
    return out


def test_model_spec_names_trainer_checkpoints_by_their_folder(tmp_path):
    from parry.zoo import make_classifier, save_checkpoint

    clf = make_classifier("lenet", "mnist")
    for stem, name in (("run-a/best", "run-a/best"), ("run-a/last", "run-a/last"), ("ckpt/lenet", "lenet")):
        path = save_checkpoint(tmp_path / stem, clf, architecture="lenet", arch_kwargs={}, dataset="mnist",
                               recipe={}, metrics={})
        assert ModelSpec.from_checkpoint(path).name == name
    assert ModelSpec.from_checkpoint(path, name="mine").name == "mine"


def test_cli_attack_options_become_grid_attacks():
    from parry.cli.evaluate_store import grid_attacks

    got = grid_attacks("fgsm, pgd:steps=40:restarts=2:random_start=true,autoattack-standard", "fast")
    assert [(a.name, a.options) for a in got] == [("fgsm", {}), ("pgd", {"steps": 40, "restarts": 2,
                                                                       "random_start": True}),
                                                  ("autoattack-standard", {})]
    assert [a.name for a in grid_attacks(None, "fast")] == ["autoattack-fast"]
    for bad in ("pgd:steps", "pgd:=3", ","):
        with pytest.raises(ValueError, match="--attacks"):
            grid_attacks(bad, "fast")
    with pytest.raises(ValueError, match="takes no options"):
        grid_attacks("autoattack-standard:steps=3", "fast")


def test_points_are_spread_or_seeded_never_a_slice(mnist_test):
    spread = EvalPoints.spread(mnist_test, 40)
    assert torch.equal(spread.indices, torch.arange(40) * 250) and spread.selection == "spread"
    a, b = EvalPoints.permutation(mnist_test, 40, seed=3), EvalPoints.permutation(mnist_test, 40, seed=3)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.x, b.x)
    assert not torch.equal(a.indices, EvalPoints.permutation(mnist_test, 40, seed=4).indices)
    assert int(a.indices.max() - a.indices.min()) > 5000
    assert torch.equal(a.y, mnist_test.labels[a.indices])
    with pytest.raises(ValueError, match="seed"):
        EvalPoints(a.x, a.y, a.indices, "mnist", selection="permutation")


def test_grid_resumes_after_a_crash_with_the_rows_of_an_uninterrupted_run(tmp_path, models, points):
    grid = dict(attacks=["fgsm", GridAttack("pgd", {"steps": 3})], threats=[ThreatSpec("linf", (0.05, 0.1))],
                points=points, batch_size=10, progress=False)
    whole = run_grid(models, store=tmp_path / "whole.sqlite", **grid)
    assert (whole.work_total, whole.work_run, whole.work_skipped) == (24, 24, 0)

    seen = []

    def crash(info):
        seen.append(info)
        if len(seen) == 5:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after the 5th unit was recorded

    with pytest.raises(KeyboardInterrupt):
        run_grid(models, store=tmp_path / "cut.sqlite", on_unit=crash, **grid)
    again = run_grid(models, store=tmp_path / "cut.sqlite", **grid)
    assert again.resumed and again.work_skipped == 5 and again.work_run == 19
    assert rows(tmp_path / "cut.sqlite") == rows(tmp_path / "whole.sqlite")
    third = run_grid(models, store=tmp_path / "cut.sqlite", **grid)
    assert third.work_run == 0 and rows(tmp_path / "cut.sqlite") == rows(tmp_path / "whole.sqlite")
    with ResultsStore(tmp_path / "cut.sqlite") as store:
        [run] = store.runs()
        assert run["status"] == "finished" and run["units_done"] == run["units_total"] == 24
        assert len(store.outcomes(model="lin-a", attack="pgd", norm="linf", eps=0.1)[0].point) == points.n


def test_min_norm_attacks_store_per_point_norms(tmp_path, models, points):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_grid(models[:1], [GridAttack("deepfool", {"steps": 10})], [ThreatSpec("l2", (0.5,))], points, store,
                 batch_size=points.n, progress=False)
        [series] = store.outcomes(attack="deepfool")
    assert series.min_norm and series.norm == "l2" and series.eps is None
    direct = make_attack("deepfool", None, "l2", steps=10)(models[0].classifier, points.x, points.y)
    assert torch.equal(series.success, direct.success) and torch.equal(series.adv_pred, direct.adv_pred)
    for name in ("l0", "l1", "l2", "linf"):
        assert torch.allclose(series.norms[name], direct.norms[name].double())


def test_autoattack_preset_stores_each_stage_and_the_worst_case(tmp_path, models, points):
    x, y = points.x[:16], points.y[:16]
    few = EvalPoints(x, y, points.indices[:16], "mnist")
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_grid(models[:1], ["autoattack-fast"], [ThreatSpec("linf", (0.05,))], few, store, batch_size=16,
                 progress=False)
        series = {s.attack: s for s in store.outcomes()}
    assert set(series) == {"autoattack-fast", "autoattack-fast/apgd-ce", "autoattack-fast/apgd-t"}
    assert series["autoattack-fast/apgd-t"].parent == "autoattack-fast"
    first, second, worst = (series[k].robust for k in ("autoattack-fast/apgd-ce", "autoattack-fast/apgd-t",
                                                       "autoattack-fast"))
    assert not (second & ~first).any() and torch.equal(second, worst)  # cumulative, last stage = worst case
    direct = autoattack(0.05, "linf", preset="fast", seed=0, batch_size=16)(models[0].classifier, x, y)
    assert torch.equal(worst, direct.result.robust)
    assert int(first.sum()) == direct.stages[0]["robust"] and int(second.sum()) == direct.stages[1]["robust"]


def test_transfers_keep_source_and_target(tmp_path, models, points):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        result = run_transfers(models, models, ["fgsm"], [ThreatSpec("linf", (0.1,))], points, store,
                               batch_size=points.n, progress=False)
        assert result.work_total == 2  # crafted once per source, evaluated on both targets
        series = {(s.source, s.model): s for s in store.outcomes()}
    assert set(series) == {(a.name, b.name) for a in models for b in models}
    for source in models:
        adv = make_attack("fgsm", 0.1).generate(source.classifier, points.x, points.y)
        for target in models:
            s = series[source.name, target.name]
            assert s.transfer and s.source_dataset == s.model_dataset == "mnist"
            assert torch.equal(s.adv_pred, predict(target.classifier, adv))
            assert torch.equal(s.clean_pred, predict(target.classifier, points.x))


def test_points_of_the_cifar10_jpeg_copy_serve_cifar10_models_and_keep_their_name(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()
    model = ModelSpec("cifar-linear", Classifier(net, num_classes=10, input_shape=(3, 32, 32)), "cifar10")
    copy = EvalPoints(x, y, torch.arange(8) * 1250, "cifar10-jpeg", selection="spread", source_size=10000)
    store = tmp_path / "r.sqlite"
    run_grid([model], ["fgsm"], [ThreatSpec("linf", (8 / 255,))], copy, store)
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT dataset FROM point_sets").fetchall() == [("cifar10-jpeg",)]
    assert conn.execute("SELECT COUNT(*) FROM outcome_rows").fetchone() == (8,)
    conn.close()
    assert (catalogue_name("cifar10-jpeg"), catalogue_name("mnist")) == ("cifar10", "mnist")
    with pytest.raises(TypeError, match="expected a data set name"):
        catalogue_name(None)
    with pytest.raises(ValueError, match="two point sets for the data set 'cifar10'"):
        run_grid([model], ["fgsm"], [ThreatSpec("linf", (8 / 255,))], [copy, EvalPoints(
            x, y, copy.indices, "cifar10", selection="spread", source_size=10000)], tmp_path / "s.sqlite")


def test_bad_grids_are_refused(tmp_path, models, points):
    store = tmp_path / "r.sqlite"
    with pytest.raises(ValueError, match="unknown attack 'nope'"):
        run_grid(models, ["nope"], [ThreatSpec("linf", (0.1,))], points, store)
    with pytest.raises(ValueError, match="cw-l2 \\(linf\\)"):
        run_grid(models, ["cw-l2"], [ThreatSpec("linf", (0.1,))], points, store)
    with pytest.raises(ValueError, match="unique"):
        run_grid([models[0], models[0]], ["fgsm"], [ThreatSpec("linf", (0.1,))], points, store)
    with pytest.raises(ValueError, match="fashion-mnist"):
        run_grid([ModelSpec("f", models[0].classifier, "fashion-mnist")], ["fgsm"], [ThreatSpec("linf", (0.1,))],
                 points, store)
    with pytest.raises(ValueError, match="needs a radius"):
        GridAttack("pgd", min_norm=True)
    with pytest.raises(ValueError, match="eps"):
        ThreatSpec("linf", (-0.1,))
    with pytest.raises(ValueError, match="batch_size"):
        run_grid(models, ["fgsm"], [ThreatSpec("linf", (0.1,))], points, store, batch_size=0)
    with pytest.raises(ValueError, match="cannot be transferred"):
        run_transfers(models, models, ["autoattack-fast"], [ThreatSpec("linf", (0.1,))], points, store)
    assert not store.exists()  # refused before anything was written


# ------------------------------------------------------------------------------------------------
# SIGKILL: a real process, killed at random moments (and once inside a transaction), restarted.
# ------------------------------------------------------------------------------------------------

SCRIPT = r"""
import os, signal, sys, time
import torch
torch.set_num_threads(1)
from safetensors.torch import load_file
from torch import nn
from parry import Classifier
from parry.evaluate import EvalPoints, GridAttack, ModelSpec, ThreatSpec, run_grid
from parry.evaluate.store import ResultsStore

data, store_path, die_at = load_file(sys.argv[1]), sys.argv[2], int(sys.argv[3])
models = []
for name in ("lin-a", "lin-b"):
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    net.load_state_dict({"1.weight": data[name + ".weight"], "1.bias": data[name + ".bias"]})
    models.append(ModelSpec(name, Classifier(net.eval(), num_classes=10, input_shape=(1, 28, 28)), "mnist"))
points = EvalPoints(data["x"], data["y"], data["indices"], "mnist", selection="spread", source_size=10000)
if die_at > 0:  # die inside the transaction of the die_at-th unit, after its outcomes were inserted
    insert, calls = ResultsStore._insert_outcomes, []
    def dying(conn, series, unit_id, rows):
        insert(conn, series, unit_id, rows)
        calls.append(1)
        if len(calls) == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
    ResultsStore._insert_outcomes = staticmethod(dying)
def on_unit(info):
    print("unit", flush=True)
    time.sleep(0.03)
run_grid(models, ["fgsm", GridAttack("pgd", {"steps": 3}), GridAttack("deepfool", {"steps": 3})],
         [ThreatSpec("linf", (0.05, 0.1))], points, store_path, batch_size=6, progress=False, on_unit=on_unit)
print("done", flush=True)
"""


def _start(script, data, store, die_at=0):
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(data), str(store), str(die_at)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_sigkill_at_random_moments_then_resume_gives_exactly_the_uninterrupted_rows(tmp_path, models, points):
    data = tmp_path / "grid.safetensors"
    tensors = {"x": points.x, "y": points.y, "indices": points.indices}
    for m in models:
        net = m.classifier.model
        tensors[m.name + ".weight"], tensors[m.name + ".bias"] = net[1].weight.detach(), net[1].bias.detach()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(data))
    script = tmp_path / "grid.py"
    script.write_text(SCRIPT)
    killed, reference = tmp_path / "killed.sqlite", tmp_path / "reference.sqlite"

    ref = _start(script, data, reference)
    out, err = ref.communicate(timeout=120)
    assert ref.returncode == 0 and out.count("unit") == 50, err

    # 1. killed inside a transaction: the 7th unit's outcomes were inserted, never committed
    proc = _start(script, data, killed, die_at=7)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(killed)
    assert conn.execute("SELECT COUNT(*) FROM units").fetchone()[0] == 6
    assert conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0] == 6 * 6
    conn.close()

    # 2. killed at random moments: once counted from the start (while importing, registering or
    #    attacking), then three times a random fraction of a unit after its k-th unit (k random).
    #    Each unit sleeps 0.03 s after its write, so no attempt can finish the 50 units first.
    rng = random.Random(2024)
    kills = 0
    for attempt in range(4):
        proc = _start(script, data, killed)
        if attempt == 0:
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            for _ in range(rng.randint(1, 6)):
                proc.stdout.readline()
            time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        kills += proc.returncode == -signal.SIGKILL
    assert kills == 4

    # 3. the last restart runs to the end
    proc = _start(script, data, killed)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "done" in out, err

    assert rows(killed, run_column=False) == rows(reference, run_column=False)
    conn = sqlite3.connect(killed)
    assert conn.execute("SELECT COUNT(*), SUM(status = 'finished') FROM runs").fetchone() == (1, 1)
    total = conn.execute("SELECT units_total FROM runs").fetchone()[0]
    assert conn.execute("SELECT COUNT(*) FROM units").fetchone()[0] == total == 50
    assert conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0] == 10 * points.n
    assert conn.execute("SELECT COUNT(*) FROM (SELECT DISTINCT run_id, model_id, source_id, attack_id, threat_id, "
                        "point FROM outcomes)").fetchone()[0] == 10 * points.n
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
