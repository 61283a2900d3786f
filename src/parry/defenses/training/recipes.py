"""Named training recipes: everything a robust-training run needs, as data.

A :class:`Recipe` names the architecture, data set, objective and its parameters, optimiser,
learning-rate schedule, epochs and/or wall-clock minutes, batch size, eps warm-up, seed, the
size of the held-out validation split (drawn, seeded, from the training split) and whether the
Trainer's fast path is on. ``get_recipe(name, **overrides)`` returns a catalogue entry, with
fields replaced; ``build(recipe)`` returns ``(classifier, objective, trainer_kwargs)`` so that
``RecipeTrainer(classifier, objective, recipe=recipe, **trainer_kwargs)`` (or the plain
:class:`~parry.defenses.training.Trainer`) runs it. ``parry train --recipe NAME`` does it all.

The catalogue (eps in pixel space [0, 1]). For MNIST (Linf 0.3, prefix ``mnist-``) and
Fashion-MNIST (Linf 0.1, prefix ``fashion-``), the same set of defences, side by side in
``docs/results.md``; the TRADES SmallCNN unless said otherwise, Adam at 1e-3:

- ``standard``: the undefended baseline; cross-entropy, 5 epochs.
- ``pgd-at``: PGD-10 adversarial training (Madry et al., ICLR 2018), eps ramped up over the
  first epochs (3 on MNIST, 2 on Fashion-MNIST), 60 minutes (the issue's 2-core CPU budget; at
  most 40 epochs).
- ``pgd-at-ema``: the same, evaluated and kept as the exponential moving average of its weights
  (decay 0.999 per step, about 2.4 epochs of MNIST; Gowal et al. 2020).
- ``trades``: TRADES (Zhang et al., ICML 2019), 10 KL-ascent steps, beta 1 on MNIST (the
  paper's MNIST value) and 6 on Fashion-MNIST; warm-up and budget as PGD-AT.
- ``mart``: MART (Wang et al., ICLR 2020) with its default beta, 10 steps; as PGD-AT.
- ``fgsm-rs``: fast FGSM-RS (Wong et al., ICLR 2020), step 1.25 eps, Adam with the one-cycle rate
  peaking at 5e-3, 10 epochs, with the held-out guard (APGD-CE-20) against catastrophic
  overfitting. On MNIST eps is warmed up over 3 epochs: from a cold start at 0.3 the run
  overfitted catastrophically in its third epoch (held-out PGD 21 % to 1 %; measured at stop 13).
- ``gradient-reg``: input-gradient regularisation (double backpropagation, lambda 10), 10 epochs.
- ``gradient-reg-lipschitz``: the same on the spectrally normalised ``lipschitz-mnist``.
- ``lipschitz``: ``lipschitz-mnist`` with the Lipschitz-margin loss at L2 radius 1 (Tsuzuku et
  al., NeurIPS 2018), 20 epochs; certified by its Lipschitz bound.
- ``pgd-at-ema-madry`` (Fashion-MNIST only): ``pgd-at-ema`` on the wider ``madry-mnist`` CNN
  (3.3M parameters; the SmallCNN's held-out accuracies flattened after about 25 of 40 epochs).
- ``pgd-at-ema-madry-crop`` (Fashion-MNIST only): the same with random crops (shifts of up to 2
  pixels) of the training images, against the Madry CNN's robust overfitting (its held-out PGD
  accuracy flattened after 16 epochs while its training loss kept falling).
- ``pgd-at-ema-madry-awp`` (Fashion-MNIST only): ``pgd-at-ema-madry`` with adversarial weight
  perturbation (Wu et al., NeurIPS 2020; gamma 5e-3, the paper's value, from epoch 2, the end
  of the eps warm-up), the other remedy for robust overfitting.
- ``pgd-at-ema-madry-awp-flip`` (Fashion-MNIST only): ``pgd-at-ema-madry-awp`` with half of the
  training images mirrored left to right (no shift): a milder augmentation than the crops, which
  did not pay within the budget, against the same overfitting (Rebuffi et al., NeurIPS 2021:
  augmentation helps adversarial training together with a weight average).
- ``pgd5-at-ema-madry-awp-flip`` (Fashion-MNIST only): the same with PGD-5 as the training
  attack, for about 1.5 times the steps in the 60 minutes (in ``docs/results.md``, stop 29: the
  same row; held-out robust accuracy peaks about epoch 20 and then falls).
- ``pgd5-at-ema-madry15-awp-flip`` (Fashion-MNIST only): the same on the Madry CNN with 1.5 times
  the channels (48 and 96), for more clean accuracy from capacity (Madry et al. 2018, Section 4);
  an epoch takes about 1.7 times as long, so the 60 minutes hold fewer of them.
- ``pgd5-at-ema-madry-awp2-flip`` (Fashion-MNIST only): the same with twice the weight
  perturbation (gamma 1e-2), a stronger remedy for that robust overfitting, fitted to 30 minutes.
- ``kd-at-ema-madry-awp-flip`` (Fashion-MNIST only): ``pgd5-at-ema-madry-awp-flip`` whose
  cross-entropy is mostly replaced by distillation (Chen et al., ICLR 2021: T 2, weight 0.6 for a
  robust teacher, ``pgd5-at-ema-madry-awp2-flip``, and 0.1 for a standard one,
  ``fashion-standard``) against the same overfitting, 28 minutes: 60 with the teachers' training.
- ``mixed20-at-ema-madry-awp-flip`` (Fashion-MNIST only): ``pgd5-at-ema-madry-awp-flip`` with
  0.2 of the loss on the clean images (``MixedPGDAT``; Goodfellow et al. 2015, Kurakin et al.
  2017), some robust accuracy for clean accuracy: the flips run's robust half has a margin, its
  clean half lacks half a point (in ``docs/results.md``, stop 33: the clean half met, 2 points
  lost under AutoAttack).
- ``pgd-at-ema-madry-awp-sgd`` (Fashion-MNIST only): the same with SGD (momentum 0.9, weight
  decay 5e-4, one-cycle to 0.05) instead of Adam without weight decay: the optimiser of Wu et
  al.'s AWP runs, and Pang et al. (ICLR 2021) found weight decay to matter much in adversarial
  training.
- ``pgd5-at-ema-madry-awp-sgd-flip`` (Fashion-MNIST only): ``pgd5-at-ema-madry-awp-flip`` with
  the SGD and weight decay of ``pgd-at-ema-madry-awp-sgd``: the flips and SGD each came closest
  to the robust half (80.1 % and 80.0 % under AutoAttack), never tried together (in
  ``docs/results.md``, stop 34: 86.39 % clean and 80.0 %, stop 20's SGD row again).
- ``pgd5-at-ema-madry-awp-adamw-flip`` (Fashion-MNIST only): ``pgd5-at-ema-madry-awp-flip``
  with AdamW (decoupled weight decay 0.025, Loshchilov & Hutter, ICLR 2019): the Adam rows had
  the clean accuracy and the SGD rows, with weight decay, the robust accuracy; this asks whether
  the decay, kept apart from Adam's steps, brings the second to the first. At the peak rate it
  shrinks the weights as fast as the SGD recipes' decay (2.5e-5 per step). In
  ``docs/results.md``, stop 36: 88.21 % clean and 78.8 % at the last epoch, 87.68 % and 79.8 % at
  ``best``; on the line.
- ``trades5-ema-madry-awp-flip`` (Fashion-MNIST only): ``pgd5-at-ema-madry-awp-flip`` with
  TRADES (beta 3, 5 KL-ascent steps of 0.05) in place of PGD-AT: TRADES with AWP is Wu et al.'s
  strongest row, and beta 3, half the CIFAR-10 value, aims at the clean half of the target (in
  ``docs/results.md``, stop 35: 87.68 % clean and 78.6 %, on the line of the PGD-AT rows).
- ``hat-madry`` (Fashion-MNIST only): ``pgd-at-ema-madry`` with the HAT objective (Rade &
  Moosavi-Dezfooli, ICLR 2022: TRADES plus helper examples at twice the adversarial
  perturbation, labelled by the undefended ``fashion-standard``; beta 2.5, gamma 0.5), which the
  paper finds to cost less clean accuracy at the same robustness; for the clean half of the
  Fashion-MNIST target.
- ``hat-madry-flip`` (Fashion-MNIST only): ``hat-madry`` with the flips of
  ``pgd-at-ema-madry-awp-flip``, which raised robust accuracy at the same clean accuracy (a point
  at seed 0, half a point over seeds 0 and 1): HAT bought clean accuracy, so the two together aim
  at both halves of the target (in ``docs/results.md``, stop 28, they did not help HAT).
- ``hat-madry-awp-sgd`` (Fashion-MNIST only): ``hat-madry`` with the weight perturbation and the
  SGD of ``pgd-at-ema-madry-awp-sgd``, the row that came closest to the robust half: the two
  changes that each met one half of the target, together.
- ``lipschitz-r158`` (MNIST only): the same at radius 1.58, the radius of the published L2
  comparison point, 60 epochs.
- ``distillation-teacher`` and ``distillation``: defensive distillation at T = 100 (Papernot et
  al., S&P 2016): the teacher trained at T, then the student on its soft labels, 10 epochs each.
- ``ard``: adversarially robust distillation (Goldblum et al., AAAI 2020) of the ``pgd-at``
  model into the smaller LeNet, 10 ascent steps, 60 minutes.

A recipe with a ``teacher`` names the teacher's recipe (``kd-at`` recipes a tuple of them);
``parry train`` loads each teacher's checkpoint (``--teacher PATH``, once per teacher in the
recipe's order, by default that recipe's ``best`` under ``runs/``) and refuses one trained by
another recipe.

Also, on the CIFAR-10 copy served by ``parry.data`` (the JPEG-re-encoded copy where the official
tarballs are absent), the small ``cifar-cnn`` with SGD, momentum and the one-cycle rate, every
training image randomly cropped (4 pixels) and flipped: ``cifar10-jpeg-standard`` (undefended,
10 epochs; the audit's transfer surrogate) and ``cifar10-jpeg-pgd-at`` (PGD-10, step 2/255, at
Linf 8/255, kept as the weight average with decay 0.999, 120 minutes); ``cifar10-jpeg-pgd7-at``
is the same with PGD-7, the training attack of Madry et al. (ICLR 2018) on CIFAR-10, which fits
more epochs into the 120 minutes (44 against 33 on this machine's two cores).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from parry.classifier import Classifier
from parry.defenses.training.ard import ARD
from parry.defenses.training.augment import RandomCrop
from parry.defenses.training.awp import WeightPerturbation
from parry.defenses.training.distillation import DefensiveDistillation
from parry.defenses.training.ema import check_decay
from parry.defenses.training.fgsm_rs import FGSMRS
from parry.defenses.training.gradient_reg import GradientRegularization
from parry.defenses.training.hat import HAT
from parry.defenses.training.kd_at import KnowledgeDistillationAT
from parry.defenses.training.lipschitz_margin import LipschitzMargin
from parry.defenses.training.mart import MART
from parry.defenses.training.mixed_at import MixedPGDAT
from parry.defenses.training.objective import AdversarialObjective, Objective
from parry.defenses.training.optim import OptimizerSpec, check_schedule
from parry.defenses.training.pgd_at import PGDAT
from parry.defenses.training.standard import Standard
from parry.defenses.training.trades import TRADES
from parry.defenses.training.trainer import Trainer
from parry.validation import check_nonneg_float, check_positive_float, check_positive_int
from parry.zoo.registry import ARCHITECTURES, DATASET_INFO, make_classifier

#: The objectives a recipe can name, each built from the recipe's ``objective_params``.
OBJECTIVES: dict[str, type[Objective]] = {
    "standard": Standard, "pgd-at": PGDAT, "trades": TRADES, "fgsm-rs": FGSMRS, "mart": MART,
    "gradient-reg": GradientRegularization, "lipschitz-margin": LipschitzMargin,
    "distillation": DefensiveDistillation, "ard": ARD, "hat": HAT, "kd-at": KnowledgeDistillationAT,
    "mixed-at": MixedPGDAT,
}
#: The objectives that learn from a trained teacher (distillation without one trains the teacher).
TEACHER_OBJECTIVES = {"distillation": False, "ard": True, "hat": True, "kd-at": True}  # name -> teacher required
#: The objectives that learn from several teachers at once (the recipe names a tuple of them).
SEVERAL_TEACHERS = {"kd-at"}


@dataclass(frozen=True)
class Recipe:
    """One training run, as data (JSON-friendly through :meth:`params`).

    Args:
        name: the recipe's name (kept when fields are overridden).
        description: one line for ``--help`` and the sidecar.
        architecture, arch_kwargs, dataset: the zoo architecture and the data set (``parry.data``).
        objective, objective_params: a key of :data:`OBJECTIVES` and its keyword arguments.
        optimizer: keyword arguments of :class:`OptimizerSpec` (name, lr, momentum, weight_decay).
        schedule: the learning-rate schedule ('constant', 'cosine', 'step', 'one-cycle').
        epochs, minutes: passes over the data and/or the wall-clock budget (epochs then caps).
        batch_size, seed: mini-batch size; the seed of the split, initialisation and training.
        eps_ramp_epochs: linear eps warm-up from 0 (adversarial objectives only).
        eval_points: size of the held-out validation split, taken (seeded) from the training split.
        train_points: train on this many of the remaining images, spread evenly (None: all of them).
        fast: the Trainer's fast path (channels-last; bf16 autocast where supported).
        ema_decay: per-step decay of the weights' exponential moving average, which is evaluated,
            checkpointed and returned (None: no average).
        teacher: for the distillation objectives, the name of the teacher's recipe (a tuple of
            names for an objective in :data:`SEVERAL_TEACHERS`).
        augment: keyword arguments of :class:`~parry.defenses.training.augment.RandomCrop`
            (``{"padding": 2}``, optionally ``"flip": True``) for the training batches (None: none).
        awp: keyword arguments of :class:`~parry.defenses.training.awp.WeightPerturbation`
            (``{"gamma": 5e-3, "start_epoch": 2}``): adversarial weight perturbation (None: none).
    """

    name: str
    description: str
    architecture: str
    dataset: str
    objective: str
    objective_params: Mapping[str, Any] = field(default_factory=dict)
    optimizer: Mapping[str, Any] = field(default_factory=dict)
    schedule: str = "cosine"
    epochs: int | None = 10
    minutes: float | None = None
    batch_size: int = 128
    eps_ramp_epochs: float = 0.0
    seed: int = 0
    eval_points: int = 1000
    train_points: int | None = None
    fast: bool = True
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    teacher: str | tuple[str, ...] | None = None
    ema_decay: float | None = None
    augment: Mapping[str, Any] | None = None
    awp: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: unknown {self.architecture!r}; valid: {', '.join(ARCHITECTURES)}")
        if self.dataset not in DATASET_INFO:
            raise ValueError(f"dataset: unknown {self.dataset!r}; valid: {', '.join(DATASET_INFO)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: unknown {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        for key in ("objective_params", "optimizer", "arch_kwargs"):
            if not isinstance(getattr(self, key), Mapping):
                raise ValueError(f"{key}: expected a mapping of keyword arguments, got {getattr(self, key)!r}")
        OptimizerSpec(**self.optimizer)  # refuses unknown names and bad values now, not at training time
        check_schedule(self.schedule)
        if self.epochs is None and self.minutes is None:
            raise ValueError("epochs: a recipe needs epochs, minutes or both")
        if self.epochs is not None:
            check_positive_int(self.epochs, "epochs")
        check_positive_float(self.minutes, "minutes", allow_none=True)
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.seed, "seed", minimum=0)
        check_nonneg_float(self.eps_ramp_epochs, "eps_ramp_epochs")
        check_positive_int(self.eval_points, "eval_points")
        if self.train_points is not None:
            check_positive_int(self.train_points, "train_points", minimum=2)
        if not isinstance(self.fast, bool):
            raise ValueError(f"fast: expected a bool, got {self.fast!r}")
        if self.ema_decay is not None:
            check_decay(self.ema_decay)
        self.make_augment()  # refuses bad augmentation parameters now
        if self.make_awp() is not None:
            WeightPerturbation.check_objective(OBJECTIVES[self.objective])
        if self.teacher is not None and self.objective not in TEACHER_OBJECTIVES:
            raise ValueError(f"teacher: the {self.objective} objective takes no teacher, got {self.teacher!r}")
        if self.teacher is not None:
            several = self.objective in SEVERAL_TEACHERS
            names = self.teacher if several and isinstance(self.teacher, tuple) else (self.teacher,)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise ValueError(f"teacher: expected a recipe name{' or a tuple of them' if several else ''}, "
                                 f"got {self.teacher!r}")
        if self.teacher is None and TEACHER_OBJECTIVES.get(self.objective):
            raise ValueError(f"teacher: the {self.objective} objective needs a teacher recipe")
        if self.teacher is None:
            objective = self.make_objective()  # refuses bad objective parameters now
            if self.eps_ramp_epochs > 0 and not isinstance(objective, AdversarialObjective):
                raise ValueError(f"eps_ramp_epochs: the {self.objective} objective has no eps to ramp up")

    @property
    def teachers(self) -> tuple[str, ...]:
        """The teachers' recipe names (empty without a teacher)."""
        return (self.teacher,) if isinstance(self.teacher, str) else tuple(self.teacher or ())

    def make_objective(self, teacher: Classifier | tuple[Classifier, ...] | None = None,
                       teacher_id: str | tuple[str, ...] | None = None) -> Objective:
        """The recipe's objective; ``teacher`` (and how to name it; tuples of them for a recipe with
        several teachers) for a recipe with a teacher."""
        if (teacher is None) != (self.teacher is None):
            raise ValueError(f"teacher: the recipe {self.name} {'needs' if self.teacher else 'takes no'} teacher")
        extra = {} if teacher is None else {"teacher": teacher, "teacher_id": teacher_id}
        try:
            return OBJECTIVES[self.objective](**extra, **self.objective_params)
        except TypeError as exc:
            raise ValueError(f"objective_params: {self.objective}: {exc}") from exc

    def make_augment(self) -> RandomCrop | None:
        """The recipe's training-batch augmentation, or None."""
        return self._make_option("augment", RandomCrop)

    def make_awp(self) -> WeightPerturbation | None:
        """The recipe's adversarial weight perturbation, or None."""
        return self._make_option("awp", WeightPerturbation)

    def _make_option(self, key: str, cls: Callable[..., Any]) -> Any:
        kwargs = getattr(self, key)
        if kwargs is None:
            return None
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"{key}: expected a mapping of keyword arguments or None, got {kwargs!r}")
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"{key}: {exc}") from exc

    def params(self) -> dict[str, Any]:
        """The recipe as plain JSON-friendly data (written into the checkpoint's sidecar); without
        ``augment`` and ``awp`` when there are none, so that the runs of earlier versions still resume."""
        out = dataclasses.asdict(self)
        for key in ("objective_params", "optimizer", "arch_kwargs"):
            out[key] = dict(out[key])
        for key in ("augment", "awp"):
            if out[key] is None:
                del out[key]
            else:
                out[key] = dict(out[key])
        return out


