"""Defences: robust training objectives and their Trainer (``parry.defenses.training``), and
Lipschitz-constrained networks with their certificates (``parry.defenses.lipschitz``)."""
