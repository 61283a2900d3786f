"""Robust training: one Trainer, one objective per file.

``Trainer(model, PGDAT(eps=0.3, steps=10), epochs=10, eval_set=held_out).fit(train_set)``.
"""

from parry.defenses.training.fgsm_rs import FGSMRS
from parry.defenses.training.heldout import heldout_accuracy
from parry.defenses.training.mart import MART
from parry.defenses.training.objective import AdversarialObjective, Objective
from parry.defenses.training.optim import SCHEDULES, OptimizerSpec, lr_factor
from parry.defenses.training.pgd_at import PGDAT
from parry.defenses.training.standard import Standard
from parry.defenses.training.trades import TRADES
from parry.defenses.training.trainer import Trainer

__all__ = ["FGSMRS", "MART", "PGDAT", "SCHEDULES", "TRADES", "AdversarialObjective", "Objective",
           "OptimizerSpec", "Standard", "Trainer", "heldout_accuracy", "lr_factor"]
