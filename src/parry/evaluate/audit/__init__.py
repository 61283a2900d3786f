"""The gradient-masking audit (``parry audit``): sanity checks that every robustness claim must pass.

After Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of Security",
ICML 2018, and Carlini et al., "On Evaluating Adversarial Robustness", 2019. One check per
module; :func:`audit` runs them and combines the verdicts.
"""

from .adaptive_step import check_adaptive_step
from .attack_order import check_attack_order
from .audit import CHECKS, audit
from .budget import BUDGETS, Budget, get_budget
from .context import AuditContext
from .convergence import check_convergence
from .determinism import check_determinism
from .eps_sweep import check_eps_sweep, eps_ladder
from .gradients import check_gradients, input_gradient_magnitudes
from .logits import check_logits
from .single_step import check_single_step
from .surrogate import SurrogateCNN, train_surrogate
from .verdict import AuditReport, CheckResult

__all__ = ["BUDGETS", "CHECKS", "AuditContext", "AuditReport", "Budget", "CheckResult", "SurrogateCNN", "audit",
           "check_adaptive_step", "check_attack_order", "check_convergence", "check_determinism", "check_eps_sweep",
           "check_gradients", "check_logits", "check_single_step", "eps_ladder", "get_budget",
           "input_gradient_magnitudes", "train_surrogate"]
