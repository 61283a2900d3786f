"""Attack budgets of the audit: ``ci`` (seconds, for tests and quick looks) and ``full``.

The ``full`` budget follows the recommendations of Carlini et al., "On Evaluating
Adversarial Robustness", 2019 (many steps, several restarts, a strong black-box attack:
Square with AutoAttack's 5,000 queries, Croce & Hein, ICML 2020); ``ci`` keeps every check
tiny, so an audit of a LeNet on ~100 MNIST points runs in seconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How hard each check attacks.

    Attributes:
        pgd_steps: k, the iterations of the PGD run that stands for "the reported attack".
        strong_factor, strong_restarts: the convergence check's stronger PGD runs
            ``strong_factor * k`` steps with ``strong_restarts`` random restarts.
        apgd_steps: iterations of the adaptive-step check's APGD-CE (Croce & Hein, ICML 2020).
        ladder: multiples of eps at which the eps sweep runs PGD-k (below the box's diameter,
            which is always added as the last radius).
        square_queries: queries per point of the black-box Square attack.
        transfer_steps: PGD steps on the surrogate for the transfer attack.
        noise_draws: uniform draws from the eps-ball per point for the random-noise baseline.
        surrogate_steps: Adam steps (batch 128) of a surrogate trained by the audit itself.
    """

    name: str
    pgd_steps: int
    strong_factor: int
    strong_restarts: int
    apgd_steps: int
    ladder: tuple[float, ...]
    square_queries: int
    transfer_steps: int
    noise_draws: int
    surrogate_steps: int


BUDGETS: dict[str, Budget] = {
    "ci": Budget("ci", pgd_steps=10, strong_factor=4, strong_restarts=2, apgd_steps=50,
                 ladder=(0.25, 0.5, 1.0, 2.0),
                 square_queries=300, transfer_steps=20, noise_draws=8, surrogate_steps=300),
    "full": Budget("full", pgd_steps=40, strong_factor=4, strong_restarts=5, apgd_steps=100,
                   ladder=(0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0), square_queries=5000,
                   transfer_steps=100, noise_draws=100, surrogate_steps=2000),
}


def get_budget(budget: str | Budget) -> Budget:
    """The named budget ('ci' or 'full'), or ``budget`` itself when it already is one."""
    if isinstance(budget, Budget):
        return budget
    if budget not in BUDGETS:
        raise ValueError(f"budget: must be one of {tuple(BUDGETS)}, got {budget!r}")
    return BUDGETS[budget]
