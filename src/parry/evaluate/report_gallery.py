"""The report's gallery: the one part of a report that is recomputed rather than read from the store.

For a model row's headline series (the AutoAttack-standard ensemble, or the strongest stored
attack at the row's eps), the gallery reloads the model from the checkpoint the store recorded
(verifying its SHA-256), rebuilds the attack exactly as the run configured it (or PGD-40 when it
cannot be rebuilt), and re-runs it on a few of the stored points to get the images. A re-run may
differ from the stored outcome on a point; the caption says on how many points it agrees. When
the checkpoint, the data or the attack are unavailable, there is no gallery and a note says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ..attacks.ensemble import EnsembleResult
from ..attacks.registry import make_attack
from .canonical import canonical_json
from .outcomes import Outcomes
from .report_data import MAX_GALLERY_IMAGES, Gallery
from .specs import GridAttack, attack_params
from .store import ResultsStore
from .work import seeded

#: Loads a data split: ``(dataset, split) -> ArrayDataset`` (default :func:`parry.data.load`).
DataLoader = Callable[[str, str], Any]
#: Steps of the PGD that stands in for an attack the gallery cannot rebuild.
FALLBACK_PGD_STEPS = 40


def _load(dataset: str, split: str) -> Any:
    from ..data import load

    return load(dataset, split)


def choose_points(series: Outcomes, k: int) -> list[int]:
    """Up to ``k`` positions in the point set, in stored order: mostly points the stored attack
    broke, and a quarter (at least one) that it did not, when there are such points."""
    broken = (series.clean_correct & ~series.robust).nonzero().flatten().tolist()
    robust = series.robust.nonzero().flatten().tolist()
    wrong = (~series.clean_correct).nonzero().flatten().tolist()
    n_robust = min(len(robust), max(1, k // 4)) if broken else min(len(robust), k)
    chosen = broken[:k - n_robust] + robust[:n_robust]
    rest = [p for p in broken + robust + wrong if p not in chosen]
    return sorted(chosen + rest[:k - len(chosen)])


def _checkpoint(store: ResultsStore, series: Outcomes, recorded: str | None) -> tuple[Path | None, str]:
    if recorded is None:
        return None, f"no gallery: {series.model} was evaluated from memory (the store records no checkpoint)"
    from ..zoo.checkpoint import checkpoint_paths

    candidates = [Path(recorded)]
    if not Path(recorded).is_absolute():
        candidates.append(store.path.parent / recorded)
    for path in candidates:
        weights, sidecar = checkpoint_paths(path)
        if weights.is_file() and sidecar.is_file():
            return path, ""
    return None, f"no gallery: the checkpoint {recorded} recorded for {series.model} is missing"


def _attack(store: ResultsStore, series: Outcomes) -> tuple[Any, str]:
    """The series' attack rebuilt from its run's configuration, else PGD-40; and its label."""
    config = store.run(series.run_id)["config"]
    for entry in config.get("attacks", []) if config.get("kind") == "grid" else []:
        if entry["name"] != series.attack:
            continue
        spec = GridAttack(entry["name"], entry.get("options", {}), entry.get("min_norm"))
        if spec.is_min_norm:
            continue
        built = spec.build(series.eps, series.norm, seed=config["seed"], batch_size=config["batch_size"])
        if canonical_json(attack_params(built.params())) == canonical_json(series.attack_params):
            return built, f"{series.attack} as run {series.run_id} configured it"
    pgd = make_attack("pgd", series.eps, series.norm, steps=FALLBACK_PGD_STEPS, seed=series.run_seed)
    return pgd, f"PGD-{FALLBACK_PGD_STEPS} (standing in for {series.attack}, which could not be rebuilt)"


def build_gallery(store: ResultsStore, series: Outcomes, checkpoint: str | None, *, k: int = 8,
                  data: DataLoader | None = None, device: torch.device | str = "cpu") -> tuple[Gallery | None, str]:
    """``(gallery, note)``: the headline attack re-run on ``k`` stored points of ``series``' model,
    or ``(None, why not)``. ``checkpoint`` is the path the store recorded for the model."""
    from ..zoo import load_checkpoint

    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_GALLERY_IMAGES:
        raise ValueError(f"k: expected 1 to {MAX_GALLERY_IMAGES} gallery images, got {k!r}")
    if series.eps is None:
        raise ValueError("series: the gallery re-runs a fixed-radius attack, got a minimum-norm series")
    path, note = _checkpoint(store, series, checkpoint)
    if path is None:
        return None, note
    try:
        clf, meta = load_checkpoint(path, device=device)
    except (ValueError, OSError) as exc:
        return None, f"no gallery: cannot load the checkpoint of {series.model}: {exc}"
    if meta["sha256"] != series.model_sha256:
        return None, (f"no gallery: the checkpoint {path} no longer holds the weights evaluated "
                      f"(sha256 {meta['sha256'][:12]}, stored {series.model_sha256[:12]})")
    positions = choose_points(series, k)
    try:
        split = (data or _load)(series.points["dataset"], series.points["split"])
        x, y = split.subset(series.test_index[positions]).tensors(device=clf.device)
    except (ValueError, OSError, IndexError) as exc:
        return None, f"no gallery: cannot load the test images of {series.points['dataset']}: {exc}"
    if not torch.equal(y.cpu(), series.label[positions]):
        return None, "no gallery: the test images at hand do not carry the stored labels"
    attack, label = _attack(store, series)
    with seeded(series.run_seed, clf.device):
        out = attack(clf, x, y)
    result = out.result if isinstance(out, EnsembleResult) else out
    agree = int((result.robust.cpu() == series.robust[positions]).sum())
    indices = ", ".join(str(i) for i in series.test_index[positions].tolist())
    caption = (f"Recomputed for this page, unlike every number on it, which is read from the store: {label} "
               f"({series.norm} eps {series.eps:g}) re-run on {len(positions)} of the {series.n} stored points of "
               f"{series.model} (test indices {indices}); the re-run agrees with the stored outcome on {agree} "
               f"of {len(positions)}")
    gallery = Gallery(x.cpu(), result.adv.detach().cpu(), y.cpu(), result.clean_pred.cpu(), result.adv_pred.cpu(),
                      class_names=getattr(split, "classes", None), caption=caption)
    return gallery, f"gallery: {label} re-run on {len(positions)} stored points of {series.model}"
