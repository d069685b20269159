"""Quality checks of one transfer, from the cycle atlas -> scan -> atlas and the image match.

All measures are computed on the network grid. The score is the mean label
cycle Dice (how well the atlas labels survive the round trip), lowered when the
forward map folds or the warped atlas does not match the scan.

Verdict thresholds (documented for users in the README and the Slicer help):

- ``OK``: score >= 0.85
- ``check``: 0.70 <= score < 0.85
- ``likely failed``: score < 0.70
"""

import numpy as np
import torch

from ltnet.nn import losses
from ltnet.nn.cycle import Cycle
from ltnet.nn.warp import compose, jacobian_determinant

OK_THRESHOLD = 0.85
CHECK_THRESHOLD = 0.70
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


def measure(cycle: Cycle, atlas: torch.Tensor, atlas_one_hot: torch.Tensor, scan: torch.Tensor, spacing: float, labels) -> dict:
    """The QC numbers of one transfer (see module doc), JSON-ready."""
    dice = label_cycle_dice(atlas_one_hot, cycle.reconstructed_labels)
    folded = float((jacobian_determinant(cycle.forward) <= 0).float().mean())
    lncc = float(-losses.similarity(scan, cycle.warped))
    qc = {
        "label_cycle_dice": [{"value": label.value, "name": label.name, "dice": round(d, 4)} for label, d in zip(labels, dice)],
        "label_cycle_dice_mean": round(float(np.mean(dice)), 4),
        "image_cycle_error": round(float(losses.image_cycle(atlas, cycle.reconstructed)), 5),
        "inverse_consistency_mm": round(float(inverse_consistency_mm(cycle, spacing).mean()), 4),
        "folded_fraction": round(folded, 6),
        "lncc": round(lncc, 4),
    }
    qc["score"] = round(score(qc), 4)
    qc["verdict"] = verdict(qc["score"])
    return qc


def score(qc: dict) -> float:
    """One number in [0, 1]: mean label cycle Dice, penalised for folding beyond the tolerance."""
    penalty = max(0.0, qc["folded_fraction"] - FOLDING_TOLERANCE) * 10.0
    return float(np.clip(qc["label_cycle_dice_mean"] - penalty, 0.0, 1.0))


def verdict(value: float) -> str:
    """``OK``, ``check`` or ``likely failed`` for a score."""
    if value >= OK_THRESHOLD:
        return "OK"
    if value >= CHECK_THRESHOLD:
        return "check"
    return "likely failed"
