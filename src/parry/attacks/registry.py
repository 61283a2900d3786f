"""Attacks by name, for the CLI and configuration files."""

from __future__ import annotations

import inspect
from typing import Any

from ..threat import Eps
from .base import Attack
from .blackbox import Square
from .gradient import APGD, APGDT, BIM, FGSM, MIFGSM, PGD, FGSMRandomStart
from .minnorm import DDN, FAB, FABT, FMN, CarliniWagnerL2, DeepFool

ATTACKS: dict[str, type[Attack]] = {
    "fgsm": FGSM,
    "fgsm-rs": FGSMRandomStart,
    "bim": BIM,
    "pgd": PGD,
    "mi-fgsm": MIFGSM,
    "apgd": APGD,
    "apgd-t": APGDT,
    "fab": FAB,
    "fab-t": FABT,
    "square": Square,
    "cw-l2": CarliniWagnerL2,
    "deepfool": DeepFool,
    "fmn": FMN,
    "ddn": DDN,
}


def make_attack(name: str, eps: Eps | None, norm: str | None = None, *, strict: bool = True,
                **options: Any) -> Attack:
    """Build the attack ``name`` at radius ``eps`` (None: minimum-norm attacks search the smallest
    perturbation) in ``norm`` (None: the attack's default). Options it does not take (e.g. steps
    for FGSM) are refused, or dropped when ``strict`` is False (a command line's shared options)."""
    if name not in ATTACKS:
        raise ValueError(f"attack: unknown attack {name!r}; expected one of {sorted(ATTACKS)}")
    cls = ATTACKS[name]
    accepted = inspect.signature(cls.__init__).parameters
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(accepted))
    if not strict:
        given = {k: v for k, v in given.items() if k in accepted}
    elif unknown:
        raise ValueError(f"attack: {name} does not take the option(s) {unknown}")
    if norm is not None:
        given["norm"] = norm
    return cls(eps, **given)
