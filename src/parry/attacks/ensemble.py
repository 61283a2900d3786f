"""Worst case over an ensemble of attacks, survivors only (AutoAttack's protocol).

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020: run the attacks in turn, each only on the points every
earlier attack failed on; a point is robust only if it survives all of them. Robust
accuracy after every stage is reported. With a state file the run can be interrupted at any
moment and resumed: the work done so far is kept per (stage, batch) and never repeated.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..classifier import as_classifier
from ..metrics import predict, wilson_interval
from ..result import AttackResult
from ..threat import ThreatModel
from ..validation import check_inputs, check_labels, check_positive_int
from .base import Attack

STATE_VERSION = 1


@dataclass
class Stage:
    """One named attack of the ensemble."""

    name: str
    attack: Attack


@dataclass
class EnsembleResult:
    """Worst case over the stages: ``result`` is an AttackResult whose ``success`` marks the
    points some stage broke; ``stages`` lists robust accuracy after each stage."""

    result: AttackResult
    stages: list[dict[str, Any]]
    broken_by: Tensor  # per point: index of the stage that broke it, -1 if none (or misclassified)
    preset: str = "custom"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def robust_accuracy(self) -> float:
        return int(self.result.robust.sum()) / len(self.result)  # exact: the table's count / n

    def table(self) -> list[dict[str, Any]]:
        """Rows: clean, then each stage with the robust accuracy after it and its 95 % interval."""
        n = len(self.result)
        clean = int(self.result.clean_correct.sum())
        rows = [{"stage": "clean", "accuracy": clean / n, "ci95": wilson_interval(clean, n), "time_s": 0.0}]
        for s in self.stages:
            rows.append({"stage": s["name"], "accuracy": s["robust"] / n, "ci95": wilson_interval(s["robust"], n),
                         "time_s": s["time_s"], "params": s["params"]})
        return rows


def _fingerprint(model: nn.Module, x: Tensor, y: Tensor, config: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for tensor in (x, y, *model.state_dict().values()):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _atomic_save(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp,
                  metadata={"parry": json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class AttackEnsemble:
    """Run ``stages`` in turn on the points still robust; report the per-point worst case.

    Args:
        stages: the attacks, in order (cheap and strong first, as in AutoAttack).
        batch_size: points per attack call.
        preset: a label for reports.
    """

    def __init__(self, stages: Sequence[Stage], *, batch_size: int = 500, preset: str = "custom") -> None:
        if len(stages) == 0:
            raise ValueError("stages: need at least one attack")
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stages: names must be unique, got {names}")
        threats = {(s.attack.norm, repr(s.attack.eps)) for s in stages}
        if len(threats) != 1:
            raise ValueError(f"stages: every attack must share one threat model, got {sorted(threats)}")
        for s in stages:
            if not s.attack.early_stop:
                raise ValueError(f"stages: {s.name} must run in evaluation mode (early_stop=True)")
        self.stages = list(stages)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.preset = preset

    @property
    def norm(self) -> str:
        return self.stages[0].attack.norm

    @property
    def eps(self) -> Any:
        return self.stages[0].attack.eps

    def params(self) -> dict[str, Any]:
        return {"preset": self.preset, "norm": self.norm, "eps": self.eps, "batch_size": self.batch_size,
                "stages": [{"name": s.name, "attack": type(s.attack).__name__, **s.attack.params()}
                           for s in self.stages]}

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, *, state_path: str | Path | None = None,
                 progress: bool = False, on_batch: Callable[[str, int], None] | None = None) -> EnsembleResult:
        """Evaluate ``model`` on (x, y); with ``state_path`` progress is saved and resumed.

        ``on_batch(stage_name, batch_index)`` is called after each batch is saved (for tests
        and progress reporting).
        """
        clf = as_classifier(model)
        check_inputs(x, clf.bounds, clf.input_shape)
        y = check_labels(y, x.shape[0], x.device, "y", clf.num_classes)
        config = self.params()
        fingerprint = _fingerprint(clf, x, y, config)
        state = self._load_state(state_path, fingerprint, x.device) if state_path else None
        if state is None:
            clean_pred = predict(clf, x, self.batch_size)
            state = {"adv": x.clone(), "robust": clean_pred == y, "clean_pred": clean_pred,
                     "broken_by": torch.full_like(y, -1), "done": [], "stage_time": [0.0] * len(self.stages),
                     "queries": [0] * len(self.stages)}
        batches = list(torch.arange(x.shape[0], device=x.device).split(self.batch_size))
        threat = ThreatModel(self.norm, self.eps, clf.bounds)
        bar = tqdm(total=len(self.stages) * len(batches), desc="ensemble", disable=not progress, leave=False)
        for s_idx, stage in enumerate(self.stages):
            for b_idx, batch in enumerate(batches):
                bar.update(1)
                if [s_idx, b_idx] in state["done"]:
                    continue
                todo = batch[state["robust"][batch]]
                if todo.numel() > 0:
                    res = stage.attack(clf, x[todo], y[todo])
                    broken = res.success
                    if not bool(threat.subset(todo).contains(res.adv[broken], x[todo][broken]).all()):
                        raise RuntimeError(f"{stage.name} returned points outside the threat model (a bug)")
                    state["adv"][todo[broken]] = res.adv[broken]
                    state["robust"][todo[broken]] = False
                    state["broken_by"][todo[broken]] = s_idx
                    state["stage_time"][s_idx] += res.time_s
                    state["queries"][s_idx] += res.queries
                state["done"].append([s_idx, b_idx])
                if state_path:
                    self._save_state(state_path, fingerprint, state)
                if on_batch is not None:
                    on_batch(stage.name, b_idx)
        bar.close()
        return self._result(clf, x, y, threat, state)

    def _result(self, clf: nn.Module, x: Tensor, y: Tensor, threat: ThreatModel,
                state: dict[str, Any]) -> EnsembleResult:
        adv_pred = predict(clf, state["adv"], self.batch_size)
        if not torch.equal(adv_pred == y, state["robust"]):
            raise RuntimeError("ensemble: the final predictions disagree with the stages' outcomes; "
                               "the model is not deterministic (evaluate it with EOT)")
        stages = []
        for s_idx, stage in enumerate(self.stages):
            robust_after = int((state["clean_pred"] == y).sum() - ((state["broken_by"] >= 0)
                                                                   & (state["broken_by"] <= s_idx)).sum())
            stages.append({"name": stage.name, "attack": type(stage.attack).__name__,
                           "params": stage.attack.params(), "robust": robust_after,
                           "time_s": state["stage_time"][s_idx], "queries": state["queries"][s_idx]})
        result = AttackResult(
            adv=state["adv"], y=y, target=None, clean_pred=state["clean_pred"], adv_pred=adv_pred,
            success=adv_pred != y, norms=AttackResult.perturbation_norms(state["adv"], x), threat=threat,
            attack=f"ensemble:{self.preset}", params=self.params(), queries=sum(state["queries"]),
            time_s=sum(state["stage_time"]),
        )
        return EnsembleResult(result, stages, state["broken_by"], self.preset, self.params())

    @staticmethod
    def _save_state(path: str | Path, fingerprint: str, state: dict[str, Any]) -> None:
        tensors = {k: state[k] for k in ("adv", "robust", "clean_pred", "broken_by")}
        meta = {"version": STATE_VERSION, "fingerprint": fingerprint, "done": state["done"],
                "stage_time": state["stage_time"], "queries": state["queries"]}
        _atomic_save(Path(path), tensors, meta)

    @staticmethod
    def _load_state(path: str | Path, fingerprint: str, device: torch.device) -> dict[str, Any] | None:
        path = Path(path)
        if not path.exists():
            return None
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("parry", "{}"))
        if meta.get("version") != STATE_VERSION:
            raise ValueError(f"state_path: {path} has state version {meta.get('version')}, "
                             f"expected {STATE_VERSION}; delete it to start afresh")
        if meta.get("fingerprint") != fingerprint:
            raise ValueError(f"state_path: {path} belongs to another run (model, points or attack "
                             "settings differ); use another file or delete it")
        tensors = load_file(str(path), device=str(device))
        return {**tensors, "done": meta["done"], "stage_time": meta["stage_time"],
                "queries": meta["queries"]}
