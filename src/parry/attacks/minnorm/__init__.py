"""Minimum-norm attacks: the smallest perturbation that changes the decision, per sample."""
