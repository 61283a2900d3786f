"""AutoAttack presets (Croce & Hein, ICML 2020) built from Parry's own attacks.

- ``standard``: the paper's 'standard' version with its default budgets: APGD-CE
  (100 iterations, 1 restart), APGD-T (DLR, 9 target classes, 100 iterations), FAB-T
  (9 target classes, 100 iterations), Square (5,000 queries, p_init 0.8). This is the
  headline evaluation.
- ``fast``: a quick look, clearly weaker and never a headline: APGD-CE (50 iterations)
  then APGD-T (DLR, 3 target classes, 50 iterations).
"""

from __future__ import annotations

from .base import Attack
from .blackbox.square import Square
from .ensemble import AttackEnsemble, Stage
from .gradient.apgd import APGD, APGDT
from .minnorm.fab import FABT

PRESETS = ("standard", "fast")


def _stages(preset: str, eps: float, norm: str, seed: int) -> list[Stage]:
    if preset == "fast":
        return [Stage("apgd-ce", APGD(eps, norm, steps=50, loss="ce", seed=seed)),
                Stage("apgd-t", APGDT(eps, norm, steps=50, n_target_classes=3, seed=seed))]
    stages: list[tuple[str, Attack]] = [
        ("apgd-ce", APGD(eps, norm, steps=100, loss="ce", seed=seed)),
        ("apgd-t", APGDT(eps, norm, steps=100, n_target_classes=9, seed=seed)),
    ]
    if norm in FABT.norms:
        stages.append(("fab-t", FABT(eps, norm, steps=100, n_target_classes=9, seed=seed)))
    if norm in Square.norms:
        stages.append(("square", Square(eps, norm, queries=5000, p_init=0.8, seed=seed)))
    return [Stage(name, attack) for name, attack in stages]


def autoattack(eps: float, norm: str = "linf", *, preset: str = "standard", seed: int = 0,
               batch_size: int = 500) -> AttackEnsemble:
    """The AutoAttack ensemble for ``preset`` ('standard' or 'fast') at radius ``eps``.

    For L1 the standard preset runs APGD-CE, APGD-T and FAB-T: Square has no L1 version
    here. (The reference implementation's L1 version also differs in its budgets: 5
    restarts of APGD-CE, 5 target classes and larger initial radii; not reproduced.)
    """
    if preset not in PRESETS:
        raise ValueError(f"preset: unknown preset {preset!r}; expected one of {PRESETS}")
    return AttackEnsemble(_stages(preset, eps, norm, seed), batch_size=batch_size, preset=preset)
