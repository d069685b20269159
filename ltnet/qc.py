"""Quality checks of one transfer, from the cycle atlas -> scan -> atlas and the image match.

All measures are computed on the network grid. The score is what predicts a
wrong transfer (docs/BENCHMARKS.md measures how well it does): the image match
where the labels went, the target's local correlation (LNCC) with the warped atlas
averaged over the transferred labels (voxels whose warped foreground is >= 0.5),
divided by the model's reference (the median of the same measure over scans of
its own training cohort, stored in the model; 1.0 means "matches as well as a
typical training scan"), minus 10 × the share of folded voxels beyond 1 %.
Measured where the labels are, the match ranks transfers by their accuracy far
better than over the whole grid, which is mostly background (Spearman with the
true Dice 0.57 against 0.31 on the hippocampus benchmark). A cycle can be
consistent and still wrong (a flipped scan round-trips fine), and on that
benchmark the label cycle Dice did not rank transfers by accuracy, so it only
gates: a mean label cycle Dice below 0.8 turns an ``OK`` into ``check``.
A model written before the label-region reference existed is scored on the
whole-grid LNCC and its reference; a model with neither reference on the label
cycle Dice.

A refined transfer (``ltnet.refine``) is scored on ``G_F``'s own prediction: the fit
raises the very match the score reads, so scored on the refined field every one of
the 59 hippocampus targets was ``OK`` after 3 or 20 steps (median score 1.10 and
1.14), the worst ones too. The network's match ranks the refined results better
(Spearman 0.56 against 0.50 with the refined Dice, 3 steps) and flags 4 of their
5 worst (docs/TUNING.md, "The QC of a refined transfer"). The refined field's own
match is kept beside it, and its folding and cycle still count.

Verdict thresholds (documented for users in the README and the Slicer help):

- ``OK``: score >= 0.95 (and label cycle Dice >= 0.8)
- ``check``: 0.60 <= score < 0.95
- ``likely failed``: score < 0.60
"""

import numpy as np
import torch

from ltnet.nn import losses
from ltnet.nn.cycle import Cycle
from ltnet.nn.warp import compose, jacobian_determinant, warp

#: 5 % below the model's typical match: on the hippocampus benchmark it flags 4 of the 5 worst of 59
#: (docs/BENCHMARKS.md).
OK_THRESHOLD = 0.95
CHECK_THRESHOLD = 0.60
CYCLE_DICE_GATE = 0.80  # below it a transfer is never OK
FOLDING_TOLERANCE = 0.01  # share of folded voxels above which the score is penalised


def inverse_consistency_mm(cycle: Cycle, spacing: float) -> torch.Tensor:
    """``|Δ_F(t) + Δ_B(t + Δ_F(t))|`` in mm per voxel of the scan side, ``(D, H, W)``; 0 for an exact inverse pair.

    The length summed out per component: ``Tensor.norm`` over the channel axis is 30 times slower on a CPU."""
    residual = compose(cycle.forward, cycle.backward)[0]
    return (residual[0] * residual[0] + residual[1] * residual[1] + residual[2] * residual[2]).sqrt() * spacing


def label_cycle_dice(atlas_one_hot: torch.Tensor, reconstructed_one_hot: torch.Tensor) -> list[float]:
    """Soft Dice ``2Σab / (Σa² + Σb²)`` per foreground channel of ``l_s`` and ``l̄_s``, both ``(1, K, D, H, W)``.

    Soft, so partial-volume voxels at label borders do not flip between labels: exactly 1 for an identity cycle.
    """
    a, b = atlas_one_hot[0, 1:].flatten(1), reconstructed_one_hot[0, 1:].flatten(1)
    dice = 2 * (a * b).sum(1) / ((a * a).sum(1) + (b * b).sum(1)).clamp_min(1e-8)
    return dice.tolist()


def image_match(scan: torch.Tensor, warped: torch.Tensor, warped_labels: torch.Tensor) -> tuple[float, float]:
    """LNCC of ``scan`` with the warped atlas ``warped`` (both ``(1, 1, D, H, W)``): over the whole grid, and over the
    transferred labels, the voxels where the warped one-hot ``warped_labels`` ``(1, K, D, H, W)`` has foreground >= 0.5
    (the whole grid where there is none)."""
    local = losses.local_ncc(scan, warped)[0, 0]
    region = warped_labels[0, 1:].sum(0) >= 0.5
    return float(local.mean()), float(local[region].mean() if region.any() else local.mean())