_ADAM = {"name": "adam", "lr": 1e-3, "weight_decay": 0.0}
_SGD = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}


def _defences(prefix: str, dataset: str, label: str, eps: float, ramp: float, trades_beta: float,
              fgsm_ramp: float) -> list[Recipe]:
    """The side-by-side set of defences on one 28 x 28 grey-scale data set at Linf ``eps``."""
    at = f"at Linf {eps:g} on {label}"
    adversarial = {"optimizer": _ADAM, "schedule": "cosine", "epochs": 40, "minutes": 60.0, "eps_ramp_epochs": ramp}
    return [
        Recipe(f"{prefix}-standard", f"Undefended TRADES SmallCNN on {label}: cross-entropy, Adam, 5 epochs.",
               "small-cnn", dataset, "standard", {}, _ADAM, epochs=5),
        Recipe(f"{prefix}-pgd-at", f"PGD-10 adversarial training (Madry et al.) {at}, TRADES SmallCNN, Adam, eps "
               f"warm-up over {ramp:g} epochs, 60 minutes.", "small-cnn", dataset, "pgd-at",
               {"eps": eps, "steps": 10}, **adversarial),
        Recipe(f"{prefix}-pgd-at-ema", f"PGD-10 adversarial training {at} as {prefix}-pgd-at, kept as the "
               "exponential moving average of its weights (decay 0.999 per step; Gowal et al. 2020).", "small-cnn",
               dataset, "pgd-at", {"eps": eps, "steps": 10}, **adversarial, ema_decay=0.999),
        Recipe(f"{prefix}-trades", f"TRADES (Zhang et al.) {at}, beta {trades_beta:g}, 10 ascent steps, TRADES "
               f"SmallCNN, Adam, eps warm-up over {ramp:g} epochs, 60 minutes.", "small-cnn", dataset, "trades",
               {"eps": eps, "steps": 10, "beta": trades_beta}, **adversarial),
        Recipe(f"{prefix}-mart", f"MART (Wang et al.) {at}, 10 steps, TRADES SmallCNN, Adam, eps warm-up over "
               f"{ramp:g} epochs, 60 minutes.", "small-cnn", dataset, "mart", {"eps": eps, "steps": 10},
               **adversarial),
        Recipe(f"{prefix}-fgsm-rs", f"Fast FGSM-RS (Wong et al.) {at}, step 1.25 eps, one-cycle Adam to 5e-3, "
               + (f"eps warm-up over {fgsm_ramp:g} epochs, " if fgsm_ramp else "")
               + "10 epochs, held-out APGD-CE-20 guard.", "small-cnn", dataset, "fgsm-rs",
               {"eps": eps, "alpha": 1.25 * eps},
               {"name": "adam", "lr": 5e-3, "weight_decay": 0.0}, schedule="one-cycle", epochs=10, batch_size=100,
               eps_ramp_epochs=fgsm_ramp),
        Recipe(f"{prefix}-gradient-reg", f"Input-gradient regularisation (double backpropagation, lambda 10) on "
               f"{label}, TRADES SmallCNN, Adam, 10 epochs.", "small-cnn", dataset, "gradient-reg", {"lam": 10.0},
               _ADAM, epochs=10),
        Recipe(f"{prefix}-gradient-reg-lipschitz", f"Input-gradient regularisation (lambda 10) of the spectrally "
               f"normalised lipschitz-mnist on {label}, Adam, 10 epochs.", "lipschitz-mnist", dataset,
               "gradient-reg", {"lam": 10.0}, _ADAM, epochs=10),
        Recipe(f"{prefix}-lipschitz", f"Lipschitz-margin training (Tsuzuku et al.) of lipschitz-mnist at L2 radius 1 "
               f"on {label}, temperature 10, Adam, 20 epochs.", "lipschitz-mnist", dataset, "lipschitz-margin",
               {"radius": 1.0, "temperature": 10.0}, _ADAM, epochs=20),
        Recipe(f"{prefix}-distillation-teacher", f"Defensive distillation, stage 1 (Papernot et al.): the teacher "
               f"at T = 100 on {label}, TRADES SmallCNN, Adam, 10 epochs.", "small-cnn", dataset, "distillation",
               {"temperature": 100.0}, _ADAM, epochs=10),
        Recipe(f"{prefix}-distillation", f"Defensive distillation, stage 2: the student on the {prefix}-distillation-"
               f"teacher's T = 100 soft labels, TRADES SmallCNN, Adam, 10 epochs.", "small-cnn", dataset,
               "distillation", {"temperature": 100.0}, _ADAM, epochs=10, teacher=f"{prefix}-distillation-teacher"),
        Recipe(f"{prefix}-ard", f"ARD (Goldblum et al.) of the {prefix}-pgd-at model into LeNet {at}, 10 ascent "
               f"steps, Adam, eps warm-up over {ramp:g} epochs, 60 minutes.", "lenet", dataset, "ard",
               {"eps": eps, "steps": 10}, **adversarial, teacher=f"{prefix}-pgd-at"),
        Recipe(f"{prefix}-pgd-at-lenet", f"PGD-10 adversarial training {at} as {prefix}-pgd-at, on LeNet: "
               f"{prefix}-ard's student trained without a teacher.", "lenet", dataset, "pgd-at",
               {"eps": eps, "steps": 10}, **adversarial),
    ]


