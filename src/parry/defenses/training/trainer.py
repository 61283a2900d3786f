"""The Trainer: one seeded, resumable training loop for every objective.

Every run is seeded; shows a progress bar; logs per epoch the training loss and statistics,
the clean and the robust accuracy on a held-out split (PGD-10; APGD-CE-20 for the single-step
objectives, FGSM-RS and ensemble adversarial training); keeps the ``best`` (by held-out
robust accuracy, else clean accuracy; of tied epochs the later) and the ``last`` checkpoint
with the recipe in the sidecar; and can resume after an interruption from ``resume.safetensors`` + ``resume.json``,
ending (same seed, CPU) with the same weights as an uninterrupted run.

A wall-clock budget (``minutes``) stretches the learning-rate schedule over the time
available. For single-step objectives (FGSM-RS) a catastrophic-overfitting guard (Wong et
al., ICLR 2020, Sec. 5.2) compares every epoch's held-out robust accuracy with the best one:
after a drop of more than ``guard_drop`` it rolls back to the best weights and stops. Their
held-out attack is APGD-CE (Croce & Hein 2020) with 20 iterations rather than PGD-10: a
single-step model can mask its gradients partly, which fixed-step PGD misses and the adaptive
step size does not (a Fashion-MNIST FGSM-RS model kept 67.4 % held-out under PGD-10 and 53.6 %
of its test points under APGD-CE-100, docs/benchmarks.md), so the guard and the best epoch follow
the masking-resistant figure.

With ``ema_decay``, an exponential moving average of the weights (Gowal et al. 2020; see
:mod:`parry.defenses.training.ema`) is what the held-out checks evaluate, what the ``best`` and
``last`` checkpoints hold and what the model holds when the run ends.

With ``augment`` (a :class:`~parry.defenses.training.augment.RandomCrop`), every training batch
is randomly shifted (and optionally mirrored) before the objective sees it.

With ``awp`` (a :class:`~parry.defenses.training.awp.WeightPerturbation`), every step's
gradient is taken at adversarially perturbed weights (Wu et al. 2020), restored after the step.

The fast path (``fast=True``, the default; see :mod:`parry.defenses.training.fast`) trains in
the channels-last layout and, where the device supports bf16, under bf16 autocast with fp32
losses; the recipe records what was used. ``fast=False`` trains in plain fp32 NCHW, with the
Classifier's attack fast path (:class:`parry.Classifier`) off for the run as well.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from parry.attacks.base import Attack
from parry.attacks.gradient.apgd import APGD
from parry.attacks.gradient.pgd import PGD
from parry.classifier import Classifier
from parry.defenses.training.augment import RandomCrop
from parry.defenses.training.awp import Perturbation, WeightPerturbation
from parry.defenses.training.ema import WeightAverage, check_decay
from parry.defenses.training.fast import FastPath
from parry.defenses.training.heldout import heldout_accuracy
from parry.defenses.training.objective import AdversarialObjective, Objective, Stats
from parry.defenses.training.optim import OptimizerSpec, check_schedule, lr_factor
from parry.defenses.training.resume import has_resume_state, load_resume_state, save_resume_state
from parry.validation import check_nonneg_float, check_positive_float, check_positive_int
from parry.zoo.checkpoint import save_checkpoint

logger = logging.getLogger("parry.training")

Evaluator = Callable[[Classifier], dict[str, Any]]
DEFAULT_GUARD_DROP = 0.2
DEFAULT_EVAL_STEPS = 10
DEFAULT_GUARD_EVAL_STEPS = 20


class Trainer:
    """Train a :class:`Classifier` with an :class:`Objective`.

    Args:
        model: the classifier, trained in place on its current device.
        objective: the training loss (``Standard()``, ``PGDAT(0.3)``, ``TRADES(0.3)``, ...).
        optimizer: optimiser spec (default SGD, lr 0.1, momentum 0.9, weight decay 5e-4).
        schedule: 'constant', 'cosine', 'step' or 'one-cycle', over the steps or the time budget.
        epochs: number of epochs; with ``minutes`` also given, a cap.
        minutes: wall-clock budget (training and held-out checks); the schedule follows the time.
        batch_size, seed: the mini-batch size and the seed of everything random.
        eval_set: held-out split (``batches(...)`` and a length) checked after every epoch.
        eval_attack: the held-out attack; 'auto' is PGD-10 at the objective's eps (seeded), none
            for objectives without eps, and APGD-CE-20 for objectives that need the overfitting
            guard (the single-step FGSMRS and EnsembleAT): fixed-step PGD misses their partial
            gradient masking.
        guard_drop: catastrophic-overfitting guard, an absolute drop of held-out robust accuracy;
            'auto' is 0.2 for objectives that need it (FGSM-RS) and off otherwise; None disables.
        out_dir: where ``best``/``last`` checkpoints, ``log.jsonl`` and the resume state go.
        architecture, arch_kwargs, dataset: for the checkpoints (see ``parry.zoo.save_checkpoint``).
        save_every: also write the resume state every this many steps (default: each epoch).
        eps_ramp_epochs: raise the training eps linearly from 0 over this many epochs (an
            adversarial objective only), which avoids the stall of a cold start at MNIST's eps 0.3.
        evaluator: replaces the held-out check: ``evaluator(model) -> {'clean_accuracy': ...,
            'robust_accuracy': ...}`` (for custom evaluations and tests).
        callback: called after every optimiser step with the global step count.
        log: called with every epoch's record.
        fast: the fast path: channels-last layout for the model and batches during the training
            steps, and bf16 autocast (fp32 losses) where the model's device supports bf16;
            False trains in plain fp32. Held-out checks always run in fp32.
        ema_decay: keep an exponential moving average of the weights with this per-step decay
            (e.g. 0.995), and evaluate, checkpoint and return it; None (default): no average.
        augment: a :class:`~parry.defenses.training.augment.RandomCrop` applied to every training
            batch (drawn from the run's seeded generator); None (default): the batches as they are.
        awp: a :class:`~parry.defenses.training.awp.WeightPerturbation` (adversarial weight
            perturbation; the objective must be a ``CraftedObjective``: PGDAT, FGSMRS, TRADES,
            MART); None (default): none.
    """

    def __init__(self, model: Classifier, objective: Objective, *, optimizer: OptimizerSpec | None = None,
                 schedule: str = "cosine", epochs: int | None = 10, minutes: float | None = None,
                 batch_size: int = 128, seed: int = 0, eval_set: Any = None,
                 eval_attack: Attack | str | None = "auto",
                 eval_batch_size: int = 500, guard_drop: float | str | None = "auto",
                 out_dir: str | Path | None = None, architecture: str | None = None,
                 arch_kwargs: dict[str, Any] | None = None, dataset: str | None = None,
                 save_every: int | None = None, eps_ramp_epochs: float = 0.0, progress: bool = True,
                 evaluator: Evaluator | None = None,
                 callback: Callable[[int], None] | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None, fast: bool = True,
                 ema_decay: float | None = None, augment: RandomCrop | None = None,
                 awp: WeightPerturbation | None = None) -> None:
        if not isinstance(model, Classifier):
            raise ValueError(f"model: expected a parry Classifier, got {type(model).__name__}")
        if not isinstance(objective, Objective):
            raise ValueError(f"objective: expected a parry Objective, got {type(objective).__name__}")
        optimizer = OptimizerSpec() if optimizer is None else optimizer
        if not isinstance(optimizer, OptimizerSpec):
            raise ValueError(f"optimizer: expected an OptimizerSpec, got {type(optimizer).__name__}")
        if epochs is None and minutes is None:
            raise ValueError("epochs: give epochs, minutes or both")
        self.epochs = None if epochs is None else check_positive_int(epochs, "epochs")
        self.minutes = check_positive_float(minutes, "minutes", allow_none=True)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.seed = check_positive_int(seed, "seed", minimum=0)
        self.eval_batch_size = check_positive_int(eval_batch_size, "eval_batch_size")
        self.save_every = None if save_every is None else check_positive_int(save_every, "save_every")
        self.schedule = check_schedule(schedule)
        self.eps_ramp_epochs = float(check_nonneg_float(eps_ramp_epochs, "eps_ramp_epochs"))
        if self.eps_ramp_epochs > 0 and not isinstance(objective, AdversarialObjective):
            raise ValueError(f"eps_ramp_epochs: {type(objective).__name__} has no eps to ramp up")
        if eval_set is not None and (not callable(getattr(eval_set, "batches", None)) or len(eval_set) < 1):
            raise ValueError("eval_set: needs a batches(...) method and at least one sample")
        if evaluator is not None and not callable(evaluator):
            raise ValueError(f"evaluator: must be callable, got {type(evaluator).__name__}")
        for name, fn in (("callback", callback), ("log", log)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{name}: must be callable or None, got {type(fn).__name__}")
        self.model, self.objective, self.optimizer = model, objective, optimizer
        self.eval_set, self.evaluator, self.progress = eval_set, evaluator, progress
        self.callback, self.log = callback, log
        self.eval_attack = self._eval_attack(eval_attack)
        self.guard_drop = self._guard(guard_drop)
        self.out_dir = None if out_dir is None else Path(out_dir)
        if self.out_dir is not None and (architecture is None or dataset is None):
            raise ValueError("architecture: out_dir needs architecture and dataset to write checkpoints")
        if self.out_dir is None and self.save_every is not None:
            raise ValueError("save_every: needs out_dir for the resume state")
        self.architecture, self.arch_kwargs, self.dataset = architecture, dict(arch_kwargs or {}), dataset
        self.fast = FastPath.choose(fast, model.device)
        self.ema_decay = None if ema_decay is None else check_decay(ema_decay)
        if augment is not None and not isinstance(augment, RandomCrop):
            raise ValueError(f"augment: expected a RandomCrop or None, got {type(augment).__name__}")
        self.augment = augment
        if awp is not None:
            if not isinstance(awp, WeightPerturbation):
                raise ValueError(f"awp: expected a WeightPerturbation or None, got {type(awp).__name__}")
            awp.check_objective(objective)
        self.awp = awp

    # ----------------------------------------------------------------- configuration
    def _eval_attack(self, eval_attack: Attack | str | None) -> Attack | None:
        if eval_attack == "auto":
            if self.eval_set is None or not isinstance(self.objective, AdversarialObjective):
                return None
            if self.objective.needs_overfit_guard:
                return APGD(self.objective.eps, self.objective.norm, steps=DEFAULT_GUARD_EVAL_STEPS, seed=self.seed)
            return PGD(self.objective.eps, self.objective.norm, steps=DEFAULT_EVAL_STEPS, seed=self.seed)
        if eval_attack is not None and not isinstance(eval_attack, Attack):
            raise ValueError(f"eval_attack: expected a parry Attack, 'auto' or None, got {eval_attack!r}")
        if eval_attack is not None and self.eval_set is None:
            raise ValueError("eval_attack: needs eval_set, the held-out split to attack")
        return eval_attack

    def _guard(self, guard_drop: float | str | None) -> float | None:
        has_check = self.evaluator is not None or self.eval_attack is not None
        if guard_drop == "auto":
            if not self.objective.needs_overfit_guard:
                return None
            if not has_check:
                warnings.warn(f"{self.objective.name} can overfit catastrophically, but without eval_set (or "
                              "an evaluator) the held-out guard is off", stacklevel=3)
                return None
            return DEFAULT_GUARD_DROP
        if guard_drop is None:
            return None
        drop = check_positive_float(guard_drop, "guard_drop")
        if drop >= 1:
            raise ValueError(f"guard_drop: an accuracy drop must lie in (0, 1), got {guard_drop}")
        if not has_check:
            raise ValueError("guard_drop: the guard needs eval_set (and an eval attack) or an evaluator")
        return drop

    def recipe(self, train_set: Any) -> dict[str, Any]:
        """Everything that determines the run, JSON-friendly (written into every checkpoint)."""
        attack = None
        if self.eval_attack is not None:
            attack = {"name": type(self.eval_attack).__name__, **self.eval_attack.params()}
        return {"trainer": "parry.defenses.training.Trainer", "version": 1, "objective": self.objective.params(),
                "optimizer": self.optimizer.params(), "schedule": self.schedule, "epochs": self.epochs,
                "minutes": self.minutes, "batch_size": self.batch_size, "seed": self.seed,
                "train_set": getattr(train_set, "name", None), "train_size": len(train_set),
                "eval_points": None if self.eval_set is None else len(self.eval_set), "eval_attack": attack,
                "guard_drop": self.guard_drop, "eps_ramp_epochs": self.eps_ramp_epochs,
                "fast": self.fast.params(), "ema_decay": self.ema_decay,
                **({} if self.augment is None else {"augment": self.augment.params()}),
                **({} if self.awp is None else {"awp": self.awp.params()})}

    # ----------------------------------------------------------------- the run
    def fit(self, train_set: Any, *, resume: bool = False) -> dict[str, Any]:
        """Train on ``train_set``; with ``resume``, continue from ``out_dir``'s resume state when there is one.

        Returns the history: ``epochs`` (the per-epoch records), ``best_epoch``, ``best_score``,
        ``steps``, ``stopped`` (why the run ended early, or None) and ``wall_time_s``. The model
        ends in eval mode (with the best weights after a guard rollback).
        """
        if not callable(getattr(train_set, "batches", None)) or not hasattr(train_set, "__len__"):
            raise ValueError(f"train_set: needs a batches(...) method and a length, got {type(train_set).__name__}")
        size = len(train_set)
        if size < 2:
            raise ValueError(f"train_set: needs at least 2 samples, got {size}")
        if resume and self.out_dir is None:
            raise ValueError("resume: needs out_dir, where the resume state is kept")
        recipe = json.loads(json.dumps(self.recipe(train_set), default=str))
        run = _Run(self, train_set, recipe)
        if resume and has_resume_state(self.out_dir):
            run.restore()
        else:
            torch.manual_seed(self.seed)
        return run.loop()


class _Run:
    """The state of one call of :meth:`Trainer.fit`."""

    def __init__(self, trainer: Trainer, train_set: Any, recipe: dict[str, Any]) -> None:
        self.t, self.train_set, self.recipe = trainer, train_set, recipe
        size, bs = len(train_set), trainer.batch_size
        self.drop_last = size % bs == 1  # BatchNorm cannot train on a batch of one
        self.steps_per_epoch = size // bs + (size % bs > 1)
        self.total_steps = None if trainer.epochs is None else trainer.epochs * self.steps_per_epoch
        model = trainer.model
        self.device = model.device
        self.opt = trainer.optimizer.build(model.parameters())
        # On the CPU whatever the model's device: drawing the attacks' seeds from it never syncs a GPU.
        self.generator = torch.Generator().manual_seed(trainer.seed)
        self.best: dict[str, torch.Tensor] | None = None
        self.average = None if trainer.ema_decay is None else WeightAverage(model, trainer.ema_decay)
        self.meta: dict[str, Any] = {"epoch": 0, "step": 0, "step_in_epoch": 0, "elapsed_s": 0.0, "sums": {},
                                     "seen": 0, "best_score": None, "best_epoch": None, "best_robust": None,
                                     "history": [], "stopped": None, "finished": False, "recipe": recipe}

    def restore(self) -> None:
        def same_recipe(meta: dict[str, Any]) -> None:
            if meta.get("recipe") != self.recipe:
                raise ValueError(f"resume: the resume state in {self.t.out_dir} belongs to another recipe; "
                                 "use another out_dir or the same settings")

        self.meta, self.best, average = load_resume_state(self.t.out_dir, model=self.t.model, optimizer=self.opt,
                                                          generator=self.generator, check=same_recipe)
        self.t.objective.load_state(self.meta.get("objective_state", {}))
        if self.average is not None:
            if average is None:
                raise ValueError(f"resume: the resume state in {self.t.out_dir} has no weight average")
            self.average.load(average, self.meta["average_updates"])

    def save_resume(self) -> None:
        if self.t.out_dir is not None:
            self.meta["objective_state"] = self.t.objective.state()
            average = None
            if self.average is not None:
                self.meta["average_updates"], average = self.average.updates, self.average.average
            save_resume_state(self.t.out_dir, model=self.t.model, optimizer=self.opt, generator=self.generator,
                              best=self.best, meta=self.meta, average=average)

    def progress(self, elapsed: float) -> float:
        if self.t.minutes is not None:
            return elapsed / (60.0 * self.t.minutes)
        return self.meta["step"] / self.total_steps

    def time_up(self, elapsed: float) -> bool:
        return self.t.minutes is not None and elapsed >= 60.0 * self.t.minutes

    def loop(self) -> dict[str, Any]:
        t, m, model = self.t, self.meta, self.t.model
        start = time.perf_counter() - m["elapsed_s"]
        bar = tqdm(total=self.total_steps, initial=m["step"], desc=f"train {t.objective.name}", unit="step",
                   disable=not t.progress, leave=False)
        attack_fast = model.fast  # the Classifier's own attack fast path, off in a run without one
        try:
            model.fast = attack_fast and t.fast.enabled
            with t.fast.weights(model):
                self._epochs(start, bar)
        finally:
            model.fast = attack_fast
            bar.close()
            model.eval()
        m["elapsed_s"] = time.perf_counter() - start
        self.save_resume()
        if self.average is not None and m["stopped"] is None:  # (a guard rollback holds the best weights)
            model.load_state_dict(self.average.average)
        return {"epochs": m["history"], "best_epoch": m["best_epoch"], "best_score": m["best_score"],
                "steps": m["step"], "stopped": m["stopped"], "wall_time_s": m["elapsed_s"]}

    def _epochs(self, start: float, bar: Any) -> None:
        t, m = self.t, self.meta
        while not m["finished"]:
            if (t.epochs is not None and m["epoch"] >= t.epochs) or self.time_up(time.perf_counter() - start):
                m["finished"] = True
                break
            self.train_epoch(bar, start)
            m["elapsed_s"] = time.perf_counter() - start
            self.end_epoch(bar)
            m["elapsed_s"] = time.perf_counter() - start
            if m["stopped"] is not None:
                m["finished"] = True
            self.save_resume()

    def train_epoch(self, bar: Any, start: float) -> None:
        t, m, model = self.t, self.meta, self.t.model
        sums = {k: torch.tensor(v, device=self.device) for k, v in m["sums"].items()}
        batches = self.train_set.batches(t.batch_size, shuffle=True, seed=t.seed + m["epoch"],
                                         drop_last=self.drop_last, device=self.device)
        if m["step_in_epoch"] == 0:  # else resuming inside this epoch, whose start is recorded
            m["epoch_start_s"] = time.perf_counter() - start
        for x, y in itertools.islice(batches, m["step_in_epoch"], None):
            lr = t.optimizer.lr * lr_factor(t.schedule, self.progress(time.perf_counter() - start))
            for group in self.opt.param_groups:
                group["lr"] = lr
            model.train()
            if t.augment is not None:
                x = t.augment(x, self.generator)
            with t.fast.step(model, self.device):
                loss, stats, moves = self.step_loss(t.fast.batch(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            WeightPerturbation.restore(moves)
            if self.average is not None:
                self.average.update(model)
            for key, value in stats.items():
                sums[key] = sums.get(key, torch.zeros((), device=self.device)) + value.detach().float() * y.shape[0]
            m["seen"] += y.shape[0]
            m["step"] += 1
            m["step_in_epoch"] += 1
            m["lr"] = lr
            bar.update(1)
            if t.save_every is not None and m["step"] % t.save_every == 0:
                m["sums"] = {k: v.item() for k, v in sums.items()}
                m["elapsed_s"] = time.perf_counter() - start
                self.save_resume()
            if t.callback is not None:
                t.callback(m["step"])
            if self.time_up(time.perf_counter() - start):
                m["finished"] = True
                break
        m["sums"] = {k: v.item() for k, v in sums.items()}

    def objective(self) -> Objective:
        """The objective of the next step (at a reduced eps during the warm-up)."""
        objective, ramp = self.t.objective, self.t.eps_ramp_epochs
        if ramp <= 0 or self.meta["step"] >= ramp * self.steps_per_epoch:
            return objective
        return objective.with_eps(objective.eps * self.meta["step"] / (ramp * self.steps_per_epoch))

    def step_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Stats, Perturbation]:
        """The step's loss and statistics; with AWP (from its start epoch) taken at perturbed
        weights, whose moves are returned for the restore after the optimiser's step."""
        objective, awp, model = self.objective(), self.t.awp, self.t.model
        if awp is None or self.meta["epoch"] < awp.start_epoch:
            return (*objective.loss(model, x, y, generator=self.generator), [])
        x_adv = objective.craft(model, x, y, self.generator)
        moves = awp.perturb(model, lambda: objective.loss_on(model, x, y, x_adv)[0])
        return (*objective.loss_on(model, x, y, x_adv), moves)

    def evaluate(self) -> dict[str, Any]:
        t = self.t
        if t.evaluator is not None:
            return dict(t.evaluator(t.model))
        if t.eval_set is None:
            return {}
        return heldout_accuracy(t.model, t.eval_set, t.eval_attack, t.eval_batch_size)

    def end_epoch(self, bar: Any) -> None:
        """Check, keep and log the epoch's weights (the averaged ones with an EMA)."""
        with self.average.swapped_into(self.t.model) if self.average is not None else nullcontext():
            record = self.judge_epoch()
        if "rolled_back_to_epoch" in record:
            self.t.model.load_state_dict(self.best)
        m = self.meta
        m["history"].append(record)
        m.update(epoch=m["epoch"] + 1, step_in_epoch=0, sums={}, seen=0)
        bar.set_postfix({k: f"{record[k]:.4f}" for k in ("loss", "clean_accuracy", "robust_accuracy") if k in record})
        self.write_log(record)

    def judge_epoch(self) -> dict[str, Any]:
        """The epoch's record after the held-out check, the guard and the checkpoints."""
        t, m, model = self.t, self.meta, self.t.model
        seen = max(m["seen"], 1)
        record: dict[str, Any] = {"epoch": m["epoch"] + 1, "steps": m["step"], "lr": m.get("lr"),
                                  **{k: v / seen for k, v in m["sums"].items()}}
        if not math.isfinite(record.get("loss", 0.0)):
            raise FloatingPointError(f"training diverged in epoch {record['epoch']} (loss {record['loss']}); "
                                     f"lower the learning rate (now {t.optimizer.lr})")
        record.update(self.evaluate())
        record["time_s"] = m["elapsed_s"] - m.get("epoch_start_s", 0.0)
        robust = record.get("robust_accuracy")
        score = robust if robust is not None else record.get("clean_accuracy")
        if (t.guard_drop is not None and robust is not None and m["best_robust"] is not None
                and m["best_robust"] - robust > t.guard_drop):
            model.load_state_dict(self.best)  # for the "last" checkpoint; end_epoch keeps it
            m["stopped"] = (f"catastrophic overfitting: held-out robust accuracy fell from {m['best_robust']:.4f} "
                            f"to {robust:.4f} in epoch {record['epoch']}; rolled back to epoch {m['best_epoch']}")
            record["rolled_back_to_epoch"] = m["best_epoch"]
            logger.warning(m["stopped"])
            if t.progress:
                tqdm.write(m["stopped"])
        elif score is not None and (m["best_score"] is None or score >= m["best_score"]):
            m["best_score"], m["best_epoch"], m["best_robust"] = score, record["epoch"], robust
            self.best = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.checkpoint("best", record)
        if self.best is None:  # no held-out check: the last epoch is the best one known
            m["best_epoch"] = record["epoch"]
        self.checkpoint("last", record)
        return record

    def checkpoint(self, name: str, record: dict[str, Any]) -> None:
        t = self.t
        if t.out_dir is None:
            return
        metrics = dict(record)
        if "rolled_back_to_epoch" in record:  # the weights are those of the best epoch
            metrics = {**next(r for r in self.meta["history"] if r["epoch"] == record["rolled_back_to_epoch"]),
                       "rolled_back_from_epoch": record["epoch"]}
        save_checkpoint(t.out_dir / name, t.model, architecture=t.architecture, arch_kwargs=t.arch_kwargs,
                        dataset=t.dataset, recipe=self.recipe, metrics=metrics)

    def write_log(self, record: dict[str, Any]) -> None:
        t = self.t
        if t.out_dir is not None:
            t.out_dir.mkdir(parents=True, exist_ok=True)
            with open(t.out_dir / "log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record, default=str) + "\n")
        if t.log is not None:
            t.log(record)
