"""What the audit checks share: the points, the threat model, the budget, and memoised runs.

Several checks compare the same attack runs (PGD-k appears in four of them), so each run is
done once, on fixed seeds, and kept as a per-point robustness mask. Every mask is combined
with the clean predictions (a point counts as robust only if it is classified correctly
before and after), so masks of different attacks compare point by point.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ...attacks import APGD, FGSM, PGD, Attack, Square
from ...classifier import Classifier
from ...metrics import predict
from ...threat import ThreatModel
from .budget import Budget


class AuditContext:
    """The audited classifier and points, with lazily computed, memoised robustness masks.

    Args:
        classifier: the model under audit. x, y: validated points and labels.
        norm, eps: the threat model. seed: seeds every attack and random draw.
        budget: the attack budgets. batch_size: points per attack call.
        surrogate: the model transfer attacks are crafted on, or None.
        num_classes: the number of logits the model returns.
    """

    def __init__(self, classifier: Classifier, x: Tensor, y: Tensor, *, norm: str, eps: float, seed: int,
                 budget: Budget, batch_size: int, surrogate: Classifier | None, num_classes: int) -> None:
        self.classifier, self.x, self.y = classifier, x, y
        self.norm, self.eps, self.seed, self.budget = norm, eps, seed, budget
        self.batch_size, self.surrogate, self.num_classes = batch_size, surrogate, num_classes
        self.threat = ThreatModel(norm, eps, classifier.bounds)
        self._masks: dict[tuple, Tensor] = {}

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def slack(self) -> float:
        """Tolerance for comparing two accuracies on these points: 2 points, at least 2 %."""
        return max(0.02, 2.0 / self.n)

    @property
    def chance(self) -> float:
        return 1.0 / self.num_classes

    @property
    def max_radius(self) -> float:
        """The diameter of the input box in the audited norm: every valid input is that close."""
        low, high = self.classifier.bounds
        dim = self.x[0].numel()
        return (high - low) * {"linf": 1.0, "l2": math.sqrt(dim), "l1": float(dim)}[self.norm]

    # ------------------------------------------------------------------ masks
    def _memo(self, key: tuple, compute: Callable[[], Tensor]) -> Tensor:
        if key not in self._masks:
            mask = compute()
            self._masks[key] = mask if key == ("clean",) else mask & self.clean_correct()
        return self._masks[key]

    def clean_correct(self) -> Tensor:
        return self._memo(("clean",), lambda: predict(self.classifier, self.x, self.batch_size) == self.y)

    def _attack(self, attack: Attack) -> Tensor:
        robust = [attack(self.classifier, xb, yb).robust
                  for xb, yb in zip(self.x.split(self.batch_size), self.y.split(self.batch_size))]
        return torch.cat(robust)

    def fgsm(self) -> Tensor:
        return self._memo(("fgsm",), lambda: self._attack(FGSM(self.eps, self.norm, seed=self.seed)))

    def pgd(self, eps: float | None = None, steps: int | None = None, restarts: int = 1) -> Tensor:
        """PGD with a random start, CE loss and the default step 2.5 * eps / steps."""
        eps = self.eps if eps is None else eps
        steps = self.budget.pgd_steps if steps is None else steps
        return self._memo(("pgd", eps, steps, restarts), lambda: self._attack(
            PGD(eps, self.norm, steps=steps, restarts=restarts, seed=self.seed)))

    def strong_pgd(self) -> Tensor:
        b = self.budget
        return self.pgd(steps=b.strong_factor * b.pgd_steps, restarts=b.strong_restarts)

    def apgd(self) -> Tensor:
        """APGD-CE with ``apgd_steps`` iterations: the step size adapts where PGD's is fixed."""
        return self._memo(("apgd",), lambda: self._attack(
            APGD(self.eps, self.norm, steps=self.budget.apgd_steps, seed=self.seed)))

    def whitebox(self) -> Tensor:
        """Per-point worst case over every white-box run at eps (FGSM, PGD-k, the strong PGD, APGD-CE)."""
        return self.fgsm() & self.pgd() & self.strong_pgd() & self.apgd()

    def square(self) -> Tensor | None:
        """The Square attack (margin loss), or None for a norm or input it does not support."""
        if self.norm not in Square.norms or self.x.ndim != 4:
            return None
        return self._memo(("square",), lambda: self._attack(
            Square(self.eps, self.norm, queries=self.budget.square_queries, seed=self.seed)))

    def transfer(self) -> Tensor | None:
        """PGD crafted on the surrogate (full budget, no early exit), evaluated on the model."""
        if self.surrogate is None:
            return None
        attack = PGD(self.eps, self.norm, steps=self.budget.transfer_steps, early_stop=False, seed=self.seed)

        def run() -> Tensor:
            out = []
            for xb, yb in zip(self.x.split(self.batch_size), self.y.split(self.batch_size)):
                adv = attack.generate(self.surrogate, xb, yb)
                out.append(predict(self.classifier, adv, self.batch_size) == yb)
            return torch.cat(out)

        return self._memo(("transfer",), run)

    def noise(self) -> Tensor:
        """Robust only if correct on every one of ``noise_draws`` uniform draws from the eps-ball."""
        def run() -> Tensor:
            generator = torch.Generator(device=self.x.device).manual_seed(self.seed)
            robust = torch.ones_like(self.y, dtype=torch.bool)
            for _ in range(self.budget.noise_draws):
                noisy = self.threat.random_init(self.x, generator)
                robust &= predict(self.classifier, noisy, self.batch_size) == self.y
            return robust

        return self._memo(("noise",), run)


def exceeds(value: float, limit: float) -> bool:
    """``value > limit`` up to float rounding: accuracies are multiples of 1 / n, so a difference
    that equals a threshold on paper must not cross it by 1e-16."""
    return value > limit + 1e-9


def accuracy_of(mask: Tensor) -> float:
    """The fraction of True entries of a robustness mask."""
    return int(mask.sum()) / mask.numel()