_FASHION = _defences("fashion", "fashion-mnist", "Fashion-MNIST", 0.1, 2.0, 6.0, fgsm_ramp=0.0)
_FASHION_EMA = next(r for r in _FASHION if r.name == "fashion-pgd-at-ema")
_FASHION_MADRY = dataclasses.replace(
    _FASHION_EMA, name="fashion-pgd-at-ema-madry", architecture="madry-mnist",
    description="PGD-10 adversarial training at Linf 0.1 on Fashion-MNIST as fashion-pgd-at-ema, on the wider "
    "Madry et al. MNIST CNN (3.3M parameters against the SmallCNN's 0.3M).")
_FASHION_MADRY_AWP = dataclasses.replace(
    _FASHION_MADRY, name="fashion-pgd-at-ema-madry-awp", awp={"gamma": 5e-3, "start_epoch": 2},
    description="fashion-pgd-at-ema-madry with adversarial weight perturbation (Wu et al. 2020; gamma 5e-3, from the "
    "end of the eps warm-up).")
_FASHION_FLIP = {"padding": 0, "flip": True}  # mirror half of the images left to right, no shift
_FASHION_AWP_FLIP = dataclasses.replace(
    _FASHION_MADRY_AWP, name="fashion-pgd-at-ema-madry-awp-flip", augment=_FASHION_FLIP,
    description="fashion-pgd-at-ema-madry-awp with half of the training images mirrored left to right (no shift; "
    "Rebuffi et al. 2021).")
