"""Evaluation: running attacks over data sets and reporting the figures."""

from .attack_table import AttackSpec, attack_in_batches, evaluate_attacks, rows_to_markdown

__all__ = ["AttackSpec", "attack_in_batches", "evaluate_attacks", "rows_to_markdown"]
