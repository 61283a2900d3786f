"""The side-by-side experiment driver (experiments/defences.py) at smoke size: every step runs,
the table is written, and a second run resumes instead of redoing the work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "defences.py"


@pytest.mark.slow
def test_defences_driver_runs_resumes_and_tables(tmp_path):
    args = [sys.executable, str(SCRIPT), "--dataset", "mnist", "--rows", "standard,lipschitz", "--epochs", "1",
            "--limit", "256", "--points", "10", "--audit-points", "10", "--preset", "fast", "--out", str(tmp_path)]
    first = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    table = (tmp_path / "mnist-table.md").read_text().splitlines()
    assert table[0].startswith("| defence | clean (test) |") and len(table) == 4
    standard, lipschitz = table[2].split(" | "), table[3].split(" | ")
    assert standard[0] == "| standard" and standard[8] == "-"  # no certificate for a plain CNN
    assert lipschitz[0] == "| lipschitz" and "/" in lipschitz[8]
    assert all(v in ("pass", "suspicious", "fail") for v in (standard[7], lipschitz[7]))
    again = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "$ parry train" not in again.stdout and "$ parry audit" not in again.stdout
    assert again.stdout.count("0 of 3 work items run") == 2  # the store skips what it has
    assert (tmp_path / "mnist-table.md").read_text().splitlines() == table


def test_defences_driver_has_the_cifar_rows(tmp_path):
    args = [sys.executable, str(SCRIPT), "--dataset", "cifar10-jpeg", "--dry-run", "--out", str(tmp_path)]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    trained = [line.split("--recipe ")[1].split()[0] for line in run.stdout.splitlines() if "$ parry train" in line]
    assert trained == ["cifar10-jpeg-standard", "cifar10-jpeg-standard", "cifar10-jpeg-pgd-at",
                       "cifar10-jpeg-pgd7-at"]


def test_defences_driver_passes_the_seed_to_every_training_run(tmp_path):
    args = [sys.executable, str(SCRIPT), "--dataset", "fashion", "--rows", "pgd-at", "--seed", "3", "--dry-run",
            "--out", str(tmp_path)]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    trained = [line for line in run.stdout.splitlines() if "$ parry train" in line]
    assert len(trained) == 2 and all("--seed 3" in line for line in trained)


def test_defences_driver_passes_every_teacher_in_the_recipes_order(tmp_path):
    args = [sys.executable, str(SCRIPT), "--dataset", "fashion", "--rows", "kd-at-ema-madry-awp-flip", "--dry-run",
            "--out", str(tmp_path)]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    student = [line for line in run.stdout.splitlines() if "--recipe fashion-kd-at" in line]
    teachers = [str(tmp_path / t / "best") for t in ("fashion-pgd5-at-ema-madry-awp2-flip", "fashion-standard")]
    assert len(student) == 1 and f"--teacher {teachers[0]} --teacher {teachers[1]}" in student[0]