_FASHION_PGD5 = dataclasses.replace(
    _FASHION_AWP_FLIP, name="fashion-pgd5-at-ema-madry-awp-flip", objective_params={"eps": 0.1, "steps": 5}, epochs=80,
    description="fashion-pgd-at-ema-madry-awp-flip with PGD-5 (step 2.5 eps / 5) in place of PGD-10: a step takes 7 "
    "forward-backward passes instead of 12, so the 60 minutes hold about 1.5 times the epochs (at most 80).")
_FASHION_PGD5_WIDE = dataclasses.replace(
    _FASHION_PGD5, name="fashion-pgd5-at-ema-madry15-awp-flip", arch_kwargs={"width": 1.5},
    description="fashion-pgd5-at-ema-madry-awp-flip on the Madry CNN with 1.5 times the channels (48 and 96; 4.9M "
    "parameters): more capacity for clean accuracy (Madry et al. 2018, Section 4).")
_FASHION_PGD5_AWP2 = dataclasses.replace(
    _FASHION_PGD5, name="fashion-pgd5-at-ema-madry-awp2-flip", minutes=30.0, awp={**_FASHION_PGD5.awp, "gamma": 1e-2},
    description="fashion-pgd5-at-ema-madry-awp-flip with twice the adversarial weight perturbation (gamma 1e-2 against "
    "robust overfitting), fitted to 30 minutes (the PGD-5 run's held-out robust accuracy peaked 26 minutes in).")
