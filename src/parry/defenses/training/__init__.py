"""Robust training: one Trainer, one objective per file.

``Trainer(model, PGDAT(eps=0.3, steps=10), epochs=10, eval_set=held_out).fit(train_set)``.
"""

from parry.defenses.training.ard import ARD
from parry.defenses.training.augment import RandomCrop
from parry.defenses.training.awp import WeightPerturbation
from parry.defenses.training.distillation import DefensiveDistillation
from parry.defenses.training.ensemble_at import EnsembleAT
from parry.defenses.training.fgsm_rs import FGSMRS
from parry.defenses.training.gradient_reg import GradientRegularization, input_gradient_penalty
from parry.defenses.training.hat import HAT
from parry.defenses.training.heldout import heldout_accuracy
from parry.defenses.training.jacobian_reg import JacobianRegularization
from parry.defenses.training.kd_at import KnowledgeDistillationAT
from parry.defenses.training.mart import MART
from parry.defenses.training.mixed_at import MixedPGDAT
from parry.defenses.training.objective import AdversarialObjective, CraftedObjective, Objective
from parry.defenses.training.optim import SCHEDULES, OptimizerSpec, lr_factor
from parry.defenses.training.pgd_at import PGDAT
from parry.defenses.training.standard import Standard
from parry.defenses.training.trades import TRADES
from parry.defenses.training.trainer import Trainer
from parry.defenses.training.fast import FastPath, bf16_supported
from parry.defenses.training.recipes import RECIPES, Recipe, RecipeTrainer, build, get_recipe, split_heldout

__all__ = ["ARD", "FGSMRS", "HAT", "MART", "PGDAT", "SCHEDULES", "TRADES", "AdversarialObjective", "CraftedObjective",
           "DefensiveDistillation", "EnsembleAT", "GradientRegularization", "JacobianRegularization",
           "KnowledgeDistillationAT", "MixedPGDAT", "Objective", "OptimizerSpec", "Standard", "Trainer",
           "WeightPerturbation", "heldout_accuracy", "input_gradient_penalty", "lr_factor", "FastPath", "RECIPES",
           "RandomCrop", "Recipe", "RecipeTrainer", "bf16_supported", "build", "get_recipe", "split_heldout"]
