"""The command line end to end on real MNIST: train -> attack, and the demo on a small budget."""

import json

from click.testing import CliRunner

from parry.attacks.autoattack import autoattack
from parry.cli import main
from parry.zoo import save_checkpoint


def test_help_on_every_command():
    runner = CliRunner()
    for args in ([], ["data"], ["data", "fetch"], ["train"], ["attack"], ["evaluate"], ["demo"]):
        result = runner.invoke(main, [*args, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, args


def test_train_then_attack(tmp_path, data_root, mirror_url, monkeypatch):
    if mirror_url:
        monkeypatch.setenv("PARRY_OFFLINE", "1")
    runner = CliRunner()
    common = ["--data-root", str(data_root), "--device", "cpu"] + (["--mirror", mirror_url] if mirror_url else [])
    ckpt = tmp_path / "madry"
    trained = runner.invoke(main, ["train", "--arch", "madry-mnist", "--dataset", "mnist", "--limit", "2048",
                                   "--optimizer", "adam", "--lr", "0.001", "--out", str(ckpt), "--no-progress",
                                   *common])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "attack.json"
    attacked = runner.invoke(main, ["attack", "--model", str(ckpt), "--attack", "fgsm", "--attack", "pgd",
                                    "--eps", "0.05", "--eps", "0.3", "--steps", "10", "-n", "100",
                                    "--out", str(out), "--no-progress", *common])
    assert attacked.exit_code == 0, attacked.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["attack"], r["threat"]["eps"]) for r in rows] == [("fgsm", 0.05), ("fgsm", 0.3), ("pgd", 0.05), ("pgd", 0.3)]
    assert all(r["n"] == 100 for r in rows)
    pgd = {r["threat"]["eps"]: r["robust_accuracy"] for r in rows if r["attack"] == "pgd"}
    assert pgd[0.3] <= pgd[0.05]
    assert "| pgd | linf | 0.3 | 100 |" in attacked.output


