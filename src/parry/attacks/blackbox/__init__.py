"""Black-box attacks: score-based (model outputs only, no gradients) and transfer."""

from .square import Square
from .transfer import transfer_attack, transfer_matrix

__all__ = ["Square", "transfer_attack", "transfer_matrix"]
