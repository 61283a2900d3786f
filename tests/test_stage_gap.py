"""experiments/stage_gap.py refuses bad input with a clear message instead of a wrong count."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from parry.evaluate import ResultsStore
from parry.zoo import make_classifier, save_checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "stage_gap.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_stage_gap_refuses_bad_input(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m" / "best", make_classifier("lenet", "mnist"), architecture="lenet",
                    arch_kwargs={}, dataset="mnist", recipe={}, metrics={})
    store = tmp_path / "results.sqlite"
    ResultsStore(store).close()
    model = str(tmp_path / "m" / "best")

    restarts = _run("--store", str(store), "--model", model, "--restarts", "0")
    assert restarts.returncode == 2 and "--restarts: must be >= 1, got 0" in restarts.stderr

    empty = _run("--store", str(store), "--model", model)
    assert empty.returncode == 2
    assert "expected one series each of autoattack-standard/fab-t and autoattack-standard/square" in empty.stderr

    missing = _run("--store", str(tmp_path / "none.sqlite"), "--model", model)
    assert missing.returncode != 0 and "no results store at" in missing.stderr