_FASHION_AWP_SGD = dataclasses.replace(
    _FASHION_MADRY_AWP, name="fashion-pgd-at-ema-madry-awp-sgd", schedule="one-cycle", optimizer=_SGD,
    description="fashion-pgd-at-ema-madry-awp with SGD (momentum 0.9, weight decay 5e-4, one-cycle to 0.05) instead of "
    "Adam without weight decay (Pang et al. 2021; Wu et al. 2020).")
_FASHION_MADRY_AWP_SILU = dataclasses.replace(
    _FASHION_MADRY_AWP, name="fashion-pgd-at-ema-madry-awp-silu", arch_kwargs={"activation": "silu"},
    description="fashion-pgd-at-ema-madry-awp with SiLU in place of the Madry CNN's ReLUs (smooth adversarial "
    "training, Xie et al. 2020).")
_FASHION_HAT = dataclasses.replace(
    _FASHION_MADRY, name="fashion-hat-madry", objective="hat", teacher="fashion-standard",
    objective_params={"eps": 0.1, "steps": 10, "beta": 2.5, "gamma": 0.5, "h": 2.0},
    description="HAT (Rade & Moosavi-Dezfooli 2022; beta 2.5, gamma 0.5, h 2, the authors' CIFAR-10 values) at Linf "
    "0.1 on Fashion-MNIST, helper fashion-standard, as fashion-pgd-at-ema-madry otherwise.")