def measure(
    cycle: Cycle,
    atlas: torch.Tensor,
    atlas_one_hot: torch.Tensor,
    scan: torch.Tensor,
    inverse_consistency: torch.Tensor | None,
    labels,
    reference: tuple[float | None, float | None],
    field: torch.Tensor | None = None,
    network_match: tuple[float, float] | None = None,
) -> dict:
    """The QC numbers of one transfer (see module doc), JSON-ready.

    ``inverse_consistency`` is the map of ``inverse_consistency_mm``, computed once by the caller, who also keeps it.
    ``reference`` is the model's ``(reference_lncc, reference_label_lncc)``. ``field`` is the forward map the
    labels follow where it lies on a finer grid than ``cycle.forward`` (a refinement, ``ltnet.refine``): its
    folded voxels are the ones counted. ``network_match``: ``image_match`` of ``G_F``'s own prediction when
    ``cycle.forward`` was refined; the score then reads it (see module doc).
    A cycle without its backward half (and ``inverse_consistency`` None) gives the QC without the cycle numbers: the
    score is the same, and the verdict is not gated by a label cycle Dice. It needs the model's reference match
    (``transfer`` refuses a model without it before any work).
    """
    with_cycle = cycle.backward is not None
    folded = float((jacobian_determinant(cycle.forward if field is None else field) <= 0).float().mean())
    lncc, label_lncc = image_match(scan, cycle.warped, cycle.warped_labels)
    qc = {}
    if with_cycle:
        dice = label_cycle_dice(atlas_one_hot, cycle.reconstructed_labels)
        qc = {
            "label_cycle_dice": [
                {"value": label.value, "name": label.name, "dice": round(d, 4)} for label, d in zip(labels, dice)
            ],
            "label_cycle_dice_mean": round(float(np.mean(dice)), 4),
            "image_cycle_error": round(float(losses.image_cycle(atlas, cycle.reconstructed)), 5),
            "inverse_consistency_mm": round(float(inverse_consistency.mean()), 4),
        }
    qc |= {
        "folded_fraction": round(folded, 6),
        "lncc": round(lncc, 4),
        "reference_lncc": None if reference[0] is None else round(reference[0], 4),
        "label_lncc": round(label_lncc, 4),
        "reference_label_lncc": None if reference[1] is None else round(reference[1], 4),
    }
    if network_match is not None:
        qc["network_lncc"], qc["network_label_lncc"] = (round(value, 4) for value in network_match)
    qc["score"] = round(score(qc), 4)
    qc["verdict"] = verdict(qc["score"], qc.get("label_cycle_dice_mean", 1.0))
    return qc


def score(qc: dict) -> float:
    """One number >= 0 from the QC numbers of one transfer (see module doc); about 1 for a typical good transfer.

    The image match read is ``G_F``'s own (``network_...``) where the transfer was refined."""
    prefix = "network_" if "network_lncc" in qc else ""
    if qc.get("reference_label_lncc"):
        match = max(0.0, qc[prefix + "label_lncc"]) / qc["reference_label_lncc"]
    elif qc.get("reference_lncc"):
        match = max(0.0, qc[prefix + "lncc"]) / qc["reference_lncc"]
    else:
        match = qc["label_cycle_dice_mean"]
    penalty = max(0.0, qc["folded_fraction"] - FOLDING_TOLERANCE) * 10.0
    return float(max(0.0, match - penalty))


def reference_lncc(
    nets, atlas: torch.Tensor, atlas_one_hot: torch.Tensor, scans: list[torch.Tensor], limit: int = 8
) -> tuple[float, float]:
    """The model's typical image match ``(whole grid, label region)``: medians of ``image_match`` of the atlas and its
    labels ``(1, K, D, H, W)`` warped by ``G_F`` onto (up to ``limit``, evenly spread) training scans
    ``(1, 1, D, H, W)``.

    ``scans`` may live on another device than ``atlas``: only the chosen ones are moved.
    """
    step = max(1, len(scans) // limit)
    matches = []
    with torch.no_grad():
        for scan in scans[::step][:limit]:
            scan = scan.to(atlas.device)
            forward = nets.g_forward(atlas, scan)
            matches.append(image_match(scan, warp(atlas, forward), warp(atlas_one_hot, forward)))
    whole, region = np.median(np.array(matches), axis=0)
    return float(whole), float(region)


def verdict(value: float, label_cycle_dice: float = 1.0) -> str:
    """``OK``, ``check`` or ``likely failed`` for a score (and the mean label cycle Dice)."""
    if value >= OK_THRESHOLD and label_cycle_dice >= CYCLE_DICE_GATE:
        return "OK"
    if value >= CHECK_THRESHOLD:
        return "check"
    return "likely failed"
