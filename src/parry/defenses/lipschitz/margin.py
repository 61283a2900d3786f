"""The Lipschitz-margin certificate and certified accuracy (Tsuzuku, Sato & Sugiyama,
"Lipschitz-margin training: Scalable certification of perturbation invariance for deep
neural networks", NeurIPS 2018).

If the logits map is L-Lipschitz in L2, each difference ``z_y - z_j`` is
``sqrt(2) L``-Lipschitz, so no perturbation of L2 norm below
``(z_y - max_{j != y} z_j) / (sqrt(2) L)`` can change the prediction.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from parry.classifier import as_classifier
from parry.defenses.lipschitz.bound import lipschitz_bound
from parry.validation import check_inputs, check_labels, check_logits, check_positive_float, check_positive_int


def margin_certificate(logits: Tensor, lipschitz: float, labels: Tensor | None = None) -> Tensor:
    """Certified L2 radius per sample: ``margin / (sqrt(2) * lipschitz)``.

    With ``labels`` the margin is ``z_y - max_{j != y} z_j`` and misclassified samples (margin
    <= 0) get 0; without, it is the gap between the two largest logits (the predicted class
    is certified). ``lipschitz`` must be an upper bound on the L2 Lipschitz constant of the
    logits map (e.g. from :func:`lipschitz_bound`).
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits: expected a torch.Tensor, got {type(logits).__name__}")
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits: expected a non-empty (N, num_classes) tensor, got shape {tuple(logits.shape)}")
    logits = check_logits(logits, logits.shape[0], None)
    lipschitz = check_positive_float(lipschitz, "lipschitz")
    logits = logits.detach().float()
    if labels is None:
        top2 = logits.topk(2, dim=1).values
        margin = top2[:, 0] - top2[:, 1]
    else:
        labels = check_labels(labels, logits.shape[0], logits.device, "labels", logits.shape[1])
        true = logits.gather(1, labels[:, None]).squeeze(1)
        others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
        margin = true - others
    return margin.clamp_min(0.0) / (math.sqrt(2.0) * lipschitz)


def certified_accuracy(model: nn.Module, x: Tensor, y: Tensor, radii: Sequence[float],
                       lipschitz: float | None = None, *, batch_size: int = 512) -> dict[float, float]:
    """Fraction of points classified correctly with a certified radius strictly above ``r``,
    for each ``r`` in ``radii`` (L2, in pixel space).

    ``lipschitz`` defaults to :func:`lipschitz_bound` of ``model`` (an ``nn.Sequential`` or a
    Classifier around one). A certified accuracy can never exceed the robust accuracy under
    any attack at the same radius.
    """
    clf = as_classifier(model)
    check_inputs(x, clf.bounds, clf.input_shape)
    y = check_labels(y, x.shape[0], x.device, "y", clf.num_classes)
    check_positive_int(batch_size, "batch_size")
    if isinstance(radii, (int, float)) or len(radii) == 0:
        raise ValueError(f"radii: expected a non-empty sequence of radii, got {radii!r}")
    values = []
    for r in radii:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not (math.isfinite(r) and r >= 0):
            raise ValueError(f"radii: each radius must be a finite number >= 0, got {r!r}")
        values.append(float(r))
    if lipschitz is None:
        lipschitz = lipschitz_bound(clf, tuple(x.shape[1:]))
    lipschitz = check_positive_float(lipschitz, "lipschitz")
    training = clf.training
    clf.eval()
    try:
        with torch.no_grad():
            cert = torch.cat([margin_certificate(clf(xb), lipschitz, yb)
                              for xb, yb in zip(x.split(batch_size), y.split(batch_size))])
    finally:
        clf.train(training)
    return {r: float((cert > r).float().mean()) for r in values}