def test_attack_rejects_bad_options(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["attack", "--model", str(tmp_path / "missing"), "--attack", "nope"])
    assert result.exit_code != 0 and "nope" in result.output
    result = runner.invoke(main, ["attack", "--model", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "missing" in result.output


def test_demo_on_a_small_budget_writes_its_report(tmp_path, data_root, mirror_url, monkeypatch):
    if mirror_url:
        monkeypatch.setenv("PARRY_OFFLINE", "1")
    runner = CliRunner()
    args = ["demo", "--out", str(tmp_path / "demo"), "--train-points", "1024", "-n", "50", "--pgd-steps", "5",
            "--device", "cpu", "--data-root", str(data_root), "--no-progress"]
    result = runner.invoke(main, args + (["--mirror", mirror_url] if mirror_url else []))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(report["rows"]) == 6 and report["evaluation"]["points"] == 50
    assert (tmp_path / "demo" / "results.md").read_text().startswith("# Parry demo")
    assert (tmp_path / "demo" / "madry-mnist.safetensors").exists()
    # the demo ends with the HTML report of its run in the results store
    index = tmp_path / "demo" / "report" / "index.html"
    assert f"report: {index}" in result.output and (tmp_path / "demo" / "results.sqlite").exists()
    html = index.read_text()
    for table in ('id="model-table"', 'id="attack-table"', 'id="curve-table"', 'id="gallery"'):
        assert table in html, table
    pgd = next(r for r in report["rows"] if r["attack"] == "PGD-5" and r["threat"]["eps"] == 0.3)
    assert f"{100 * pgd['robust_accuracy']:.2f}" in html
    assert (tmp_path / "demo" / "report" / "summary.md").read_text().startswith("# Parry demo")
    assert (tmp_path / "demo" / "report" / "leaderboard.html").exists()


def test_evaluate_prints_the_stage_table_writes_json_and_resumes(tmp_path, robust_mnist_cnn, mnist_test,
                                                                  data_root, mirror_url, monkeypatch):
    if mirror_url:
        monkeypatch.setenv("PARRY_OFFLINE", "1")
    ckpt = save_checkpoint(tmp_path / "lenet", robust_mnist_cnn, architecture="lenet", arch_kwargs={},
                           dataset="mnist", recipe={}, metrics={})
    runner = CliRunner()
    common = ["--model", str(ckpt), "--preset", "fast", "--eps", "0.3", "-n", "40", "--batch-size", "20",
              "--device", "cpu", "--data-root", str(data_root), "--no-progress",
              *(["--mirror", mirror_url] if mirror_url else [])]
    out, state = tmp_path / "eval.json", tmp_path / "eval.state"
    result = runner.invoke(main, ["evaluate", *common, "--out", str(out), "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert "| apgd-ce |" in result.output and "| apgd-t |" in result.output and "preset fast" in result.output
    report = json.loads(out.read_text())
    stages = [row["stage"] for row in report["table"]]
    assert stages == ["clean", "apgd-ce", "apgd-t"]
    accuracies = [row["accuracy"] for row in report["table"]]
    assert accuracies == sorted(accuracies, reverse=True) and report["robust_accuracy"] == accuracies[-1]
    # the same ensemble from Python on the same points gives the same number
    x, y = mnist_test.spread(40).tensors()
    direct = autoattack(0.3, "linf", preset="fast", seed=0, batch_size=20)(robust_mnist_cnn, x, y, progress=False)
    assert direct.robust_accuracy == report["robust_accuracy"]
    # a second run with the finished state file reads it back instead of attacking again
    again = runner.invoke(main, ["evaluate", *common, "--out", str(out), "--state", str(state)])
    assert again.exit_code == 0, again.output
    assert json.loads(out.read_text())["robust_accuracy"] == report["robust_accuracy"]
    subset = runner.invoke(main, ["evaluate", *common, "--attacks", "apgd-ce,nope"])
    assert subset.exit_code != 0 and "nope" in subset.output


def test_evaluate_into_the_store_resumes_then_reports(tmp_path, robust_mnist_cnn, data_root, mirror_url,
                                                       monkeypatch):
    if mirror_url:
        monkeypatch.setenv("PARRY_OFFLINE", "1")
    ckpt = save_checkpoint(tmp_path / "lenet", robust_mnist_cnn, architecture="lenet", arch_kwargs={},
                           dataset="mnist", recipe={}, metrics={})
    runner = CliRunner()
    data = ["--device", "cpu", "--data-root", str(data_root), *(["--mirror", mirror_url] if mirror_url else [])]
    store = tmp_path / "results.sqlite"
    args = ["evaluate", "--model", str(ckpt), "--store", str(store), "--attacks", "fgsm,pgd", "--eps", "0.1",
            "--eps", "0.3", "-n", "20", "--batch-size", "10", "--no-progress", *data]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "run 1 (new); 8 of 8 work items run" in first.output
    assert "| lenet | fgsm | attack | linf | 0.1 | 20 |" in first.output and "| lenet | pgd |" in first.output
    again = runner.invoke(main, args)                       # the same command: nothing left to do
    assert again.exit_code == 0, again.output
    assert "run 1 (resumed); 0 of 8 work items run, 8 already recorded" in again.output
    table = lambda out: out[out.index("| model |"):]        # noqa: E731
    assert table(again.output) == table(first.output)
    listed = runner.invoke(main, ["runs", "ls", "--store", str(store)])
    assert listed.exit_code == 0 and "| 1 | grid | finished |" in listed.output and "8/8" in listed.output
    for bad, word in ((["--state", str(tmp_path / "s")], "--state"), (["--attacks", "nope"], "nope")):
        refused = runner.invoke(main, [*args, *bad])
        assert refused.exit_code != 0 and word in refused.output
    two = runner.invoke(main, ["evaluate", "--model", str(ckpt), "--model", str(ckpt), "--eps", "0.3", *data])
    assert two.exit_code != 0 and "--store" in two.output

    out = tmp_path / "report"
    reported = runner.invoke(main, ["report", "--store", str(store), "--out", str(out), "--gallery-points", "4",
                                    *data])
    assert reported.exit_code == 0, reported.output
    for name in ("index.html", "summary.md", "leaderboard.html"):
        assert f"wrote {out / name}" in reported.output and (out / name).exists()
    html = (out / "index.html").read_text()
    assert 'id="model-table"' in html and 'id="attack-table"' in html and 'id="gallery"' in html
    assert "not a headline number" in html and "Recomputed for this page" in html
    assert runner.invoke(main, ["report", "--help"]).exit_code == 0
    for bad, word in ((["--run", "7"], "no run 7"), (["--model", "nope"], "nope")):
        refused = runner.invoke(main, ["report", "--store", str(store), "--out", str(out), *bad, *data])
        assert refused.exit_code != 0 and word in refused.output
    missing = runner.invoke(main, ["report", "--store", str(tmp_path / "none.sqlite"), "--out", str(out)])
    assert missing.exit_code != 0 and "no results store" in missing.output


def test_train_recipe_writes_best_and_last_then_resumes(tmp_path, data_root, mirror_url, monkeypatch):
    if mirror_url:
        monkeypatch.setenv("PARRY_OFFLINE", "1")
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", "--recipe", "mnist-pgd-at", "--epochs", "1", "--limit", "64", "--eval-points", "32",
            "--out", str(out), "--no-progress", "--device", "cpu", "--data-root", str(data_root),
            *(["--mirror", mirror_url] if mirror_url else [])]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "64 training images, 32 held out (attack: PGD-10)" in first.output
    # the description states the catalogue's 60 minutes; the run says what it really has
    assert "60 minutes" in first.output and "this run's budget: 1 epoch\n" in first.output
    assert "held-out robust" in first.output
    for name in ("best", "last"):
        sidecar = json.loads((out / f"{name}.json").read_text())
        recipe = sidecar["recipe"]
        assert recipe["recipe"]["name"] == "mnist-pgd-at" and recipe["recipe"]["epochs"] == 1
        assert recipe["recipe"]["train_points"] == 64 and recipe["eval_points"] == 32
        assert set(recipe["fast"]) == {"channels_last", "autocast"} and recipe["fast"]["channels_last"]
    # --resume of the finished run continues from its state: nothing is trained again
    again = runner.invoke(main, [*args, "--resume"])
    assert again.exit_code == 0, again.output
    assert "epoch 1  loss" not in again.output and "1 steps in" in again.output
    # a longer run resumes the same way only with the same recipe: another one is refused
    other = runner.invoke(main, [*args[:4], "2", *args[5:], "--resume"])
    assert other.exit_code != 0 and "resume" in str(other.exception or other.output)


def test_train_recipe_interrupted_then_resumed_equals_uninterrupted(tmp_path, data_root, mirror_url, monkeypatch):
    """Killed (KeyboardInterrupt) while epoch 2 ends, `parry train --recipe ... --resume` redoes
    epoch 2 from the state of epoch 1 and ends with the weights of an uninterrupted run."""
    import parry.cli.recipe_run as recipe_run
    import torch
    from safetensors.torch import load_file

    if mirror_url:
        monkeypatch.setenv("PARRY_OFFLINE", "1")
    runner = CliRunner()

    def args(out):
        return ["train", "--recipe", "mnist-trades", "--epochs", "2", "--limit", "48", "--eval-points", "16",
                "--batch-size", "16", "--no-fast", "--out", str(out), "--no-progress", "--device", "cpu",
                "--data-root", str(data_root), *(["--mirror", mirror_url] if mirror_url else [])]

    full = runner.invoke(main, args(tmp_path / "full"))
    assert full.exit_code == 0, full.output
    echo = recipe_run._echo_epoch

    def interrupt(record):
        echo(record)
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(recipe_run, "_echo_epoch", interrupt)
    cut = runner.invoke(main, args(tmp_path / "cut"))
    assert cut.exit_code != 0 and "epoch 2" in cut.output
    monkeypatch.setattr(recipe_run, "_echo_epoch", echo)
    resumed = runner.invoke(main, [*args(tmp_path / "cut"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "epoch 1  loss" not in resumed.output and "epoch 2  loss" in resumed.output
    a, b = load_file(tmp_path / "full" / "last.safetensors"), load_file(tmp_path / "cut" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_distillation_recipe_loads_its_teacher(tmp_path, data_root, mirror_url, monkeypatch):
    import parry.cli.recipe_run as recipe_run
    from parry.defenses.training import build, get_recipe

    if mirror_url:
        monkeypatch.setenv("PARRY_OFFLINE", "1")
    runner = CliRunner()
    common = ["--epochs", "1", "--limit", "32", "--eval-points", "16", "--no-progress", "--device", "cpu",
              "--data-root", str(data_root), *(["--mirror", mirror_url] if mirror_url else [])]
    teacher = runner.invoke(main, ["train", "--recipe", "mnist-distillation-teacher", "--out", str(tmp_path / "t"),
                                   *common])
    assert teacher.exit_code == 0, teacher.output
    student = runner.invoke(main, ["train", "--recipe", "mnist-distillation", "--teacher", str(tmp_path / "t" / "best"),
                                   "--out", str(tmp_path / "s"), *common])
    assert student.exit_code == 0, student.output
    objective = json.loads((tmp_path / "s" / "last.json").read_text())["recipe"]["objective"]
    digest = json.loads((tmp_path / "t" / "best.json").read_text())["sha256"]
    assert objective == {"name": "distillation", "temperature": 100.0,
                         "teacher": f"mnist-distillation-teacher sha256:{digest[:12]}"}
    for args, word in ((["mnist-ard", "--teacher", str(tmp_path / "t" / "best")], "trained by mnist-distillation-teacher"),
                       (["mnist-ard", "--teacher", str(tmp_path / "none")], "train it first"),
                       (["mnist-pgd-at", "--teacher", str(tmp_path / "t" / "best")], "has no teacher")):
        refused = runner.invoke(main, ["train", "--recipe", *args, "--out", str(tmp_path / "x"), *common])
        assert refused.exit_code != 0 and word in refused.output, refused.output
    several = get_recipe("fashion-kd-at-ema-madry-awp-flip", dataset="mnist", architecture="lenet",
                         teacher=("mnist-distillation-teacher", "mnist-distillation-teacher"))
    models, ids = recipe_run.load_teacher(several, [tmp_path / "t" / "best"] * 2, "cpu")
    assert len(models) == 2 and ids == (f"mnist-distillation-teacher sha256:{digest[:12]}",) * 2
    assert build(several, models, ids)[1].params()["teacher"] == list(ids)
    refused = runner.invoke(main, ["train", "--recipe", "mnist-ard", "--teacher", str(tmp_path / "t" / "best"),
                                   "--teacher", str(tmp_path / "t" / "best"), "--out", str(tmp_path / "x"), *common])
    assert refused.exit_code != 0 and "give one per teacher" in refused.output, refused.output


def test_train_recipe_refuses_bad_options(tmp_path):
    runner = CliRunner()
    for args, word in ((["--recipe", "nope"], "nope"), (["--recipe", "mnist-standard", "--lr", "0.1"], "--lr"),
                       (["--minutes", "1"], "--recipe"), ([], "--arch")):
        result = runner.invoke(main, ["train", *args, "--out", str(tmp_path / "x")])
        assert result.exit_code != 0 and word in result.output, (args, result.output)