_CIFAR_AUGMENT = {"padding": 4, "flip": True}  # the standard CIFAR-10 augmentation (He et al. 2016)
_CIFAR_PGD10 = {"eps": 8 / 255, "steps": 10, "alpha": 2 / 255}
_CIFAR_PGD_AT = Recipe(
    "cifar10-jpeg-pgd-at", "PGD-10 (step 2/255) at Linf 8/255 on the CIFAR-10 (JPEG) copy, cifar-cnn, SGD momentum "
    "0.9, one-cycle to 0.05, random crops (4 pixels) and flips, kept as the exponential moving average of its weights "
    "(decay 0.999 per step), 120 minutes.", "cifar-cnn", "cifar10", "pgd-at", _CIFAR_PGD10, _SGD,
    schedule="one-cycle", epochs=60, minutes=120.0, batch_size=128, augment=_CIFAR_AUGMENT, ema_decay=0.999)
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    *_defences("mnist", "mnist", "MNIST", 0.3, 3.0, 1.0, fgsm_ramp=3.0),
    *_FASHION,
    Recipe("mnist-lipschitz-r158", "Lipschitz-margin training (Tsuzuku et al.) of lipschitz-mnist at L2 radius "
           "1.58 on MNIST, temperature 10, Adam, 60 epochs.", "lipschitz-mnist", "mnist", "lipschitz-margin",
           {"radius": 1.58, "temperature": 10.0}, _ADAM, epochs=60),
    _FASHION_MADRY,
    dataclasses.replace(_FASHION_MADRY, name="fashion-pgd-at-ema-madry-crop", augment={"padding": 2},
                        description="fashion-pgd-at-ema-madry with every training image shifted by up to 2 pixels "
                        "(random crop of the zero-padded image; Rebuffi et al. 2021)."),
    _FASHION_MADRY_AWP,
    _FASHION_AWP_FLIP,
    _FASHION_PGD5,
    _FASHION_PGD5_WIDE,
    _FASHION_PGD5_AWP2,
    dataclasses.replace(_FASHION_PGD5, name="fashion-mixed20-at-ema-madry-awp-flip", objective="mixed-at",
                        objective_params={**_FASHION_PGD5.objective_params, "clean_weight": 0.2},
                        description="fashion-pgd5-at-ema-madry-awp-flip with 0.2 of the loss on the clean images "
                        "(Goodfellow et al. 2015; Kurakin et al. 2017): some robustness for clean accuracy."),
    dataclasses.replace(_FASHION_PGD5, name="fashion-kd-at-ema-madry-awp-flip", objective="kd-at",
                        teacher=(_FASHION_PGD5_AWP2.name, "fashion-standard"), minutes=28.0,
                        objective_params={"eps": 0.1, "steps": 5, "temperature": 2.0, "weights": (0.6, 0.1)},
                        description="fashion-pgd5-at-ema-madry-awp-flip with knowledge distillation (Chen et al. 2021; "
                        "T 2) from a robust teacher, fashion-pgd5-at-ema-madry-awp2-flip (weight 0.6), and a standard "
                        "one, fashion-standard (weight 0.1), 28 minutes: with the teachers' 30 and 2, 60 in all."),
    _FASHION_AWP_SGD,
    dataclasses.replace(_FASHION_PGD5, name="fashion-pgd5-at-ema-madry-awp-sgd-flip", optimizer=_SGD,
                        schedule="one-cycle",
                        description="fashion-pgd5-at-ema-madry-awp-flip with the SGD of "
                        "fashion-pgd-at-ema-madry-awp-sgd (momentum 0.9, weight decay 5e-4, one-cycle to 0.05): the "
                        "two changes that each came closest to the robust half, together."),
    dataclasses.replace(_FASHION_PGD5, name="fashion-pgd5-at-ema-madry-awp-adamw-flip",
                        optimizer={**_ADAM, "name": "adamw", "weight_decay": 0.025},
                        description="fashion-pgd5-at-ema-madry-awp-flip with AdamW (Loshchilov & Hutter 2019): Adam's "
                        "steps with decoupled weight decay 0.025, which shrinks the weights at peak rate as fast as "
                        "the SGD recipes' 5e-4 at 0.05 (2.5e-5 per step)."),
    dataclasses.replace(_FASHION_PGD5, name="fashion-trades5-ema-madry-awp-flip", objective="trades",
                        objective_params={**_FASHION_PGD5.objective_params, "beta": 3.0},
                        description="fashion-pgd5-at-ema-madry-awp-flip with TRADES (Zhang et al. 2019; beta 3, 5 "
                        "KL-ascent steps of 0.05) in place of PGD-AT: TRADES with AWP is Wu et al.'s (2020) strongest "
                        "row; beta 3, half the CIFAR-10 value, for the clean half of the target."),
    _FASHION_MADRY_AWP_SILU,
    _FASHION_HAT,
    dataclasses.replace(_FASHION_HAT, name="fashion-hat-madry-flip", augment=_FASHION_FLIP,
                        description="fashion-hat-madry with half of the training images mirrored left to right (no "
                        "shift), as in fashion-pgd-at-ema-madry-awp-flip."),
    dataclasses.replace(_FASHION_HAT, name="fashion-hat-madry-awp-sgd", awp=_FASHION_AWP_SGD.awp,
                        optimizer=_FASHION_AWP_SGD.optimizer, schedule=_FASHION_AWP_SGD.schedule,
                        description="fashion-hat-madry with the adversarial weight perturbation and the SGD of "
                        "fashion-pgd-at-ema-madry-awp-sgd (gamma 5e-3 from epoch 2; momentum 0.9, weight decay 5e-4, "
                        "one-cycle to 0.05)."),
    Recipe("cifar10-jpeg-standard", "Undefended cifar-cnn on the CIFAR-10 (JPEG) copy: cross-entropy, SGD momentum "
           "0.9, one-cycle to 0.05, random crops (4 pixels) and flips, 10 epochs.", "cifar-cnn", "cifar10", "standard",
           {}, _SGD, schedule="one-cycle", epochs=10, augment=_CIFAR_AUGMENT),
    _CIFAR_PGD_AT,
    dataclasses.replace(_CIFAR_PGD_AT, name="cifar10-jpeg-pgd7-at", objective_params={**_CIFAR_PGD10, "steps": 7},
                        epochs=80, description="cifar10-jpeg-pgd-at with PGD-7 (step 2/255), the training attack of "
                        "Madry et al.'s CIFAR-10 model: about 1.4 times the epochs in the same 120 minutes."),
)}


