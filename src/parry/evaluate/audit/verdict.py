"""Result types of the gradient-masking audit: one :class:`CheckResult` per check and the
:class:`AuditReport` that combines them into an overall verdict.

A check's verdict is ``pass``, ``warn`` or ``fail``; the audit's overall verdict is ``fail``
when any check fails, ``suspicious`` when one warns and ``pass`` otherwise. Passing the audit
is necessary, not sufficient, for a trustworthy robustness number (Carlini et al., "On
Evaluating Adversarial Robustness", 2019): it rules out the common symptoms of obfuscated
gradients listed by Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of
Security", ICML 2018, section 3.1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ...metrics import wilson_interval

CheckVerdict = Literal["pass", "warn", "fail"]
OverallVerdict = Literal["pass", "suspicious", "fail"]
CHECK_VERDICTS: tuple[str, ...] = ("pass", "warn", "fail")


@dataclass
class CheckResult:
    """The outcome of one audit check.

    Attributes:
        name: short identifier of the check (e.g. ``"gradients"``).
        verdict: ``"pass"``, ``"warn"`` or ``"fail"``.
        reason: one line saying what was measured against which threshold (and, on a
            failure, what to do about it).
        numbers: the measured figures (JSON-friendly: floats, ints, lists, dicts).
        time_s: wall time of the check in seconds (attack runs it shares with earlier
            checks are counted where they first ran).
    """

    name: str
    verdict: CheckVerdict
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    time_s: float = 0.0

    def __post_init__(self) -> None:
        if self.verdict not in CHECK_VERDICTS:
            raise ValueError(f"verdict: must be one of {CHECK_VERDICTS}, got {self.verdict!r}")


@dataclass
class AuditReport:
    """All check results of one audit, with the setting they were measured in.

    Attributes:
        checks: the results, in the order the checks ran.
        norm, eps: the threat model audited. n: number of points. seed: the audit's seed.
        budget: ``"ci"`` or ``"full"``. clean_accuracy: on the audited points.
        num_classes: the model's number of outputs. time_s: wall time of the audit.
    """

    checks: list[CheckResult]
    norm: str
    eps: float
    n: int
    seed: int
    budget: str
    clean_accuracy: float
    num_classes: int
    time_s: float = 0.0

    @property
    def failed(self) -> list[str]:
        """Names of the checks that failed."""
        return [c.name for c in self.checks if c.verdict == "fail"]

    @property
    def warned(self) -> list[str]:
        """Names of the checks that warned."""
        return [c.name for c in self.checks if c.verdict == "warn"]

    @property
    def verdict(self) -> OverallVerdict:
        """``fail`` if any check failed, ``suspicious`` if any warned, else ``pass``."""
        if self.failed:
            return "fail"
        return "suspicious" if self.warned else "pass"

    @property
    def reason(self) -> str:
        """One line naming the checks behind the verdict."""
        if not self.failed and not self.warned:
            return f"all {len(self.checks)} checks passed"
        parts = []
        if self.failed:
            parts.append("failed: " + ", ".join(self.failed))
        if self.warned:
            parts.append("warned: " + ", ".join(self.warned))
        return "; ".join(parts)

    def summary(self) -> str:
        """``"<verdict>: <reason>"``, e.g. for the audit column of a report."""
        return f"{self.verdict}: {self.reason}"

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"name: no check called {name!r}; checks: {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable."""
        low, high = wilson_interval(round(self.clean_accuracy * self.n), self.n)
        return {"verdict": self.verdict, "reason": self.reason,
                "threat": {"norm": self.norm, "eps": self.eps}, "n": self.n, "seed": self.seed,
                "budget": self.budget, "clean_accuracy": self.clean_accuracy, "clean_accuracy_ci95": [low, high],
                "num_classes": self.num_classes, "time_s": self.time_s, "checks": [asdict(c) for c in self.checks]}

    def table(self) -> str:
        """A Markdown table, one row per check, then the overall verdict."""
        lines = ["| check | verdict | reason |", "|---|---|---|"]
        lines += [f"| {c.name} | {c.verdict} | {c.reason.replace('|', '/')} |" for c in self.checks]
        lines.append(f"\noverall: **{self.verdict}** ({self.reason})")
        return "\n".join(lines)
