"""Quality checks of one transfer, from the cycle atlas -> scan -> atlas and the image match.

All measures are computed on the network grid. The score is what predicts a
wrong transfer (docs/BENCHMARKS.md measures how well it does): the image match,
the target's LNCC with the warped atlas divided by the model's reference LNCC
(the median over scans of its own training cohort, stored in the model; 1.0
means "matches as well as a typical training scan"), minus 10 × the share of
folded voxels beyond 1 %. A cycle can be consistent and still wrong (a flipped
scan round-trips fine), and on the hippocampus benchmark the label cycle Dice
did not rank transfers by accuracy, so it only gates: a mean label cycle Dice
below 0.8 turns an ``OK`` into ``check``. A model without a reference LNCC
(none written by ``ltnet train`` lacks one) is scored on the label cycle Dice.

Verdict thresholds (documented for users in the README and the Slicer help):

- ``OK``: score >= 0.85 (and label cycle Dice >= 0.8)
- ``check``: 0.60 <= score < 0.85
- ``likely failed``: score < 0.60
"""

import numpy as np
import torch

from ltnet.nn import losses
from ltnet.nn.cycle import Cycle
from ltnet.nn.warp import compose, jacobian_determinant

OK_THRESHOLD = 0.85
CHECK_THRESHOLD = 0.60
CYCLE_DICE_GATE = 0.80  # below it a transfer is never OK
FOLDING_TOLERANCE = 0.01  # share of folded voxels above which the score is penalised


def inverse_consistency_mm(cycle: Cycle, spacing: float) -> torch.Tensor:
    """``|Δ_F(t) + Δ_B(t + Δ_F(t))|`` in mm per voxel of the scan side, ``(D, H, W)``; 0 for an exact inverse pair."""
    return compose(cycle.forward, cycle.backward)[0].norm(dim=0) * spacing


def label_cycle_dice(atlas_one_hot: torch.Tensor, reconstructed_one_hot: torch.Tensor) -> list[float]:
    """Soft Dice ``2Σab / (Σa² + Σb²)`` per foreground channel of ``l_s`` and ``l̄_s``, both ``(1, K, D, H, W)``.

    Soft, so partial-volume voxels at label borders do not flip between labels: exactly 1 for an identity cycle.
    """
    a, b = atlas_one_hot[0, 1:].flatten(1), reconstructed_one_hot[0, 1:].flatten(1)
    dice = 2 * (a * b).sum(1) / ((a * a).sum(1) + (b * b).sum(1)).clamp_min(1e-8)
    return dice.tolist()


def measure(
    cycle: Cycle, atlas: torch.Tensor, atlas_one_hot: torch.Tensor, scan: torch.Tensor, inverse_consistency: torch.Tensor, labels, reference_lncc: float | None
) -> dict:
    """The QC numbers of one transfer (see module doc), JSON-ready.

    ``inverse_consistency`` is the map of ``inverse_consistency_mm``, computed once by the caller, who also keeps it.
    """
    dice = label_cycle_dice(atlas_one_hot, cycle.reconstructed_labels)
    folded = float((jacobian_determinant(cycle.forward) <= 0).float().mean())
    lncc = float(-losses.similarity(scan, cycle.warped))
    qc = {
        "label_cycle_dice": [{"value": label.value, "name": label.name, "dice": round(d, 4)} for label, d in zip(labels, dice)],
        "label_cycle_dice_mean": round(float(np.mean(dice)), 4),
        "image_cycle_error": round(float(losses.image_cycle(atlas, cycle.reconstructed)), 5),
        "inverse_consistency_mm": round(float(inverse_consistency.mean()), 4),
        "folded_fraction": round(folded, 6),
        "lncc": round(lncc, 4),
        "reference_lncc": None if reference_lncc is None else round(reference_lncc, 4),
    }
    qc["score"] = round(score(qc), 4)
    qc["verdict"] = verdict(qc["score"], qc["label_cycle_dice_mean"])
    return qc


def score(qc: dict) -> float:
    """One number >= 0 from the QC numbers of one transfer (see module doc); about 1 for a typical good transfer."""
    if qc.get("reference_lncc"):
        match = max(0.0, qc["lncc"]) / qc["reference_lncc"]
    else:
        match = qc["label_cycle_dice_mean"]
    penalty = max(0.0, qc["folded_fraction"] - FOLDING_TOLERANCE) * 10.0
    return float(max(0.0, match - penalty))


def image_match(nets, atlas: torch.Tensor, scans: list[torch.Tensor]) -> list[float]:
    """LNCC between each scan ``(1, 1, D, H, W)`` and the atlas warped onto it by ``G_F`` (no gradients)."""
    from ltnet.nn.warp import warp

    values = []
    with torch.no_grad():
        for scan in scans:
            values.append(float(-losses.similarity(scan, warp(atlas, nets.g_forward(atlas, scan)))))
    return values


def reference_lncc(nets, atlas: torch.Tensor, scans: list[torch.Tensor], limit: int = 8) -> float:
    """The model's typical image match: median LNCC over (up to ``limit``, evenly spread) training scans.

    ``scans`` may live on another device than ``atlas``: only the chosen ones are moved.
    """
    step = max(1, len(scans) // limit)
    chosen = [scan.to(atlas.device) for scan in scans[::step][:limit]]
    return float(np.median(image_match(nets, atlas, chosen)))


def verdict(value: float, label_cycle_dice: float = 1.0) -> str:
    """``OK``, ``check`` or ``likely failed`` for a score (and the mean label cycle Dice)."""
    if value >= OK_THRESHOLD and label_cycle_dice >= CYCLE_DICE_GATE:
        return "OK"
    if value >= CHECK_THRESHOLD:
        return "check"
    return "likely failed"
