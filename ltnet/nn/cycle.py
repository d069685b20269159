"""One LT-Net cycle: atlas -> scan -> atlas, and the generator and discriminator losses on it."""

from dataclasses import dataclass

import torch

from ltnet.nn import losses
from ltnet.nn.networks import LTNetNetworks
from ltnet.nn.warp import compose, warp


@dataclass
class Cycle:
    """Everything one pass computes; images ``(B, 1, D, H, W)``, labels ``(B, K, ...)``, fields ``(B, 3, ...)`` voxels.

    ``backward``, ``round_trip``, ``reconstructed`` and ``reconstructed_labels`` are
    None when no term needs the backward half.
    """

    forward: torch.Tensor  # Δ_F = G_F(l, u)
    warped: torch.Tensor  # ū = l ∘ Δ_F
    warped_labels: torch.Tensor  # ū_s = l_s ∘ Δ_F
    backward: torch.Tensor | None = None  # Δ_B = G_B(ū, l)
    round_trip: torch.Tensor | None = None  # Δ_B(t) + Δ_F(t + Δ_B(t)): atlas -> scan -> atlas, 0 for an inverse pair
    reconstructed: torch.Tensor | None = None  # l̄ = ū ∘ Δ_B, computed as l ∘ round_trip
    reconstructed_labels: torch.Tensor | None = None  # l̄_s = ū_s ∘ Δ_B, computed as l_s ∘ round_trip
    coupling: float = 1.0  # share of the cycle terms' gradient that reaches G_F (see run_cycle)

    def coupled(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` with its gradient scaled by ``coupling`` (the value is unchanged)."""
        if self.coupling == 1.0:
            return tensor
        return tensor.detach() + self.coupling * (tensor - tensor.detach())


def run_cycle(
    nets: LTNetNetworks,
    atlas: torch.Tensor,
    atlas_labels: torch.Tensor,
    scan: torch.Tensor,
    with_backward: bool = True,
    coupling: float = 1.0,
    forward: torch.Tensor | None = None,
) -> Cycle:
    """Forward map atlas -> scan, and (optionally) the backward map and the reconstructions.

    ``coupling`` (ours) scales the gradient that the cycle terms send back into ``G_F``:
    1 is the paper's joint training; 0 lets the cycle terms train ``G_B`` only, which
    keeps an untrained ``G_B`` from pinning ``G_F`` at the identity early in training.

    The reconstructions are resampled once, from ``l`` and ``l_s`` along the composed
    round trip, not twice (``ū`` along ``Δ_B``) (ours): both are ``l ∘ Δ_F ∘ Δ_B``, but
    each trilinear resampling blurs, and only a zero (or whole-voxel) field is
    resampled without loss, so the two-step version rewards ``G_F`` for staying at the
    identity whatever ``G_B`` does (measured in docs/TUNING.md).

    ``forward`` replaces ``G_F``'s prediction (a field refined for this scan, ``ltnet.refine``).
    """
    if forward is None:
        forward = nets.g_forward(atlas, scan)
    cycle = Cycle(forward, warp(atlas, forward), warp(atlas_labels, forward), coupling=coupling)
    if with_backward:
        cycle.backward = nets.g_backward(cycle.coupled(cycle.warped), atlas)
        cycle.round_trip = compose(cycle.backward, cycle.coupled(forward))
        cycle.reconstructed = warp(atlas, cycle.round_trip)
        cycle.reconstructed_labels = warp(atlas_labels, cycle.round_trip)
    return cycle


def generator_terms(
    nets: LTNetNetworks,
    cycle: Cycle,
    atlas: torch.Tensor,
    atlas_labels: torch.Tensor,
    scan: torch.Tensor,
    weights: losses.LossWeights,
) -> dict[str, torch.Tensor]:
    """Each loss term with a non-zero weight (unweighted), keyed by ``losses.TERMS`` names."""
    terms = {"sim": losses.similarity(scan, cycle.warped)}
    smooth = losses.smoothness(cycle.forward)
    if cycle.backward is not None:
        smooth = smooth + losses.smoothness(cycle.backward)
        terms["cyc"] = losses.image_cycle(atlas, cycle.reconstructed)
        terms["trans"] = losses.transformation_cycle(cycle.round_trip)
        terms["anatomy_cyc"] = losses.soft_dice_loss(atlas_labels, cycle.reconstructed_labels)
        terms["diff_cyc"] = losses.difference_cycle(
            atlas_labels, cycle.coupled(cycle.warped_labels), cycle.reconstructed_labels
        )
    terms["smooth"] = smooth
    if weights.gan > 0:
        terms["gan"] = losses.lsgan_generator(nets.discriminate(cycle.warped))
    return {name: value for name, value in terms.items() if getattr(weights, name) > 0}


def weighted_total(terms: dict[str, torch.Tensor], weights: losses.LossWeights) -> torch.Tensor:
    """``Σ weight·term`` over the terms present."""
    return sum(getattr(weights, name) * value for name, value in terms.items())