def get_recipe(name: str, **overrides: Any) -> Recipe:
    """The catalogue recipe ``name`` with ``overrides`` (field names of :class:`Recipe`) replaced."""
    if name not in RECIPES:
        raise ValueError(f"recipe: unknown name {name!r}; valid names: {', '.join(RECIPES)}")
    fields = {f.name for f in dataclasses.fields(Recipe)} - {"name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"recipe: unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(fields))}")
    return dataclasses.replace(RECIPES[name], **overrides)


def build(recipe: Recipe, teacher: Classifier | tuple[Classifier, ...] | None = None,
          teacher_id: str | tuple[str, ...] | None = None) -> tuple[Classifier, Objective, dict[str, Any]]:
    """``(classifier, objective, trainer_kwargs)`` of ``recipe``: a freshly initialised classifier
    (seeded by the recipe's seed) and the keyword arguments of :class:`Trainer` (everything but
    the data: ``eval_set``, ``out_dir`` and the progress/log callbacks are the caller's).
    ``teacher`` (named ``teacher_id`` in the recipe) is the trained teacher of a recipe with one."""
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe: expected a Recipe, got {type(recipe).__name__}")
    import torch

    torch.manual_seed(recipe.seed)
    classifier = make_classifier(recipe.architecture, recipe.dataset, **recipe.arch_kwargs)
    kwargs: dict[str, Any] = {
        "optimizer": OptimizerSpec(**recipe.optimizer), "schedule": recipe.schedule, "epochs": recipe.epochs,
        "minutes": recipe.minutes, "batch_size": recipe.batch_size, "seed": recipe.seed,
        "eps_ramp_epochs": recipe.eps_ramp_epochs, "architecture": recipe.architecture,
        "arch_kwargs": dict(recipe.arch_kwargs), "dataset": recipe.dataset, "fast": recipe.fast,
        "ema_decay": recipe.ema_decay, "augment": recipe.make_augment(), "awp": recipe.make_awp(),
    }
    return classifier, recipe.make_objective(teacher, teacher_id), kwargs


