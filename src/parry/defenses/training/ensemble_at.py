"""Ensemble adversarial training (Tramer, Kurakin, Papernot, Goodfellow, Boneh & McDaniel,
"Ensemble Adversarial Training: Attacks and Defenses", ICLR 2018).

Each batch's adversarial examples come from one source, in turn (round robin): the model
being trained, then each of several fixed, pre-trained static models. Crafting on static
models decouples the examples from the model's own (possibly masked) gradients, against
the single-step degenerate minimum of plain FGSM training. The loss mixes clean and
adversarial cross-entropy, half and half by default as in the paper:

    clean_weight * CE(f(x), y) + (1 - clean_weight) * CE(f(x_src), y)

The examples are single-step: FGSM (``attack='fgsm'``) or FGSM from a random start
(``attack='fgsm-rs'``, Wong et al. 2020). The position in the round robin lives in the
objective (``position``, shared with its ``with_eps`` copies) and in the Trainer's resume state.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.attacks.gradient.fgsm import FGSM, FGSMRandomStart
from parry.classifier import Classifier
from parry.defenses.training.objective import AdversarialObjective, Stats, draw_seed

ATTACKS = ("fgsm", "fgsm-rs")


class EnsembleAT(AdversarialObjective):
    """Ensemble adversarial training over the model and ``static_models``.

    Args:
        static_models: one or more fixed pre-trained Classifiers over the same inputs and
            classes (used in eval mode with frozen parameters; never trained here).
        eps, norm: the training threat model.
        attack: 'fgsm' or 'fgsm-rs'.
        alpha: the FGSM-RS step (None: ``1.25 * eps``); FGSM steps by eps.
        clean_weight: weight of the clean cross-entropy in [0, 1) (0.5, the paper's; 0 trains
            on the adversarial examples only).
        static_ids: how the recipe names the static models; default: their class names.
    """

    name = "ensemble-at"
    needs_overfit_guard = True

    def __init__(self, static_models: Sequence[Classifier], eps: float, norm: object = "linf", *,
                 attack: str = "fgsm", alpha: float | None = None, clean_weight: float = 0.5,
                 static_ids: Sequence[str] | None = None) -> None:
        super().__init__(eps, norm, steps=1, alpha=alpha)
        if isinstance(static_models, Classifier) or not isinstance(static_models, (list, tuple)):
            raise ValueError("static_models: expected a list or tuple of parry Classifiers")
        if not static_models or not all(isinstance(m, Classifier) for m in static_models):
            raise ValueError("static_models: expected at least one parry Classifier, and only Classifiers")
        if attack not in ATTACKS:
            raise ValueError(f"attack: expected one of {ATTACKS}, got {attack!r}")
        if attack == "fgsm" and alpha is not None:
            raise ValueError("alpha: FGSM steps by eps; a step size applies to attack='fgsm-rs' only")
        if isinstance(clean_weight, bool) or not isinstance(clean_weight, (int, float)) \
                or not 0.0 <= float(clean_weight) < 1.0:
            raise ValueError(f"clean_weight: must lie in [0, 1), got {clean_weight!r}")
        if static_ids is not None and (len(static_ids) != len(static_models)
                                       or not all(isinstance(s, str) for s in static_ids)):
            raise ValueError("static_ids: expected one string per static model")
        self.attack = attack
        self.clean_weight = float(clean_weight)
        self._static = list(static_models)
        self._static_ids = None if static_ids is None else list(static_ids)
        # next source: 0 is the model, i >= 1 the static model i - 1; a list, so that the copies
        # made by with_eps (the Trainer's eps warm-up) share one round robin
        self._position = [0]

    @property
    def step_size(self) -> float:
        if self.attack == "fgsm":
            return self.eps
        return self.alpha if self.alpha is not None else 1.25 * self.eps

    @property
    def position(self) -> int:
        """The index of the next source (0: the model; i >= 1: static model i - 1)."""
        return self._position[0]

    @property
    def static_models(self) -> list[Classifier]:
        return list(self._static)

    def params(self) -> dict[str, Any]:
        out = super().params()
        out["static_models"] = self._static_ids or [type(m.model).__name__ for m in self._static]
        return out

    def state(self) -> dict[str, Any]:
        return {"position": self._position[0]}

    def load_state(self, state: dict[str, Any]) -> None:
        position = state.get("position") if isinstance(state, dict) else None
        if set(state) != {"position"} or isinstance(position, bool) or not isinstance(position, int) \
                or not 0 <= position <= len(self._static):
            raise ValueError(f"EnsembleAT: expected a state {{'position': 0..{len(self._static)}}}, got {state!r}")
        self._position[0] = position

    def next_source(self, model: Classifier) -> Classifier:
        """The source of this batch's examples; advances the round robin."""
        sources = [model, *self._static]
        source = sources[self._position[0] % len(sources)]
        self._position[0] = (self._position[0] + 1) % len(sources)
        return source

    def craft(self, source: Classifier, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Single-step examples crafted on ``source`` (eval mode, frozen parameters)."""
        if self.attack == "fgsm":
            attack = FGSM(self.eps, self.norm, early_stop=False)
        else:
            attack = FGSMRandomStart(self.eps, self.norm, alpha=self.step_size, early_stop=False,
                                     seed=draw_seed(generator))
        return attack.generate(source, x, y)

    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        if any(m is model for m in self._static):
            raise ValueError("static_models: must not contain the model being trained")
        source = self.next_source(model)
        x_adv = self.craft(source, x, y, generator)
        logits_adv = model(x_adv)
        adv = F.cross_entropy(logits_adv, y)
        stats: Stats = {"adv_loss": adv.detach(),
                        "adv_accuracy": (logits_adv.detach().argmax(dim=1) == y).float().mean()}
        loss = (1.0 - self.clean_weight) * adv
        if self.clean_weight > 0:
            logits = model(x)
            natural = F.cross_entropy(logits, y)
            loss = loss + self.clean_weight * natural
            stats["natural_loss"] = natural.detach()
            stats["accuracy"] = (logits.detach().argmax(dim=1) == y).float().mean()
        stats["loss"] = loss.detach()
        return loss, stats
