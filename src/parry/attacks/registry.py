"""Attacks by name, for the CLI and configuration files."""

from __future__ import annotations

import inspect
from typing import Any

from .base import Attack
from .gradient import APGD, APGDT, BIM, FGSM, MIFGSM, PGD, FGSMRandomStart

ATTACKS: dict[str, type[Attack]] = {
    "fgsm": FGSM,
    "fgsm-rs": FGSMRandomStart,
    "bim": BIM,
    "pgd": PGD,
    "mi-fgsm": MIFGSM,
    "apgd": APGD,
    "apgd-t": APGDT,
}


def make_attack(name: str, eps: float, norm: str = "linf", *, strict: bool = True, **options: Any) -> Attack:
    """Build the attack ``name``; options it does not take (e.g. steps for FGSM) are refused,
    or dropped when ``strict`` is False (a command line's shared options)."""
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
    return cls(eps, norm, **given)
