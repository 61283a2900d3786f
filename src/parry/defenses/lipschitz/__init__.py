"""Lipschitz-constrained networks and their certificates: GroupSort activations (Anil et al.
2019), spectrally normalised layers (Miyato et al. 2018), a global L2 Lipschitz bound,
the margin certificate and the Lipschitz-margin training loss (Tsuzuku et al. 2018)."""

from parry.defenses.lipschitz.bound import layer_norms, lipschitz_bound
from parry.defenses.lipschitz.groupsort import GroupSort, MaxMin
from parry.defenses.lipschitz.layers import SpectralConv2d, SpectralLinear, tighten_
from parry.defenses.lipschitz.loss import lipschitz_margin_loss
from parry.defenses.lipschitz.margin import certified_accuracy, margin_certificate
from parry.defenses.lipschitz.power_iteration import power_iteration

__all__ = ["GroupSort", "MaxMin", "SpectralConv2d", "SpectralLinear", "certified_accuracy", "layer_norms",
           "lipschitz_bound", "lipschitz_margin_loss", "margin_certificate", "power_iteration", "tighten_"]