class RecipeTrainer(Trainer):
    """A :class:`Trainer` that also writes its named :class:`Recipe` into the run's recipe
    (every checkpoint's sidecar and the resume state's check)."""

    def __init__(self, model: Classifier, objective: Objective, *, recipe: Recipe, **kwargs: Any) -> None:
        if not isinstance(recipe, Recipe):
            raise ValueError(f"recipe: expected a Recipe, got {type(recipe).__name__}")
        super().__init__(model, objective, **kwargs)
        self.named_recipe = recipe

    def recipe(self, train_set: Any) -> dict[str, Any]:
        return {**super().recipe(train_set), "recipe": self.named_recipe.params()}


def split_heldout(dataset: Any, eval_points: int, seed: int) -> tuple[Any, Any]:
    """``(train, held_out)``: ``eval_points`` samples drawn by a permutation seeded with ``seed``
    are held out for validation, the others (in their original order) are for training."""
    import torch

    n = len(dataset)
    check_positive_int(eval_points, "eval_points")
    if eval_points > n - 2:
        raise ValueError(f"eval_points: {eval_points} leaves fewer than 2 of the {n} training samples")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = torch.zeros(n, dtype=torch.bool)
    held[order[:eval_points]] = True
    return dataset.subset(~held), dataset.subset(held)
