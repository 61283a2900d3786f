"""The command line end to end on real MNIST: train -> attack, and the demo on a small budget."""

import json

from click.testing import CliRunner

from parry.cli import main


def test_help_on_every_command():
    runner = CliRunner()
    for args in ([], ["data"], ["data", "fetch"], ["train"], ["attack"], ["demo"]):
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
