"""Black-box attacks: score-based (model outputs only, no gradients) and transfer."""
