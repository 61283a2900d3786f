"""What a benchmark grid is made of besides models and points: attacks and threat models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..attacks.autoattack import PRESETS, autoattack
from ..attacks.base import Attack
from ..attacks.ensemble import AttackEnsemble
from ..attacks.registry import ATTACKS, make_attack
from ..threat import canonical_norm, check_eps

PRESET_PREFIX = "autoattack-"


def attack_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """An attack's parameters without its threat model (eps and norm are stored with the threat)."""
    out = {k: v for k, v in params.items() if k not in ("eps", "norm")}
    if "stages" in out:
        out["stages"] = [attack_params(s) for s in out["stages"]]
    return out


@dataclass(frozen=True)
class GridAttack:
    """An attack of the grid: a name of :data:`parry.attacks.registry.ATTACKS` with ``options``,
    or an AutoAttack preset, ``'autoattack-standard'`` or ``'autoattack-fast'``.

    ``min_norm``: run the attack once per norm without a radius (eps=None) and store every
    point's perturbation norms, from which accuracy at any eps follows. The default (None)
    does so for the attacks that need no radius ('cw-l2', 'deepfool', 'fmn', 'ddn', 'fab', 'fab-t').
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    min_norm: bool | None = None

    def __post_init__(self) -> None:
        if self.min_norm is not None and not isinstance(self.min_norm, bool):
            raise ValueError(f"min_norm: expected a bool or None, got {self.min_norm!r}")
        if self.preset is None and self.name not in ATTACKS:
            known = sorted(ATTACKS) + [PRESET_PREFIX + p for p in PRESETS]
            raise ValueError(f"attacks: unknown attack {self.name!r}; expected one of {known}")
        if self.preset is not None and self.options:
            raise ValueError(f"attacks: the preset {self.name} takes no options, got {sorted(self.options)}")
        if self.min_norm and (self.preset is not None or ATTACKS[self.name].requires_eps):
            raise ValueError(f"attacks: {self.name} needs a radius; it cannot run as a minimum-norm attack")
        object.__setattr__(self, "options", dict(self.options))

    @property
    def preset(self) -> str | None:
        """'standard' or 'fast' for an AutoAttack preset, else None."""
        if self.name.startswith(PRESET_PREFIX) and self.name[len(PRESET_PREFIX):] in PRESETS:
            return self.name[len(PRESET_PREFIX):]
        return None

    @property
    def is_min_norm(self) -> bool:
        if self.preset is not None:
            return False
        return (not ATTACKS[self.name].requires_eps) if self.min_norm is None else self.min_norm

    def norms(self) -> tuple[str, ...]:
        """The norms the attack supports."""
        return ("linf", "l2", "l1") if self.preset is not None else ATTACKS[self.name].norms

    def build(self, eps: float | None, norm: str, *, seed: int, batch_size: int) -> Attack | AttackEnsemble:
        """The configured attack at radius ``eps`` (None: minimum norm) in ``norm``."""
        if self.preset is not None:
            return autoattack(eps, norm, preset=self.preset, seed=seed, batch_size=batch_size)
        return make_attack(self.name, eps, norm, **self.options)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options), "min_norm": self.is_min_norm}


@dataclass(frozen=True)
class ThreatSpec:
    """A norm with the radii to evaluate at (pixel space)."""

    norm: str
    eps: Sequence[float] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", canonical_norm(self.norm))
        if isinstance(self.eps, (int, float)):
            object.__setattr__(self, "eps", (self.eps,))
        values = tuple(check_eps(e, "eps") for e in self.eps)
        if len(set(values)) != len(values):
            raise ValueError(f"eps: repeated radius in {list(values)}")
        object.__setattr__(self, "eps", values)

    def describe(self) -> dict[str, Any]:
        return {"norm": self.norm, "eps": list(self.eps)}


def as_attacks(attacks: Sequence[GridAttack | str]) -> list[GridAttack]:
    """Names become :class:`GridAttack` without options; duplicates are refused."""
    if isinstance(attacks, (str, GridAttack)) or len(attacks) == 0:
        raise ValueError("attacks: expected a non-empty list of attacks")
    out = [a if isinstance(a, GridAttack) else GridAttack(a) for a in attacks]
    keys = [(a.name, tuple(sorted(a.options.items(), key=str)), a.is_min_norm) for a in out]
    if len(set(map(repr, keys))) != len(keys):
        raise ValueError("attacks: the same attack with the same options is listed twice")
    return out


def as_threats(threats: Sequence[ThreatSpec] | ThreatSpec) -> list[ThreatSpec]:
    """A list of threat specs, at most one per norm."""
    out = [threats] if isinstance(threats, ThreatSpec) else list(threats)
    if not out or not all(isinstance(t, ThreatSpec) for t in out):
        raise ValueError("threats: expected a non-empty list of ThreatSpec")
    norms = [t.norm for t in out]
    if len(set(norms)) != len(norms):
        raise ValueError(f"threats: one ThreatSpec per norm, got {norms}")
    return out
